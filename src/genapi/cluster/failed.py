"""The failed-configs log: configs a gateway refused, kept for 24 hours.

Every push or pull that could not be applied leaves one entry per offending function (or
one for the whole service when the problem is not a single function), with the reasons,
so that an operator can see *why* a node's functions are missing.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["FailedConfig", "FailedConfigs"]

Source = Literal["push", "pull"]
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class FailedConfig:
    """One refused config."""

    id: int
    service: str
    request_type: str | None
    version: str | None
    source: Source
    node: str | None
    reasons: tuple[str, ...]
    config: dict[str, Any] = field(default_factory=dict)
    inserted_at_ms: int = 0
    expires_at_ms: int = 0

    def as_dict(self) -> dict[str, Any]:
        """As plain data (for diagnostics)."""
        return asdict(self)


class FailedConfigs:
    """A bounded log of refused configs (newest kept when full; entries expire)."""

    def __init__(self, *, ttl_ms: int = DAY_MS, max_entries: int = 10_000,
                 clock_ms: Callable[[], int] | None = None) -> None:
        self.ttl_ms = ttl_ms
        self._entries: deque[FailedConfig] = deque(maxlen=max_entries)
        self._ids = itertools.count(1)
        self._clock = clock_ms or (lambda: int(time.time() * 1000))

    def record(
        self,
        *,
        service: str,
        reasons: list[str] | str,
        source: Source,
        node: str | None = None,
        config: dict[str, Any] | None = None,
    ) -> FailedConfig:
        """Add an entry; ``config`` is the refused config's plain data, when known."""
        now = self._clock()
        data = dict(config or {})
        entry = FailedConfig(
            id=next(self._ids),
            service=service,
            request_type=data.get("request_type"),
            version=data.get("version"),
            source=source,
            node=node,
            reasons=(reasons,) if isinstance(reasons, str) else tuple(reasons),
            config=data,
            inserted_at_ms=now,
            expires_at_ms=now + self.ttl_ms,
        )
        self._entries.append(entry)
        return entry

    def list(self, *, source: Source | None = None, service: str | None = None,
             limit: int = 100, newest_first: bool = True) -> list[FailedConfig]:
        """Unexpired entries, filtered."""
        now = self._clock()
        entries = [e for e in self._entries if e.expires_at_ms > now
                   and (source is None or e.source == source)
                   and (service is None or e.service == service)]
        if newest_first:
            entries.reverse()
        return entries[:limit]

    def count(self) -> int:
        """How many unexpired entries there are."""
        return len(self.list(limit=len(self._entries) or 1))

    def summary(self) -> dict[str, Any]:
        """Totals by source and service."""
        entries = self.list(limit=len(self._entries) or 1)
        by_service: dict[str, int] = {}
        for entry in entries:
            by_service[entry.service] = by_service.get(entry.service, 0) + 1
        return {
            "total": len(entries),
            "push": sum(1 for e in entries if e.source == "push"),
            "pull": sum(1 for e in entries if e.source == "pull"),
            "by_service": by_service,
        }

    def cleanup(self) -> int:
        """Drop expired entries; how many went."""
        now = self._clock()
        kept = [e for e in self._entries if e.expires_at_ms > now]
        removed = len(self._entries) - len(kept)
        self._entries.clear()
        self._entries.extend(kept)
        return removed

    def clear(self) -> None:
        """Drop everything."""
        self._entries.clear()
