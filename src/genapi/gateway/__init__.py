"""The gateway: Phoenix Channels WebSocket server, HTTP API and authentication.

* :mod:`.app` — :class:`Gateway`, composed from the parts below;
* :mod:`.settings` — its settings: :class:`GatewaySettings`, :class:`ConnectionLimits`,
  :class:`ClusterOptions`, :class:`AdminSettings`, :class:`MetricsSettings`,
  :class:`TracingSettings`; :class:`GatewayStats`;
* :mod:`.connection` (with :mod:`.outbox`) — one WebSocket connection; :mod:`.host` — what
  it needs of the gateway;
* :mod:`.http` — the HTTP call and health endpoints; :mod:`.auth` — authenticators;
  :mod:`.admission` — connect and join rates;
* :mod:`.parts` — the optional parts (metrics, tracing); :mod:`.admin` — the admin
  console and dashboard; :mod:`.ops` — the admin write actions (:class:`Operations`,
  ``gateway.ops``) and :mod:`.admin_write`, their HTTP routes; :mod:`.cluster` — the
  cluster side (NATS);
* :mod:`.serve` — running under uvicorn with a graceful drain, and :mod:`.wsserver`, the
  WebSocket driver it installs.
"""

from __future__ import annotations

from .admission import AdmissionLimits
from .app import Gateway
from .auth import (
    ANONYMOUS,
    Authenticator,
    Identity,
    InsecureDemoAuthenticator,
    JWTAuthenticator,
)
from .settings import (
    AdminSettings,
    ClusterOptions,
    ConnectionLimits,
    GatewaySettings,
    GatewayStats,
    JoinAuthorizer,
    LongPollSettings,
    MetricsSettings,
    TracingSettings,
)

__all__ = [
    "ANONYMOUS",
    "AdminSettings",
    "AdmissionLimits",
    "Authenticator",
    "ClusterOptions",
    "ConnectionLimits",
    "Gateway",
    "GatewaySettings",
    "GatewayStats",
    "Identity",
    "InsecureDemoAuthenticator",
    "JWTAuthenticator",
    "JoinAuthorizer",
    "LongPollSettings",
    "MetricsSettings",
    "TracingSettings",
]
