"""genapi: real-time backend APIs over WebSocket.

Clients call backend functions by name (``service`` + ``request_type`` + ``args``); a
gateway validates, authorizes, rate-limits and routes each call to the function and sends
the result back. See the README for a tour.
"""

from __future__ import annotations

from . import telemetry
from ._version import __version__
from .client import Client, ConnectionLost, NotConnected
from .cluster.embedded import EmbeddedNats
from .cluster.node import Node
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
from .execution.context import CallContext
from .execution.executor import Executor
from .execution.pool import PoolSettings
from .execution.streams import StreamHelper, ThreadStreamHelper
from .functions.argspec import MISSING, Arg, ArgType, Limits
from .functions.config import FunConfig, PushConfig, ResponseType, ServiceConfig
from .functions.inference import MaxBytes, MaxItemBytes, MaxItems
from .functions.registry import Registry
from .functions.service import Service
from .gateway import (
    ClusterOptions,
    ConnectionLimits,
    Gateway,
    Identity,
    InsecureDemoAuthenticator,
    JWTAuthenticator,
)
from .messages import Request, RequestInfo, Response, decode_request, encode_response
from .schema import asyncapi_document, function_catalog, json_schemas, typescript_module
from .security import AdminAction, AdminGate
from .telemetry.events import Telemetry, attach, detach, emit, list_events
from .telemetry.handlers import OffloadingHandler
from .telemetry.histograms import RequestHistograms

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
