"""Telemetry events of the gateway's connections."""

from __future__ import annotations

from ..telemetry.events import register_event

__all__ = ["CONNECTION_CLOSE", "CONNECTION_OPEN", "CONNECTION_REFUSED", "SLOW_CONSUMER"]

_META = ("ip_address", "user_id")
CONNECTION_OPEN = register_event("connection.open", ("count",), _META,
                                 "A WebSocket was accepted (count: connections now open).")
CONNECTION_CLOSE = register_event("connection.close", ("duration_ms", "count"),
                                  (*_META, "code", "reason"),
                                  "A WebSocket closed (code 0 when the client went away).")
CONNECTION_REFUSED = register_event("connection.refused", (), ("ip_address", "reason"),
                                    "A WebSocket upgrade was refused (auth, vsn, rate, drain).")
SLOW_CONSUMER = register_event("connection.slow_consumer_closed", ("queued_bytes",), _META,
                               "A client stopped reading; its full queue closed it (1008).")
