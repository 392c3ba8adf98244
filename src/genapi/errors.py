"""genapi's exceptions: one tree, one root.

::

    GenApiError
    ├── ConfigError (ValueError)       a FunConfig, ServiceConfig or PushConfig is invalid
    ├── DecodeError                    a request payload could not be decoded
    ├── TransportError                 a transport could not deliver a call (retryable)
    │   └── NoResponders               nobody serves the subject / node
    └── ApiError                       an error a client sees, with its wire message
        ├── InvalidRequest             ``Invalid request: …`` (the payload could not be decoded)
        ├── ArgumentError              argument validation failed
        ├── FunctionNotFound           ``unsupported function: …``
        ├── FunctionDisabled           ``disabled function: …``
        ├── AuthenticationRequired     ``Authentication required``
        ├── PermissionDenied           ``Permission denied``
        ├── RateLimited                ``Rate limit exceeded. Please retry after N seconds.``
        ├── RateLimiterUnavailable     ``Rate limit service unavailable``
        ├── ServiceUnavailable         ``Service temporarily unavailable``
        ├── HookRejected               ``hook rejected: …``
        ├── Cancelled                  ``Cancelled``
        ├── RetryExhausted             ``All retry attempts exhausted``
        ├── InternalError              ``Internal Server Error`` (detail hidden by default)
        └── CallTimeout (TimeoutError) ``Request timed out after <n>ms``
    DurableError                       durable calls (``genapi.durable``)
    ├── StoreUnavailable               the durable store's database failed (retryable)
    ├── CallNotFound (LookupError)     no stored call has that id
    └── StateConflict                  the call's state does not allow the action

Every :class:`ApiError` knows the message and ``can_retry`` flag it shows on the wire. A
service function may raise :class:`ApiError` (or a subclass) itself: the client receives
``success: false`` with exactly that message. Any other exception raised by a function is
masked as ``Internal Server Error`` unless ``detail_error`` is on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

__all__ = [
    "ApiError",
    "ArgumentError",
    "AuthenticationRequired",
    "CallTimeout",
    "Cancelled",
    "CallNotFound",
    "ConfigError",
    "DecodeError",
    "DurableError",
    "FunctionDisabled",
    "FunctionNotFound",
    "GenApiError",
    "HookRejected",
    "InternalError",
    "InvalidRequest",
    "NoResponders",
    "PermissionDenied",
    "RateLimited",
    "RateLimiterUnavailable",
    "RetryExhausted",
    "ServiceUnavailable",
    "StateConflict",
    "StoreUnavailable",
    "TransportError",
    "error_from_wire",
]


class GenApiError(Exception):
    """Root of every exception genapi raises."""


class ConfigError(GenApiError, ValueError):
    """A function or service configuration is invalid.

    ``errors`` lists every problem found, each a precise sentence.
    """

    def __init__(self, subject: str, errors: Sequence[str]) -> None:
        self.subject = subject
        self.errors = list(errors)
        super().__init__(f"invalid {subject}: " + "; ".join(self.errors))


DecodeCode = Literal["invalid_payload", "missing_field"]


class DecodeError(GenApiError):
    """A request payload could not be turned into a :class:`~genapi.Request`.

    ``code`` is ``"invalid_payload"`` (too large, not JSON, wrong shape) or
    ``"missing_field"``. ``request_id`` is the payload's id when it could be read.
    """

    def __init__(
        self, code: DecodeCode, message: str, *, request_id: str | None = None
    ) -> None:
        self.code: DecodeCode = code
        self.message = message
        self.request_id = request_id
        super().__init__(message)


class TransportError(GenApiError):
    """A transport failed to deliver a call or its reply; the call may be retried."""

    can_retry = True


class NoResponders(TransportError):
    """No process serves the destination (for example a node that is gone)."""


class ApiError(GenApiError):
    """An error whose message is shown to the client.

    Raise it from a service function to answer ``success: false`` with ``message``::

        @users.function()
        async def get_user(user_id: str) -> dict:
            raise ApiError("User not found")

    ``details`` is extra, machine-readable data (for example ``retry_after_ms``); it is
    sent in the ``phx_reply`` error payload and returned by the HTTP endpoint, never in
    the seven-key Response.
    """

    default_message = "Internal Server Error"
    default_can_retry = False

    def __init__(
        self,
        message: str | None = None,
        *,
        can_retry: bool | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        self.message = self.default_message if message is None else message
        self.can_retry = self.default_can_retry if can_retry is None else can_retry
        self.details: dict[str, Any] = dict(details) if details else {}
        super().__init__(self.message)


class InvalidRequest(ApiError):
    """The payload could not be decoded into a request."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"Invalid request: {reason}")


class ArgumentError(ApiError):
    """The request's arguments do not match the function's declared types."""


class FunctionNotFound(ApiError):
    """No function is registered under that service, request type and version."""


class FunctionDisabled(ApiError):
    """The function exists but is disabled."""


class AuthenticationRequired(ApiError):
    """The function needs an authenticated caller and the connection is anonymous."""

    default_message = "Authentication required"


class PermissionDenied(ApiError):
    """The caller is not allowed to call this function."""

    default_message = "Permission denied"


class RateLimited(ApiError):
    """A rate limit was exceeded; ``details["retry_after_ms"]`` says when to retry."""

    default_can_retry = True

    def __init__(self, retry_after_ms: int, *, details: Mapping[str, Any] | None = None) -> None:
        self.retry_after_ms = retry_after_ms
        merged = {"retry_after_ms": retry_after_ms, **(details or {})}
        # rounded up (the original rounded down, telling clients to retry too early,
        # often "after 0 seconds")
        seconds = -(-retry_after_ms // 1000)
        super().__init__(
            f"Rate limit exceeded. Please retry after {seconds} seconds.",
            details=merged,
        )


class RateLimiterUnavailable(ApiError):
    """The rate-limit backend failed and the limiter is configured to fail closed."""

    default_message = "Rate limit service unavailable"
    default_can_retry = True


class ServiceUnavailable(ApiError):
    """A worker pool is full or its circuit breaker is open."""

    default_message = "Service temporarily unavailable"
    default_can_retry = True


class HookRejected(ApiError):
    """A ``before_execute`` hook rejected the call."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"hook rejected: {reason}")


class Cancelled(ApiError):
    """The call was cancelled by the client or the server."""

    default_message = "Cancelled"


class RetryExhausted(ApiError):
    """Every attempt on every eligible node failed."""

    default_message = "All retry attempts exhausted"
    default_can_retry = True


class InternalError(ApiError):
    """An unexpected failure; the client sees ``Internal Server Error``."""


class CallTimeout(ApiError, TimeoutError):
    """The function did not finish within its timeout."""

    default_can_retry = True

    def __init__(self, timeout_ms: int) -> None:
        self.timeout_ms = timeout_ms
        super().__init__(f"Request timed out after {timeout_ms}ms")


_WIRE_PREFIXES: tuple[tuple[str, type[ApiError]], ...] = (
    ("Invalid request", InvalidRequest),
    ("Missing required argument", ArgumentError),
    ("Invalid argument", ArgumentError),
    ("Unknown argument", ArgumentError),
    ("unsupported function", FunctionNotFound),
    ("disabled function", FunctionDisabled),
    ("Authentication required", AuthenticationRequired),
    ("Permission denied", PermissionDenied),
    ("Rate limit exceeded", RateLimited),
    ("Rate limit service unavailable", RateLimiterUnavailable),
    ("Service temporarily unavailable", ServiceUnavailable),
    ("hook rejected", HookRejected),
    ("Cancelled", Cancelled),
    ("All retry attempts exhausted", RetryExhausted),
    ("Request timed out", CallTimeout),
    ("Internal Server Error", InternalError),
)


def error_from_wire(
    message: str, *, can_retry: bool = False, details: Mapping[str, Any] | None = None
) -> ApiError:
    """Rebuild the typed error behind a wire error message (used by clients).

    ``error_from_wire("Permission denied")`` is a :class:`PermissionDenied`; messages of
    no known kind give a plain :class:`ApiError`. ``details`` from the reply are kept.
    """
    cls: type[ApiError] = ApiError
    for prefix, kind in _WIRE_PREFIXES:
        if message.startswith(prefix):
            cls = kind
            break
    error = cls.__new__(cls)
    ApiError.__init__(error, message, can_retry=can_retry, details=details)
    if isinstance(error, RateLimited):
        error.retry_after_ms = int(error.details.get("retry_after_ms", 0))
    elif isinstance(error, CallTimeout):
        digits = "".join(ch for ch in message if ch.isdigit())
        error.timeout_ms = int(digits) if digits else 0
    elif isinstance(error, HookRejected):
        error.reason = message.removeprefix("hook rejected: ")
    elif isinstance(error, InvalidRequest):
        error.reason = message.removeprefix("Invalid request: ")
    return error


# ---- durable calls


class DurableError(GenApiError):
    """Root of the errors of the durable-call store (:mod:`genapi.durable`)."""


class StoreUnavailable(DurableError):
    """The store's database failed (unreachable, lost connection, I/O error); retry later.

    The driver's exception is the ``__cause__``. The operation may or may not have been
    applied: enqueue again with the same idempotency key to find out safely.
    """

    can_retry = True


class CallNotFound(DurableError, LookupError):
    """No stored call has the id (it never existed or was purged)."""

    def __init__(self, call_id: str) -> None:
        self.call_id = call_id
        super().__init__(f"no durable call {call_id!r}")


class StateConflict(DurableError):
    """The call's current state does not allow the action (retrying a running call...)."""

    def __init__(self, call_id: str, state: str, action: str) -> None:
        self.call_id = call_id
        self.state = state
        self.action = action
        super().__init__(f"cannot {action} durable call {call_id!r}: it is {state}")
