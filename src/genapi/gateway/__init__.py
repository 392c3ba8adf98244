"""The gateway: Phoenix Channels WebSocket server, HTTP API and authentication."""

from __future__ import annotations

from .admission import AdmissionLimits
from .app import Gateway, JoinAuthorizer
from .auth import (
    ANONYMOUS,
    Authenticator,
    Identity,
    InsecureDemoAuthenticator,
    JWTAuthenticator,
)
from .cluster import ClusterOptions
from .settings import ConnectionLimits, GatewayStats

__all__ = [
    "ANONYMOUS",
    "AdmissionLimits",
    "Authenticator",
    "ClusterOptions",
    "ConnectionLimits",
    "Gateway",
    "GatewayStats",
    "Identity",
    "InsecureDemoAuthenticator",
    "JWTAuthenticator",
    "JoinAuthorizer",
]
