"""Admission control: connect and join rates per client address.

After a deploy every client reconnects at once; a buggy client may reconnect in a tight
loop. Admission control bounds how fast one address may open sockets and join topics,
before any authentication work is done. Refused connects are answered HTTP 429 where the
server supports it (else 403), refused joins with ``{"reason": "too many joins"}``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from ..ratelimit.memory import MemoryStore
from ..telemetry.events import Telemetry

__all__ = ["Admission", "AdmissionLimits"]


@dataclass(frozen=True, slots=True)
class AdmissionLimits:
    """``connects`` and ``joins`` allowed per address per ``window`` seconds (None: off)."""

    connects: int | None = 200
    joins: int | None = 1000
    window: float = 10.0

    def __post_init__(self) -> None:
        for name in ("connects", "joins"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(f"AdmissionLimits.{name} must be a positive integer or None")
        if self.window <= 0:
            raise ConfigError("AdmissionLimits.window must be positive")


class Admission:
    """Counts connects and joins per address with exact sliding windows (bounded memory)."""

    def __init__(self, limits: AdmissionLimits, telemetry: Telemetry) -> None:
        self.limits = limits
        self._window_ms = int(limits.window * 1000)
        self._store = MemoryStore(max_buckets=50_000, telemetry=telemetry)

    def _admit(self, kind: str, limit: int | None, address: str | None) -> bool:
        if limit is None or address is None:
            return True
        return self._store.acquire([(f"{kind}:{address}", limit, self._window_ms)]) is None

    def connect(self, address: str | None) -> bool:
        """May ``address`` open another socket now?"""
        return self._admit("connect", self.limits.connects, address)

    def join(self, address: str | None) -> bool:
        """May ``address`` join another topic now?"""
        return self._admit("join", self.limits.joins, address)
