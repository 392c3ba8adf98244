"""HTTP access to the same pipeline: ``POST /api/{service}/{request_type}``.

The JSON body is the ``args`` object; ``?version=`` picks a version; ``X-Request-ID`` sets
the request id (one is generated otherwise). The identity comes from the authenticator
(``Authorization: Bearer …``). The answer is the seven-key Response as JSON, with an HTTP
status that fits it. Async functions answer with their final Response (the request waits
for it); stream functions answer ``application/x-ndjson``, one Response per line (the
``"init"`` ack, the chunks, the terminator); fire-and-forget functions answer 202.
Durable functions answer 202 with their ack once the call is stored (``result.durable``
is ``"stored"``), without waiting for it to run; ``Idempotency-Key`` names the call (a
repeated key answers the stored call instead of running it again).

An error with machine-readable details (every argument problem of a 422, a rate limit's
``retry_after_ms``, a relay error's ``code``…) adds them as an eighth key, ``details``
— what the WebSocket sends in the ``phx_reply`` error payload.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import msgspec
from starlette.requests import ClientDisconnect
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, StreamingResponse
from starlette.responses import Response as HttpResponse

from ..errors import (
    ApiError,
    ArgumentError,
    AuthenticationFailed,
    AuthenticationRequired,
    CallTimeout,
    FunctionDisabled,
    FunctionNotFound,
    InvalidRequest,
    PermissionDenied,
    RateLimited,
    RateLimiterUnavailable,
    ServiceUnavailable,
    error_from_wire,
)
from ..messages import MAX_IDEMPOTENCY_KEY_CHARS, Request, Response, encode_response
from .auth import identify
from .host import GatewayHost

__all__ = ["call_endpoint", "health_endpoint", "status_for"]

logger = logging.getLogger("genapi.gateway")

_args_decoder = msgspec.json.Decoder(dict[str, Any])
# Chunks a stream may get ahead of a slow HTTP client before the stream waits for it.
_STREAM_BUFFER = 64

_STATUS: tuple[tuple[type[ApiError], int], ...] = (
    (InvalidRequest, 400),
    (ArgumentError, 422),
    (AuthenticationRequired, 401),
    (PermissionDenied, 403),
    (FunctionNotFound, 404),
    (FunctionDisabled, 404),
    (RateLimited, 429),
    (RateLimiterUnavailable, 503),
    (ServiceUnavailable, 503),
    (CallTimeout, 504),
)


def status_for(error: ApiError | None) -> int:
    """The HTTP status for a pipeline outcome: 200, or the error's fitting status.

    Business errors a function raises with :class:`~genapi.ApiError` are 400; unexpected
    failures 500.
    """
    if error is None:
        return 200
    for kind, status in _STATUS:
        if isinstance(error, kind):
            return status
    if type(error) is ApiError:
        return 400
    return 500


def _json(response: Response, status: int, headers: Mapping[str, str] | None = None,
          details: Mapping[str, Any] | None = None) -> HttpResponse:
    try:
        if details:
            body = msgspec.json.encode({**msgspec.to_builtins(response),
                                        "details": dict(details)})
        else:
            body = encode_response(response)
    except (TypeError, msgspec.EncodeError, RecursionError):
        logger.exception("the result of request %s cannot be encoded", response.request_id)
        body = encode_response(Response.fail(response.request_id, "Internal Server Error"))
        status = 500
    return HttpResponse(body, status_code=status, media_type="application/json",
                        headers=headers)


async def _read_body(request: HttpRequest, limit: int) -> bytes | None:
    """The body, or None when it exceeds ``limit`` bytes (checked while streaming)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > limit:
            return None
    return bytes(chunks)


def _json_content_type(value: str | None) -> bool:
    """``application/json`` or a ``+json`` type, parameters (``charset``) allowed."""
    if value is None:
        return False
    kind = value.partition(";")[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/")
                                          and kind.endswith("+json"))


async def call_endpoint(gateway: GatewayHost, http: HttpRequest) -> HttpResponse:
    """Handle ``POST /api/{service}/{request_type}``."""
    request_id = http.headers.get("x-request-id") or uuid.uuid4().hex
    limit = gateway.executor.limits.max_payload_bytes
    params = dict(http.query_params)
    client = http.client
    ip = gateway.client_ip(client.host if client else None, http.headers)
    try:
        identity = await identify(gateway.authenticator, params, dict(http.headers),
                                  allow_anonymous=gateway.allow_anonymous,
                                  peer=f"an HTTP call from {ip}")
    except AuthenticationFailed as exc:
        challenge = ("Bearer" if exc.reason == "missing token" else
                     f'Bearer error="invalid_token", error_description="{exc.reason}"')
        return _json(Response.fail(request_id, exc.message), 401,
                     {"WWW-Authenticate": challenge})
    content_type = http.headers.get("content-type")
    if content_type is not None and not _json_content_type(content_type):
        # Also what keeps a browser's cross-site form post (a "simple" request, sent with
        # no preflight) from reaching a function.
        error = (f"Invalid request: Content-Type must be application/json, "
                 f"not {content_type[:100]}")
        return _json(Response.fail(request_id, error), 415)
    try:
        body = await _read_body(http, limit)
    except ClientDisconnect:  # the client went away mid-body: nobody to answer, no error
        logger.debug("an HTTP call from %s ended before its body did", ip)
        return HttpResponse(status_code=400)
    if body is None:
        error = f"Invalid request: Request payload exceeds maximum size of {limit} bytes"
        return _json(Response.fail(request_id, error), 413)
    try:
        args = _args_decoder.decode(body) if body.strip() else {}
    except (ValueError, RecursionError):  # bad JSON, not an object, bad UTF-8, absurd nesting
        return _json(Response.fail(request_id, "Invalid request: body must be a JSON object"), 400)
    key = http.headers.get("idempotency-key") or None
    if key is not None and len(key) > MAX_IDEMPOTENCY_KEY_CHARS:
        error = (f"Invalid request: Idempotency-Key has more than "
                 f"{MAX_IDEMPOTENCY_KEY_CHARS} characters")
        return _json(Response.fail(request_id, error), 400)
    request = Request(
        request_id=request_id,
        service=http.path_params["service"],
        request_type=http.path_params["request_type"],
        args=args,
        version=params.get("version") or None,
        device_id=identity.device_id or http.headers.get("x-device-id") or None,
        user_id=identity.user_id,
        user_roles=identity.roles,
        ip_address=ip,
        idempotency_key=key,
    )
    later: asyncio.Queue[Response] = asyncio.Queue(maxsize=_STREAM_BUFFER)
    owner = object()  # this HTTP request owns the work it starts
    result, failure = await gateway.executor.run(request, later.put, owner)
    if result is None:  # fire-and-forget
        return HttpResponse(status_code=202)
    if failure is None and result.async_:
        if _durable_ack(result):  # stored, runs later: the ack is the answer
            return _json(result, 202)
        if result.has_more:  # a stream: its Responses as newline-delimited JSON
            lines = _ndjson(result, later, lambda: gateway.executor.cancel_owned(owner))
            return StreamingResponse(lines, media_type="application/x-ndjson")
        result = await later.get()  # async: wait for the final Response
        failure = error_from_wire(result.error) if result.error is not None else None
    headers: dict[str, str] = {}
    if isinstance(failure, RateLimited):
        headers["Retry-After"] = str(max(1, -(-failure.retry_after_ms // 1000)))
    return _json(result, status_for(failure), headers,
                 failure.details if failure is not None else None)


def _durable_ack(response: Response) -> bool:
    result = response.result
    return isinstance(result, dict) and result.get("durable") == "stored"


async def _ndjson(
    first: Response, later: asyncio.Queue[Response], abandon: Callable[[], object]
) -> AsyncIterator[bytes]:
    finished = False
    try:
        yield encode_response(first) + b"\n"
        while not finished:
            response = await later.get()
            finished = not (response.success and response.has_more)
            yield encode_response(response) + b"\n"
    finally:
        if not finished:  # the client went away: stop the stream
            abandon()


async def health_endpoint(gateway: GatewayHost, http: HttpRequest) -> HttpResponse:
    """``GET /healthz``: 200 while serving, 503 while draining."""
    body = {"status": "draining" if gateway.draining else "ok",
            "connections": gateway.stats.connections_open}
    return JSONResponse(body, status_code=503 if gateway.draining else 200)
