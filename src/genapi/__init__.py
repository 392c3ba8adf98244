"""genapi: real-time backend APIs over WebSocket.

Clients call backend functions by name (``service`` + ``request_type`` + ``args``); a
gateway validates, authorizes, rate-limits and routes each call to the function and sends
the result back. See the README for a tour and ``docs/architecture.md`` for the layout.

``import genapi`` loads no optional backend: NATS (:class:`Node`, clusters), Redis,
OpenTelemetry and Prometheus are imported when first used.
"""

from __future__ import annotations

import typing as _typing

from . import telemetry
from ._version import __version__
from .client import Client
from .cluster.embedded import EmbeddedNats
from .diagnostics import CallStats, Diagnostics, HealthSettings
from .durable.settings import DurableSettings, WebhookSettings
from .errors import (
    AdminActionDenied,
    ApiError,
    ArgumentError,
    AuthenticationFailed,
    AuthenticationRequired,
    CallableDenied,
    CallTimeout,
    Cancelled,
    ConfigError,
    ConfigSourceNotFound,
    ConnectionLost,
    DecodeError,
    DependencyMissing,
    DurableUnavailable,
    FrameViolation,
    FunctionDisabled,
    FunctionNotFound,
    GenApiError,
    HookRejected,
    IdempotencyConflict,
    InternalError,
    InvalidRequest,
    LocalProtocolError,
    NatsServerMissing,
    NodeLost,
    NodeSelectionError,
    NoResponders,
    NotConnected,
    NoTransport,
    OutboxOverflow,
    PermissionDenied,
    ProtocolError,
    RateLimited,
    RateLimiterUnavailable,
    RelayError,
    RetryExhausted,
    ServiceUnavailable,
    ShuttingDown,
    StoreConflict,
    StoreError,
    StoreFull,
    StreamClosed,
    StreamInterrupted,
    TooManyInflight,
    TracingUnavailable,
    TransportError,
    TransportUnavailable,
    UnknownOption,
    UsageError,
    error_from_wire,
)
from .execution.context import CallContext
from .execution.executor import Executor
from .execution.pool import PoolSettings
from .execution.streams import StreamHelper, ThreadStreamHelper
from .functions.argspec import MISSING, Arg, ArgType, Limits
from .functions.config import FunConfig, PushConfig, ResponseType, ServiceConfig
from .functions.depends import Depends
from .functions.inference import MaxBytes, MaxItemBytes, MaxItems
from .functions.registry import Registry
from .functions.service import Service
from .gateway import (
    AdminSettings,
    ClusterOptions,
    ConnectionLimits,
    Gateway,
    GatewaySettings,
    Identity,
    InsecureDemoAuthenticator,
    JWTAuthenticator,
    LongPollSettings,
    MetricsSettings,
    TracingSettings,
)
from .gateway.ops import AdminChange, Operations
from .messages import (
    DurableInfo,
    Request,
    RequestInfo,
    Response,
    decode_request,
    encode_response,
)
from .schema import asyncapi_document, function_catalog, json_schemas, typescript_module
from .security import AdminAction, AdminGate
from .telemetry.events import Telemetry, attach, detach, emit, list_events
from .telemetry.handlers import OffloadingHandler
from .telemetry.histograms import RequestHistograms

if _typing.TYPE_CHECKING:
    from .cluster.node import Node

__all__ = [
    "MISSING",
    "AdminAction",
    "AdminActionDenied",
    "AdminChange",
    "AdminGate",
    "AdminSettings",
    "ApiError",
    "Arg",
    "ArgType",
    "ArgumentError",
    "AuthenticationFailed",
    "AuthenticationRequired",
    "CallContext",
    "CallStats",
    "CallTimeout",
    "CallableDenied",
    "Cancelled",
    "Client",
    "ClusterOptions",
    "ConfigError",
    "ConfigSourceNotFound",
    "ConnectionLimits",
    "ConnectionLost",
    "DecodeError",
    "DependencyMissing",
    "Depends",
    "Diagnostics",
    "DurableInfo",
    "DurableSettings",
    "DurableUnavailable",
    "EmbeddedNats",
    "Executor",
    "FrameViolation",
    "FunConfig",
    "FunctionDisabled",
    "FunctionNotFound",
    "Gateway",
    "GatewaySettings",
    "GenApiError",
    "HealthSettings",
    "HookRejected",
    "IdempotencyConflict",
    "Identity",
    "InsecureDemoAuthenticator",
    "InternalError",
    "InvalidRequest",
    "JWTAuthenticator",
    "Limits",
    "LocalProtocolError",
    "LongPollSettings",
    "MaxBytes",
    "MaxItemBytes",
    "MaxItems",
    "MetricsSettings",
    "NatsServerMissing",
    "NoResponders",
    "NoTransport",
    "Node",
    "NodeLost",
    "NodeSelectionError",
    "NotConnected",
    "OffloadingHandler",
    "Operations",
    "OutboxOverflow",
    "PermissionDenied",
    "PoolSettings",
    "ProtocolError",
    "PushConfig",
    "RateLimited",
    "RateLimiterUnavailable",
    "Registry",
    "RelayError",
    "Request",
    "RequestHistograms",
    "RequestInfo",
    "Response",
    "ResponseType",
    "RetryExhausted",
    "Service",
    "ServiceConfig",
    "ServiceUnavailable",
    "ShuttingDown",
    "StoreConflict",
    "StoreError",
    "StoreFull",
    "StreamClosed",
    "StreamHelper",
    "StreamInterrupted",
    "Telemetry",
    "ThreadStreamHelper",
    "TooManyInflight",
    "TracingSettings",
    "TracingUnavailable",
    "TransportError",
    "TransportUnavailable",
    "UnknownOption",
    "UsageError",
    "WebhookSettings",
    "__version__",
    "asyncapi_document",
    "attach",
    "decode_request",
    "detach",
    "emit",
    "encode_response",
    "error_from_wire",
    "function_catalog",
    "json_schemas",
    "list_events",
    "telemetry",
    "typescript_module",
]


def __getattr__(name: str) -> _typing.Any:
    # Names whose modules load an optional backend are imported on first use.
    if name == "Node":
        from .cluster.node import Node

        return Node
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
