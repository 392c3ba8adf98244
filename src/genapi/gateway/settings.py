"""Gateway configuration values: frozen, validated, grouped by concern.

::

    Gateway([users],
            authenticator=JWTAuthenticator(SECRET),
            settings=GatewaySettings(socket_path="/rt", limits=ConnectionLimits(max_inflight=50)),
            admin=AdminSettings(token=ADMIN_TOKEN),
            metrics=MetricsSettings(token=SCRAPE_TOKEN),
            tracing=True)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..diagnostics.process import HealthSettings
from ..errors import ConfigError
from ..functions.config import ServiceConfig
from ..security import AdminAction, AdminGate
from .admission import AdmissionLimits
from .auth import Identity

__all__ = [
    "CLOSE_GOING_AWAY",
    "CLOSE_POLICY",
    "CLOSE_RESTART",
    "CLOSE_TOO_BIG",
    "AdminSettings",
    "ClusterOptions",
    "ConnectionLimits",
    "GatewaySettings",
    "GatewayStats",
    "JoinAuthorizer",
    "LongPollSettings",
    "MetricsSettings",
    "TracingSettings",
]

# Close codes. Never 1000 for a live client: phoenix.js before 1.8.16 would not reconnect.
CLOSE_GOING_AWAY = 1001  # idle (missed heartbeats) or server-side disconnect
CLOSE_POLICY = 1008  # slow consumer: its outgoing queue filled up
CLOSE_TOO_BIG = 1009  # a frame over max_frame_bytes
CLOSE_RESTART = 1012  # graceful drain: phoenix.js reconnects (to another instance)

#: ``(topic, join_payload, identity) -> True | None | False | {"reason": ...}`` (or awaitable).
JoinAuthorizer = Callable[[str, Any, Identity], Any]


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """Per-connection bounds; every count and size a client controls is capped.

    * ``heartbeat_timeout`` — seconds without any incoming frame before the socket is
      closed (phoenix.js sends a heartbeat every 30 s);
    * ``max_queue_messages`` / ``max_queue_bytes`` — the outgoing queue; a client that
      does not read fills it and is disconnected (code 1008);
    * ``max_frame_bytes`` — largest incoming WebSocket message (code 1009 beyond);
    * ``max_channels`` — topics joined at once;
    * ``max_topic_length`` — characters in a topic (a longer join is refused with
      ``{"reason": "topic too long"}``);
    * ``max_inflight`` — calls in flight at once for one connection: sync calls and the
      acked async and stream work they started (more are answered ``Service temporarily
      unavailable: too many calls in flight``);
    * ``max_inflight_per_user`` — the same across all the connections of one user on
      this gateway (anonymous connections count one by one);
    * ``drain_timeout`` — seconds in-flight calls get to finish on shutdown.
    """

    heartbeat_timeout: float = 60.0
    max_queue_messages: int = 1000
    max_queue_bytes: int = 8 * 1024 * 1024
    max_frame_bytes: int = 2 * 1024 * 1024
    max_channels: int = 100
    max_topic_length: int = 256
    max_inflight: int = 1000
    max_inflight_per_user: int = 2000
    drain_timeout: float = 10.0

    def __post_init__(self) -> None:
        for name in _field_names(self):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ConfigError(f"ConnectionLimits.{name} must be a positive number")


@dataclass(frozen=True, slots=True)
class LongPollSettings:
    """Phoenix's long-poll transport at ``{socket_path}/longpoll`` (phoenix.js's fallback).

    * ``window`` — seconds a poll is held when nothing is waiting (keep it well under the
      client's 20 s timeout and any proxy's idle timeout);
    * ``expiry`` — seconds without a poll after which a session ends like a closed socket
      (its calls are cancelled); Phoenix uses 1.5 times the window;
    * ``max_body_bytes`` / ``max_batch`` — the largest POST and the most messages in one
      (phoenix.js sends at most 100);
    * ``secret`` — the key that signs session tokens (random per process by default: each
      gateway signs its own; several gateways forward requests to the owner over NATS).

    A session's waiting frames are bounded by :class:`ConnectionLimits`' outgoing queue.
    """

    window: float = 10.0
    expiry: float = 15.0
    max_body_bytes: int = 2 * 1024 * 1024
    max_batch: int = 100
    secret: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        problems = [f"{name} must be positive" for name in _field_names(self)
                    if name != "secret" and not getattr(self, name) > 0]
        if self.expiry < self.window:
            problems.append("expiry must be at least the window")
        if problems:
            raise ConfigError("LongPollSettings", problems)


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """Where the gateway listens and how it treats connections.

    * ``socket_path`` (phoenix.js appends ``/websocket``), ``api_prefix`` (``POST
      {api_prefix}/{service}/{request_type}``), ``topics`` (patterns clients may join),
      ``event`` (what calls are pushed as);
    * ``limits`` — :class:`ConnectionLimits`; ``admission`` — connect and join rates per
      address (:class:`~genapi.gateway.AdmissionLimits`);
    * ``allow_anonymous`` — accept connections without a user; None (the default): yes
      without an authenticator, no with one;
    * ``join_authorizer`` — per-topic join decision (:data:`JoinAuthorizer`);
    * ``trusted_proxies`` — addresses whose ``X-Forwarded-For`` is believed;
    * ``detail_error`` — add internal reasons to ``Internal Server Error`` (off: internals
      never reach clients);
    * ``longpoll`` — the long-poll transport (:class:`LongPollSettings`; None: off);
    * ``health`` — process-health thresholds and the loop-lag timer
      (:class:`~genapi.diagnostics.process.HealthSettings`).
    """

    socket_path: str = "/socket"
    api_prefix: str = "/api"
    topics: tuple[str, ...] = ("api:*",)
    event: str = "api"
    limits: ConnectionLimits = field(default_factory=ConnectionLimits)
    admission: AdmissionLimits = field(default_factory=AdmissionLimits)
    allow_anonymous: bool | None = None
    join_authorizer: JoinAuthorizer | None = None
    trusted_proxies: frozenset[str] = frozenset()
    detail_error: bool = False
    longpoll: LongPollSettings | None = field(default_factory=LongPollSettings)
    health: HealthSettings = field(default_factory=HealthSettings)

    def __post_init__(self) -> None:
        # Accept any iterable for the collections; keep them immutable.
        object.__setattr__(self, "topics", _strings("topics", self.topics))
        object.__setattr__(self, "trusted_proxies",
                           frozenset(_strings("trusted_proxies", self.trusted_proxies)))
        problems = []
        for name in ("socket_path", "api_prefix"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.startswith("/"):
                problems.append(f"{name} must be a path starting with '/'")
        if not self.topics:
            problems.append("topics must list at least one pattern")
        if not isinstance(self.event, str) or not self.event:
            problems.append("event must be a non-empty string")
        if problems:
            raise ConfigError("GatewaySettings", problems)

    @property
    def socket_route(self) -> str:
        """The WebSocket route: ``{socket_path}/websocket``."""
        return self.socket_path.rstrip("/") + "/websocket"

    @property
    def longpoll_route(self) -> str:
        """The long-poll route: ``{socket_path}/longpoll`` (what phoenix.js derives)."""
        return self.socket_path.rstrip("/") + "/longpoll"


@dataclass(frozen=True, slots=True)
class ClusterOptions:
    """How a gateway joins a cluster.

    ``nats`` is the server URL; ``push_token`` must match the nodes' token (none = any);
    ``pull`` lists services to pull from nodes every ``pull_interval`` seconds. A node
    silent for ``node_grace`` seconds (nodes beat twice a second) is presumed dead: it
    leaves the node lists until heard again, and its calls in flight end at once with a
    retryable error. A remote stream silent for ``stream_idle`` seconds (nodes send a
    keepalive every third of it) ends with ``Stream interrupted``.
    """

    nats: str
    prefix: str = "genapi"
    push_token: str | None = None
    pull: tuple[ServiceConfig, ...] = ()
    pull_interval: float = 30.0
    pull_timeout: float = 5.0
    node_grace: float = 2.0
    stream_window: int = 16
    stream_idle: float = 3.0
    name: str | None = None

    @classmethod
    def of(cls, value: ClusterOptions | str) -> ClusterOptions:
        """Options from themselves or from a bare NATS URL."""
        return value if isinstance(value, ClusterOptions) else cls(nats=value)


@dataclass(frozen=True, slots=True)
class AdminSettings:
    """The admin gate and console.

    ``token`` mounts the diagnostics under ``/admin`` and the dashboard at ``/dashboard``
    for callers presenting it as a Bearer token (not mounted without it). ``gate`` lists
    the admin actions allowed (node config pushes need ``push_config``, for one); without
    one it allows ``view_diagnostics`` when there is a token and nothing otherwise.
    ``name`` is who the token's holder is in the audit of admin actions.
    """

    token: str | None = None
    gate: AdminGate | None = None
    name: str = "admin"

    def __post_init__(self) -> None:
        if self.token is not None and (not isinstance(self.token, str)
                                       or not self.token.strip()):
            raise ConfigError("admin_token must be a non-empty string")

    def __repr__(self) -> str:
        shown = "None" if self.token is None else "'***'"
        return f"AdminSettings(token={shown}, gate={self.gate!r}, name={self.name!r})"

    @classmethod
    def of(cls, value: AdminSettings | AdminGate | None) -> AdminSettings:
        """Settings from themselves, from a bare gate, or the defaults."""
        if isinstance(value, AdminSettings):
            return value
        return cls(gate=value)

    def effective_gate(self) -> AdminGate:
        """The gate to use: the given one, else one allowing diagnostics with a token."""
        if self.gate is not None:
            return self.gate
        return AdminGate([AdminAction.VIEW_DIAGNOSTICS] if self.token is not None else ())


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    """Prometheus metrics at ``GET /metrics`` (:mod:`genapi.observability.metrics`).

    With ``token``, a scrape must present it as a Bearer token. ``buckets`` are the
    duration histograms' upper bounds in seconds; ``max_series`` caps the functions
    counted one by one (more share ``_other``).
    """

    token: str | None = None
    buckets: tuple[float, ...] | None = None
    max_series: int = 1000

    def __repr__(self) -> str:
        shown = "None" if self.token is None else "'***'"
        return f"MetricsSettings(token={shown}, max_series={self.max_series})"

    @classmethod
    def of(cls, value: MetricsSettings | bool) -> MetricsSettings | None:
        """Settings from themselves, ``True`` (the defaults) or ``False`` (None: off)."""
        if isinstance(value, MetricsSettings):
            return value
        return cls() if value else None


@dataclass(frozen=True, slots=True)
class TracingSettings:
    """An OpenTelemetry span per call (:mod:`genapi.observability.tracing`).

    ``sample_rate`` (0 to 1) is the share of calls without a parent span that get one;
    ``tracer_provider`` defaults to OpenTelemetry's global one.
    """

    sample_rate: float = 1.0
    tracer_provider: Any = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.sample_rate <= 1.0:
            raise ConfigError("sample_rate must be between 0 and 1")

    @classmethod
    def of(cls, value: TracingSettings | bool) -> TracingSettings | None:
        """Settings from themselves, ``True`` (the defaults) or ``False`` (None: off)."""
        if isinstance(value, TracingSettings):
            return value
        return cls() if value else None


@dataclass(slots=True)
class GatewayStats:
    """Counters a gateway keeps about its connections (read them, don't write them)."""

    connections_open: int = 0
    connections_total: int = 0
    connections_refused: int = 0
    slow_consumers_closed: int = 0
    idle_closed: int = 0
    oversize_frames: int = 0
    malformed_frames: int = 0
    calls_refused_inflight: int = 0
    connects_throttled: int = 0
    joins_throttled: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict."""
        return dataclasses.asdict(self)


def _field_names(value: Any) -> list[str]:
    return [f.name for f in dataclasses.fields(value)]


def _strings(name: str, values: Iterable[str]) -> tuple[str, ...]:
    if isinstance(values, str):
        raise ConfigError(f"{name} must be a collection of strings, not one string")
    items = tuple(values)
    if not all(isinstance(v, str) for v in items):
        raise ConfigError(f"{name} must hold strings")
    return items
