"""genapi: real-time backend APIs over WebSocket.

Clients call backend functions by name (``service`` + ``request_type`` + ``args``); a
gateway validates, authorizes, rate-limits and routes each call to the function and sends
the result back. See the README for a tour.
"""

from __future__ import annotations

from . import telemetry
from .argspec import MISSING, Arg, ArgType, Limits
from .client import Client, ConnectionLost, NotConnected
from .cluster.embedded import EmbeddedNats
from .cluster.node import Node
from .config import FunConfig, PushConfig, ResponseType, ServiceConfig
from .context import CallContext
from .diagnostics import CallStats, Diagnostics
from .errors import (
    ApiError,
    ArgumentError,
    AuthenticationRequired,
    CallTimeout,
    Cancelled,
    ConfigError,
    DecodeError,
    FunctionDisabled,
    FunctionNotFound,
    GenApiError,
    HookRejected,
    InternalError,
    InvalidRequest,
    NoResponders,
    PermissionDenied,
    RateLimited,
    RateLimiterUnavailable,
    RetryExhausted,
    ServiceUnavailable,
    TransportError,
    error_from_wire,
)
from .executor import Executor
from .gateway import (
    ClusterOptions,
    ConnectionLimits,
    Gateway,
    Identity,
    InsecureDemoAuthenticator,
    JWTAuthenticator,
)
from .histograms import RequestHistograms
from .inference import MaxBytes, MaxItemBytes, MaxItems
from .messages import Request, RequestInfo, Response, decode_request, encode_response
from .pool import PoolSettings
from .registry import Registry
from .schema import asyncapi_document, function_catalog, json_schemas, typescript_module
from .security import AdminAction, AdminGate
from .service import Service
from .streams import StreamHelper, ThreadStreamHelper
from .telemetry import Telemetry, attach, detach, emit, list_events
from .telemetry_handlers import OffloadingHandler

__version__ = "0.1.0"

__all__ = [
    "MISSING",
    "AdminAction",
    "AdminGate",
    "ApiError",
    "Arg",
    "ArgType",
    "ArgumentError",
    "AuthenticationRequired",
    "CallContext",
    "CallStats",
    "CallTimeout",
    "Cancelled",
    "Client",
    "ClusterOptions",
    "ConfigError",
    "ConnectionLimits",
    "ConnectionLost",
    "DecodeError",
    "Diagnostics",
    "EmbeddedNats",
    "Executor",
    "FunConfig",
    "FunctionDisabled",
    "FunctionNotFound",
    "Gateway",
    "GenApiError",
    "HookRejected",
    "Identity",
    "InsecureDemoAuthenticator",
    "InternalError",
    "InvalidRequest",
    "JWTAuthenticator",
    "Limits",
    "MaxBytes",
    "MaxItemBytes",
    "MaxItems",
    "NoResponders",
    "Node",
    "NotConnected",
    "OffloadingHandler",
    "PermissionDenied",
    "PoolSettings",
    "PushConfig",
    "RateLimited",
    "RateLimiterUnavailable",
    "Registry",
    "Request",
    "RequestHistograms",
    "RequestInfo",
    "Response",
    "ResponseType",
    "RetryExhausted",
    "Service",
    "ServiceConfig",
    "ServiceUnavailable",
    "StreamHelper",
    "Telemetry",
    "ThreadStreamHelper",
    "TransportError",
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
