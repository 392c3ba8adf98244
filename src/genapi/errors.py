"""genapi's exceptions: one tree, one root, all defined here.

::

    GenApiError
    ├── ConfigError (ValueError)       a configuration or setting is invalid
    │   ├── CallableDenied             a configured callable is denied (deny / allow list)
    │   ├── ConfigSourceNotFound (LookupError)  no pull source / pushed config for a service
    │   └── UnknownOption (TypeError)  an option that does not exist was given
    ├── UsageError (RuntimeError)      an API was used at a time or in a way it does not allow
    ├── DependencyMissing (RuntimeError)  a feature needs something that is not installed
    │   ├── TracingUnavailable         ``tracing=True`` without OpenTelemetry
    │   └── NatsServerMissing          no nats-server binary
    ├── DecodeError                    a request payload could not be decoded
    ├── ProtocolError                  the peer sent a malformed Phoenix frame
    │   └── FrameViolation             … or broke RFC 6455 (``code``: the close code)
    ├── LocalProtocolError             this side asked the protocol core for an illegal move
    ├── NodeSelectionError             no node could be chosen for a remote function
    ├── NoTransport                    a remote function was called without a transport
    ├── OutboxOverflow                 a connection's outgoing queue is full
    ├── StoreError                     a relay group store refused a write
    │   ├── StoreConflict              the group changed since it was read
    │   └── StoreFull                  the store holds as many groups as it may
    ├── DurableError                   durable calls (``genapi.durable``)
    │   ├── StoreUnavailable           the durable store's database failed (retryable)
    │   ├── CallNotFound (LookupError) no stored call has that id
    │   ├── StateConflict              the call's state does not allow the action
    │   ├── NotJsonable (TypeError)    arguments or a result cannot be stored as JSON
    │   └── WebhookError               a completion webhook was not delivered
    │       ├── WebhookRefused         … its URL or address is not allowed (SSRF guard)
    │       └── WebhookFailed          … the receiver failed or did not answer (retryable)
    ├── TransportError                 a transport could not deliver a call (retryable)
    │   ├── NoResponders               nobody serves the subject / node
    │   ├── NodeLost                   the node died with the call in flight (it may have run)
    │   ├── TransportUnavailable       this process is not connected: no node is to blame
    │   ├── ConnectionLost             the client's connection dropped mid-call
    │   └── NotConnected               the client could not connect
    └── ApiError                       an error a client sees, with its wire message
        ├── InvalidRequest             ``Invalid request: …`` (the payload could not be decoded)
        ├── ArgumentError              argument validation failed
        ├── FunctionNotFound           ``Unknown service: …`` / ``Unknown function …``
        ├── FunctionDisabled           ``disabled function: …``
        ├── AuthenticationRequired     ``Authentication required``
        │   └── AuthenticationFailed   ``Authentication failed: <reason>`` (token expired, …)
        ├── PermissionDenied           ``Permission denied``
        ├── RateLimited                ``Rate limit exceeded. Please retry after N seconds.``
        ├── RateLimiterUnavailable     ``Rate limit service unavailable``
        ├── ServiceUnavailable         ``Service temporarily unavailable``
        │   └── TooManyInflight        ``…: too many calls in flight`` (the caller's own load)
        ├── HookRejected               ``hook rejected: …``
        ├── Cancelled                  ``Cancelled``
        ├── RetryExhausted             ``All retry attempts exhausted``
        ├── InternalError              ``Internal Server Error`` (detail hidden by default)
        ├── CallTimeout (TimeoutError) ``Request timed out after <n>ms``
        ├── StreamClosed               a chunk was sent after the stream's end
        ├── RelayError                 a relay operation was refused (``code`` in details)
        ├── StreamInterrupted          ``Stream interrupted`` (can_retry): chunks were lost
        ├── ShuttingDown               ``Server shutting down`` (can_retry)
        ├── AdminActionDenied          ``Admin action denied: …``
        ├── DurableUnavailable         ``Durable calls unavailable`` (can_retry): not stored
        └── IdempotencyConflict        ``Idempotency key already used by another call``

Every :class:`ApiError` knows the message and ``can_retry`` flag it shows on the wire. A
service function may raise :class:`ApiError` (or a subclass) itself: the client receives
``success: false`` with exactly that message. Any other exception raised by a function is
masked as ``Internal Server Error`` unless ``detail_error`` is on.

Exceptions of the libraries genapi uses (nats-py, redis, msgspec, the database drivers) are
translated into these where they cross into genapi's API, with the original as
``__cause__``. The modules that raise a class re-export it (``genapi.relay.RelayError`` is
this module's ``RelayError``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

__all__ = [
    "AdminActionDenied",
    "ApiError",
    "ArgumentError",
    "AuthenticationFailed",
    "AuthenticationRequired",
    "CallNotFound",
    "CallTimeout",
    "CallableDenied",
    "Cancelled",
    "ConfigError",
    "ConfigSourceNotFound",
    "ConnectionLost",
    "DecodeError",
    "DependencyMissing",
    "DurableError",
    "DurableUnavailable",
    "FrameViolation",
    "FunctionDisabled",
    "FunctionNotFound",
    "GenApiError",
    "HookRejected",
    "IdempotencyConflict",
    "InternalError",
    "InvalidRequest",
    "LocalProtocolError",
    "NatsServerMissing",
    "NoResponders",
    "NoTransport",
    "NodeLost",
    "NodeSelectionError",
    "NotConnected",
    "NotJsonable",
    "OutboxOverflow",
    "PermissionDenied",
    "ProtocolError",
    "RateLimited",
    "RateLimiterUnavailable",
    "RelayError",
    "RetryExhausted",
    "ServiceUnavailable",
    "ShuttingDown",
    "StateConflict",
    "StoreConflict",
    "StoreError",
    "StoreFull",
    "StoreUnavailable",
    "StreamClosed",
    "StreamInterrupted",
    "TooManyInflight",
    "TracingUnavailable",
    "TransportError",
    "TransportUnavailable",
    "UnknownOption",
    "UsageError",
    "WebhookError",
    "WebhookFailed",
    "WebhookRefused",
    "error_from_wire",
]


class GenApiError(Exception):
    """Root of every exception genapi raises."""


class ConfigError(GenApiError, ValueError):
    """A configuration is invalid: a function or service config, settings, limits.

    ``ConfigError(subject, errors)`` lists every problem found in ``subject``, each a
    precise sentence (``invalid FunConfig x.y: …; …``); ``ConfigError(message)`` states
    one problem as it is. It is a :class:`ValueError`, as a bad argument is.
    """

    def __init__(self, subject: str, errors: Sequence[str] | None = None) -> None:
        if errors is None:
            self.subject = ""
            self.errors = [subject]
            super().__init__(subject)
            return
        self.subject = subject
        self.errors = list(errors)
        super().__init__(f"invalid {subject}: " + "; ".join(self.errors))


class CallableDenied(ConfigError):
    """A configured callable is on the deny list or not on the allow list."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"callable {name}", [reason])


class UnknownOption(ConfigError, TypeError):
    """An option that does not exist was given (a ``TypeError``, as an unknown keyword
    argument is)."""


class UsageError(GenApiError, RuntimeError):
    """An API was used at a time or in a way it does not allow (a bug in the caller)."""


class ConfigSourceNotFound(ConfigError, LookupError):
    """A gateway has no pull source, or no pushed config, for the service named."""


class DependencyMissing(GenApiError, RuntimeError):
    """A feature was asked for but something it needs is not installed."""


class TracingUnavailable(DependencyMissing):
    """Tracing was asked for but OpenTelemetry is not installed."""


class NatsServerMissing(DependencyMissing):
    """The nats-server binary could not be found."""


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


class ProtocolError(GenApiError):
    """An incoming frame is malformed: not JSON, wrong shape, bad binary header, bad UTF-8.

    A sibling of :class:`LocalProtocolError` on purpose: a gateway that closes the socket
    on a peer's garbage must not swallow its own mistakes as if the client had sent them.
    """


class FrameViolation(ProtocolError):
    """A WebSocket peer broke RFC 6455; ``code`` is the close code to fail it with."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class LocalProtocolError(GenApiError):
    """Local code tried an illegal move: a bad state transition or an unencodable frame."""


class NodeSelectionError(GenApiError):
    """No node could be chosen: empty list, bad mode, or a node callable that failed."""


class NoTransport(GenApiError):
    """A remote function was called but the executor has no transport."""


class OutboxOverflow(GenApiError):
    """A connection's outgoing queue limit was reached: the connection must be closed."""


class StoreError(GenApiError):
    """A group store refused a write."""


class StoreConflict(StoreError):
    """The group changed (or appeared, or went) since the revision the caller read."""


class StoreFull(StoreError):
    """The store holds as many groups as it may."""


class TransportError(GenApiError):
    """A transport failed to deliver a call or its reply; the call may be retried."""

    can_retry = True


class NoResponders(TransportError):
    """No process serves the destination (for example a node that is gone)."""


class NodeLost(TransportError):
    """The node running a call was declared dead (or left) while the call was in flight.

    Unlike :class:`NoResponders`, the call may have run: it is retried on another node only
    when its function allows retries.
    """


class TransportUnavailable(TransportError):
    """This process is not connected to its transport (a NATS outage): no node is to blame,
    and no other node can be reached either."""


class ConnectionLost(TransportError):
    """The connection dropped while a call was in flight; it may or may not have run."""


class NotConnected(TransportError):
    """The client could not connect (or is closed)."""


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
    """No function is registered under that service, request type and version.

    The message names what exists: ``Unknown service: x (known: a, b)``, ``Unknown
    function y in service x (did you mean z?)``, ``Unknown function y version 3.0.0 in
    service x (known versions: 1.0.0, 2.0.0)``.
    """


class FunctionDisabled(ApiError):
    """The function exists but is disabled."""


class AuthenticationRequired(ApiError):
    """The function needs an authenticated caller and the connection is anonymous."""

    default_message = "Authentication required"


class AuthenticationFailed(AuthenticationRequired):
    """An authenticator refused the caller; ``reason`` says why, in a form safe to show.

    Authenticators raise it to refuse with a reason (returning ``None`` refuses with
    ``refused``). genapi's reasons: ``missing token`` (no credentials where the gateway
    needs some), ``token expired``, ``invalid signature``, ``malformed token``,
    ``missing claim: <name>``, ``invalid audience``, ``invalid issuer``, ``token not yet
    valid``, ``algorithm not allowed``, ``invalid token``, ``authenticator error``. The
    client sees it in the 401 answer of the WebSocket upgrade (a JSON body
    ``{"reason": …}`` where the server can send one) and of HTTP calls.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"Authentication failed: {reason}")


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


class TooManyInflight(ServiceUnavailable):
    """The caller has as many calls in flight as it may (its connection's, its user's or
    its share of a worker pool): its own load, not the server's; retry when some ended.

    The message starts like :class:`ServiceUnavailable`'s, so that clients matching on it
    keep working.
    """

    default_message = "Service temporarily unavailable: too many calls in flight"
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


class StreamClosed(ApiError):
    """A chunk was sent after the stream's terminator."""

    default_message = "stream already ended"


class RelayError(ApiError):
    """A relay operation was refused; ``code`` is machine-readable (also in ``details``).

    Codes follow the reference where it has one (``not_found``, ``already_exists``,
    ``already_member``, ``user_not_in_group``, ``not_admin``, ``user_not_pending``,
    ``not_strict_private``, ``cannot_mute``, ``not_muted``); the send errors keep its
    client wordings (``Group not found``, ``Not a member of this group``, …).
    """

    def __init__(self, code: str, message: str, *, can_retry: bool = False) -> None:
        self.code = code
        super().__init__(message, can_retry=can_retry, details={"code": code})


class StreamInterrupted(ApiError):
    """A remote stream lost chunks or went silent (its node died, NATS dropped messages)."""

    default_message = "Stream interrupted"
    default_can_retry = True


class ShuttingDown(ApiError):
    """The server gave up on the call because it is shutting down; retry elsewhere."""

    default_message = "Server shutting down"
    default_can_retry = True


class AdminActionDenied(ApiError):
    """An admin action was attempted but is not allowed by the gate."""

    default_message = "Admin action denied"


class DurableUnavailable(ApiError):
    """A durable call could not be stored (the store is down or not configured), so it
    was not acknowledged: nothing will run; send it again (same request id) later."""

    default_message = "Durable calls unavailable"
    default_can_retry = True


class IdempotencyConflict(ApiError):
    """A durable call's idempotency key already names a different call (another caller,
    function or arguments): the stored call is not shown and nothing runs."""

    default_message = "Idempotency key already used by another call"


_WIRE_PREFIXES: tuple[tuple[str, type[ApiError]], ...] = (
    ("Invalid request", InvalidRequest),
    ("Missing required argument", ArgumentError),
    ("Invalid argument", ArgumentError),
    ("Unknown argument", ArgumentError),
    ("Unknown service", FunctionNotFound),
    ("Unknown function", FunctionNotFound),
    ("unsupported function", FunctionNotFound),  # the reference's wording (older gateways)
    ("disabled function", FunctionDisabled),
    ("Authentication failed", AuthenticationFailed),
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
    ("Server shutting down", ShuttingDown),
    ("Stream interrupted", StreamInterrupted),
    ("Durable calls unavailable", DurableUnavailable),
    ("Idempotency key already used", IdempotencyConflict),
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
    elif isinstance(error, AuthenticationFailed):
        error.reason = message.removeprefix("Authentication failed: ")
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


class NotJsonable(DurableError, TypeError):
    """A durable call's arguments or result cannot be stored as JSON."""


class WebhookError(DurableError):
    """A completion webhook was not delivered; ``can_retry`` says whether to try again."""

    can_retry = False


class WebhookRefused(WebhookError):
    """The webhook's URL, or an address its host resolves to, is not allowed: not http(s),
    or private, loopback, link-local, multicast, reserved or metadata ranges (the SSRF
    guard), unless the configuration allows them."""


class WebhookFailed(WebhookError):
    """The receiver answered with an error, a redirect (never followed) or not at all."""

    def __init__(self, message: str, *, can_retry: bool = True) -> None:
        super().__init__(message)
        self.can_retry = can_retry
