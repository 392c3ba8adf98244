"""How a gateway runs durable calls: :class:`DurableSettings` and :class:`WebhookSettings`.

::

    Gateway([signup], durable=DurableSettings(url="sqlite:///var/lib/app/durable.db"))
    Gateway([signup], durable=DurableSettings(url="postgresql://app@db/app", workers=64))

Frozen values checked when built (:class:`~genapi.ConfigError`); nothing here does I/O.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from genapi.errors import ConfigError

from .backoff import Backoff

__all__ = ["DurableSettings", "WebhookSettings"]


def _positive(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(f"{name} must be a positive number (got {value!r})")


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookSettings:
    """Completion webhooks: how they are signed, where they may go, how long they wait.

    ``secret`` signs every delivery (HMAC-SHA256 over ``"<timestamp>." + body``; see
    :func:`genapi.durable.verify_webhook`); without it no webhook is sent (each one ends
    dead with that reason). ``allow_networks`` lists CIDR ranges the SSRF guard lets
    through although they are private, loopback or link-local (``("10.1.0.0/16",)`` for
    an internal receiver); nothing is allowed by default. ``timeout_s`` bounds one
    delivery (resolving, connecting, sending, the answer); ``max_response_bytes`` is how
    much of the receiver's answer is read. A failed delivery is retried with ``backoff``
    up to ``max_attempts`` times, then kept dead for an operator.
    """

    secret: str | None = None
    allow_networks: tuple[str, ...] = ()
    timeout_s: float = 10.0
    max_response_bytes: int = 65_536
    max_attempts: int = 8
    backoff: Backoff = field(default_factory=lambda: Backoff(base_s=5.0, max_s=3600.0))

    def __post_init__(self) -> None:
        if self.secret is not None and (not isinstance(self.secret, str) or not self.secret):
            raise ConfigError("the webhook secret must be a non-empty string")
        if isinstance(self.allow_networks, str):
            raise ConfigError("allow_networks must be a collection of CIDR strings")
        for network in self.allow_networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError as exc:
                raise ConfigError(f"allow_networks: {network!r} is not a network") from exc
        _positive("webhook timeout_s", self.timeout_s)
        _positive("webhook max_response_bytes", self.max_response_bytes)
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise ConfigError("webhook max_attempts must be an integer >= 1")

    def __repr__(self) -> str:
        shown = "None" if self.secret is None else "'***'"
        return (f"WebhookSettings(secret={shown}, allow_networks={self.allow_networks!r}, "
                f"timeout_s={self.timeout_s}, max_attempts={self.max_attempts})")


@dataclass(frozen=True, slots=True, kw_only=True)
class DurableSettings:
    """Durable calls on a gateway: the store and the workers that run the calls.

    * ``url`` — the store: ``sqlite:///path`` (a file, no server; the default) or
      ``postgresql://…`` (shared by several gateways); ``store_options`` go to its
      constructor (``max_connections=…``);
    * ``workers`` — how many durable calls this gateway runs at once; ``batch`` — how many
      it claims per query; ``lease_s`` — how long a claim holds without renewal (renewed
      every third of it while the call runs; a crashed gateway's calls run again after
      it); ``poll_interval`` — how often idle workers look for due calls when nothing
      woke them (retries coming due, other processes' work on SQLite); ``run_workers``
      False stores and delivers calls but leaves running them to other processes;
    * ``sweep_interval`` — how often results finished elsewhere are looked up for the
      users connected here; ``retention_s`` — how long finished calls are kept
      (purged every ``purge_interval``); ``drain_timeout`` — how long running calls get
      at shutdown before they are put back in the queue;
    * ``service`` — the name of the built-in functions callers use (``get_result``,
      ``pending``), None for none; ``worker_id`` names this gateway's claims
      (default ``host-pid-random``); ``webhook`` — :class:`WebhookSettings`;
      ``open_timeout`` — how long a call waits for the store to open at startup.
    """

    url: str = "sqlite:///genapi-durable.db"
    workers: int = 32
    batch: int = 64
    lease_s: float = 30.0
    poll_interval: float = 1.0
    run_workers: bool = True
    sweep_interval: float = 2.0
    retention_s: float = 7 * 24 * 3600.0
    purge_interval: float = 300.0
    drain_timeout: float = 10.0
    service: str | None = "durable"
    worker_id: str | None = None
    webhook: WebhookSettings = field(default_factory=WebhookSettings)
    open_timeout: float = 10.0
    stats_interval: float = 5.0
    store_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.url, str) or not self.url:
            raise ConfigError("the durable store url must be a non-empty string")
        for name in ("workers", "batch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1 (got {value!r})")
        for name in ("lease_s", "poll_interval", "sweep_interval", "retention_s",
                     "purge_interval", "drain_timeout", "open_timeout", "stats_interval"):
            _positive(name, getattr(self, name))
        if self.service is not None and (not isinstance(self.service, str) or not self.service):
            raise ConfigError("service must be a non-empty name or None")
        if not isinstance(self.webhook, WebhookSettings):
            raise ConfigError("webhook must be a WebhookSettings")
