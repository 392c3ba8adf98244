"""Gateway configuration values."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["CLOSE_GOING_AWAY", "CLOSE_POLICY", "CLOSE_RESTART", "CLOSE_TOO_BIG",
           "ConnectionLimits", "GatewayStats"]

# Close codes. Never 1000 for a live client: phoenix.js before 1.8.16 would not reconnect.
CLOSE_GOING_AWAY = 1001  # idle (missed heartbeats) or server-side disconnect
CLOSE_POLICY = 1008  # slow consumer: its outgoing queue filled up
CLOSE_TOO_BIG = 1009  # a frame over max_frame_bytes
CLOSE_RESTART = 1012  # graceful drain: phoenix.js reconnects (to another instance)


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """Per-connection bounds; every count and size a client controls is capped.

    * ``heartbeat_timeout`` — seconds without any incoming frame before the socket is
      closed (phoenix.js sends a heartbeat every 30 s);
    * ``max_queue_messages`` / ``max_queue_bytes`` — the outgoing queue; a client that
      does not read fills it and is disconnected (code 1008);
    * ``max_frame_bytes`` — largest incoming WebSocket message (code 1009 beyond);
    * ``max_channels`` — topics joined at once;
    * ``max_inflight`` — calls running at once for one connection (more are answered
      ``Service temporarily unavailable``);
    * ``drain_timeout`` — seconds in-flight calls get to finish on shutdown.
    """

    heartbeat_timeout: float = 60.0
    max_queue_messages: int = 1000
    max_queue_bytes: int = 8 * 1024 * 1024
    max_frame_bytes: int = 2 * 1024 * 1024
    max_channels: int = 100
    max_inflight: int = 1000
    drain_timeout: float = 10.0

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"ConnectionLimits.{field.name} must be a positive number")


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
