"""Wire models: the :class:`Request` a client sends and the :class:`Response` it receives.

Both are msgspec structs, so encoding and decoding are fast and typed. A request payload is
JSON like::

    {"request_id": "r1", "service": "user_service", "request_type": "get_user",
     "args": {"user_id": "1"}, "version": "1.0.0", "device_id": "d1"}

``idempotency_key`` (optional, at most 255 characters) names a durable call so that
sending it again never runs it twice (see the README's "Guaranteed execution"); other
functions ignore it. ``user_id``, ``user_roles`` and ``ip_address`` never come from the
payload: the gateway fills them from the authenticated connection (keys of those names in
a payload are ignored), and so is ``durable`` (set by the worker that runs a durable call).
A Response always has exactly seven keys.
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from .errors import DecodeError

__all__ = [
    "CANCEL_EVENT",
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "MAX_IDEMPOTENCY_KEY_CHARS",
    "DurableInfo",
    "Request",
    "RequestInfo",
    "Response",
    "decode_request",
    "encode_fallback",
    "encode_response",
]

DEFAULT_MAX_PAYLOAD_BYTES = 1_000_000
#: The event a client pushes to cancel an in-flight call: ``{"request_id": "..."}``.
CANCEL_EVENT = "cancel"
NO_VERSION = "0.0.0"
#: The longest idempotency key a client may give.
MAX_IDEMPOTENCY_KEY_CHARS = 255


class DurableInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What a durable function knows about the run it is in.

    Annotate a parameter with ``DurableInfo`` to receive it (``None`` when the function
    is called some other way). ``attempt`` counts runs from 1 (a run whose worker died
    counts too); ``idempotency_key`` is the same on every attempt (the call id when the call
    was stored without a key): use the two to make
    side effects exactly-once (pass the key to a payment API, or record it with the
    effect in one transaction)::

        @signup.function(response_type="async", durable=True, max_attempts=5)
        async def welcome(email: str, durable: DurableInfo) -> dict:
            await mailer.send(email, dedupe_id=durable.idempotency_key)
            return {"sent": True, "attempt": durable.attempt}
    """

    __genapi_inject__: ClassVar[str] = "durable"

    call_id: str
    attempt: int
    max_attempts: int
    idempotency_key: str | None = None


class Request(msgspec.Struct, frozen=True, kw_only=True):
    """One call of a backend function.

    ``version`` ``None`` (or the reserved ``"0.0.0"``) asks for the default version.
    ``user_id``, ``user_roles`` and ``ip_address`` are trusted: only server code sets them.
    ``idempotency_key`` is the client's name for a durable call (optional); ``durable``
    is set by the worker running a durable call (never from a payload).
    """

    request_id: str
    service: str
    request_type: str
    args: dict[str, Any] = msgspec.field(default_factory=dict)
    version: str | None = None
    device_id: str | None = None
    user_id: str | None = None
    user_roles: tuple[str, ...] = ()
    ip_address: str | None = None
    idempotency_key: str | None = None
    durable: DurableInfo | None = None


class RequestInfo(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling, passed to functions that ask for it.

    Annotate a parameter with ``RequestInfo`` (or set ``request_info=True`` on the config,
    which appends it as the last positional argument) to receive it.
    """

    __genapi_inject__: ClassVar[str] = "request_info"

    request_id: str
    service: str
    request_type: str
    version: str | None = None
    user_id: str | None = None
    user_roles: tuple[str, ...] = ()
    device_id: str | None = None

    @classmethod
    def of(cls, request: Request) -> RequestInfo:
        """The info of ``request``."""
        return cls(
            request_id=request.request_id,
            service=request.service,
            request_type=request.request_type,
            version=request.version,
            user_id=request.user_id,
            user_roles=request.user_roles,
            device_id=request.device_id,
        )


class Response(msgspec.Struct, kw_only=True, omit_defaults=False):
    """The seven-key answer to a request.

    Use the constructors rather than setting flags by hand; they produce exactly the
    combinations clients of the original library expect.
    """

    request_id: str
    result: Any = None
    success: bool = False
    error: str | None = None
    async_: bool = msgspec.field(default=False, name="async")
    has_more: bool = False
    can_retry: bool = False

    @classmethod
    def sync(cls, request_id: str, result: Any) -> Response:
        """A finished call's result (also used for the final message of an async call)."""
        return cls(request_id=request_id, result=result, success=True)

    @classmethod
    def async_ack(cls, request_id: str) -> Response:
        """The immediate acknowledgement of an async call."""
        return cls(request_id=request_id, success=True, async_=True)

    @classmethod
    def stream_init(cls, request_id: str) -> Response:
        """The immediate acknowledgement of a stream: ``result == "init"``."""
        return cls(request_id=request_id, result="init", success=True, async_=True, has_more=True)

    @classmethod
    def stream_chunk(cls, request_id: str, result: Any) -> Response:
        """One chunk of a stream with more to come."""
        return cls(request_id=request_id, result=result, success=True, async_=True, has_more=True)

    @classmethod
    def stream_last(cls, request_id: str, result: Any) -> Response:
        """The last chunk of a stream, carrying data."""
        return cls(request_id=request_id, result=result, success=True, async_=True)

    @classmethod
    def stream_end(cls, request_id: str) -> Response:
        """The end of a stream without data."""
        return cls(request_id=request_id, success=True, async_=True)

    @classmethod
    def fail(cls, request_id: str, error: str, *, can_retry: bool = False) -> Response:
        """An error answer with ``success: false``."""
        return cls(request_id=request_id, error=error, can_retry=can_retry)

    @property
    def is_error(self) -> bool:
        """True when ``success`` is false."""
        return not self.success


class _Payload(msgspec.Struct):
    """The client-controlled part of a request; every field optional so we can name gaps."""

    request_id: str | None = None
    service: str | None = None
    request_type: str | None = None
    args: dict[str, Any] | None = None
    version: str | None = None
    device_id: str | None = None
    idempotency_key: str | None = None


def encode_fallback(value: Any) -> Any:
    """What the wire encoders do with a value msgspec cannot encode itself: a pydantic
    model (returned by a function without a declared return type) becomes its JSON data.
    Only called for such values, so it costs nothing otherwise."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    raise TypeError(f"Encoding objects of type {type(value).__name__} is "
                    "unsupported: declare the function's return type")


_payload_decoder = msgspec.json.Decoder(_Payload)
_encoder = msgspec.json.Encoder(enc_hook=encode_fallback)
# The order in which the reference lists missing fields.
_REQUIRED = ("request_type", "request_id", "service")


def decode_request(
    data: bytes | bytearray | memoryview | str,
    *,
    max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    user_id: str | None = None,
    user_roles: tuple[str, ...] = (),
    device_id: str | None = None,
    ip_address: str | None = None,
) -> Request:
    """Decode a JSON request payload, identity supplied by the caller.

    The raw length is checked before any parsing. ``device_id`` overrides the payload's
    when given. Raises :class:`~genapi.DecodeError`.
    """
    raw = data.encode() if isinstance(data, str) else data
    size = len(raw)
    if size > max_bytes:
        raise DecodeError(
            "invalid_payload",
            f"Request payload exceeds maximum size of {max_bytes} bytes (got {size} bytes)",
        )
    try:
        payload = _payload_decoder.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        # RecursionError: nesting deeper than the interpreter's recursion limit
        raise DecodeError("invalid_payload", f"Malformed request payload: {exc}") from exc
    return request_from_payload(
        payload, user_id=user_id, user_roles=user_roles, device_id=device_id,
        ip_address=ip_address,
    )


def request_from_payload(
    payload: _Payload,
    *,
    user_id: str | None,
    user_roles: tuple[str, ...],
    device_id: str | None,
    ip_address: str | None,
) -> Request:
    """Check required fields of a decoded payload and build the trusted Request."""
    request_id, service, request_type = payload.request_id, payload.service, payload.request_type
    if not (request_id and service and request_type):
        missing = [name for name in _REQUIRED if not getattr(payload, name)]
        raise DecodeError(
            "missing_field",
            "Missing required fields: " + ", ".join(missing),
            request_id=request_id or None,
        )
    version = payload.version
    if version == "" or version == NO_VERSION:
        version = None
    key = payload.idempotency_key
    if key is not None and not 0 < len(key) <= MAX_IDEMPOTENCY_KEY_CHARS:
        raise DecodeError(
            "invalid_payload",
            f"idempotency_key must have 1 to {MAX_IDEMPOTENCY_KEY_CHARS} characters",
            request_id=request_id,
        )
    return Request(
        request_id=request_id,
        service=service,
        request_type=request_type,
        args=payload.args if payload.args is not None else {},
        version=version,
        device_id=device_id if device_id is not None else payload.device_id,
        user_id=user_id,
        user_roles=user_roles,
        ip_address=ip_address,
        idempotency_key=key,
    )


def encode_response(response: Response) -> bytes:
    """Encode a Response as JSON bytes."""
    return _encoder.encode(response)
