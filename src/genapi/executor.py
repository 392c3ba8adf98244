"""The executor: turns one request into exactly one response.

The pipeline, composed once when the executor is built::

    lookup → permission → rate limit → argument validation → dispatch by response type

Each stage has the same shape, ``stage(call) -> None`` or an awaitable of None, and fails by
raising an :class:`~genapi.ApiError`, which becomes a ``success: false`` Response with the
error's wire message. Any other exception is logged with its traceback and answered with
``Internal Server Error`` (plus ``repr(exc)`` when ``detail_error`` is on).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from .argspec import Limits
from .errors import (
    ApiError,
    AuthenticationRequired,
    DecodeError,
    InternalError,
    InvalidRequest,
    PermissionDenied,
)
from .invoke import Invoker
from .messages import Request, Response, decode_request
from .registry import Registry
from .routes import Route
from .telemetry import (
    EXECUTOR_EXCEPTION,
    EXECUTOR_START,
    EXECUTOR_STOP,
    Telemetry,
)
from .validation import BoundArgs

__all__ = ["Call", "Executor", "Outcome", "RateLimiter", "ResponseSink", "Stage"]

logger = logging.getLogger("genapi.executor")

#: Where responses that come after the first one (async results, stream chunks) go.
ResponseSink = Callable[[Response], Awaitable[None]]
_EMPTY_BOUND: BoundArgs = ((), {})


class RateLimiter(Protocol):
    """What the rate-limit stage needs: raise RateLimited / RateLimiterUnavailable."""

    def check(self, request: Request) -> Awaitable[None] | None:
        """Check (and count) ``request`` against every applicable limit."""


class Call:
    """One request on its way through the pipeline."""

    __slots__ = ("bound", "request", "route", "sink", "started_ns")

    def __init__(self, request: Request, route: Route, sink: ResponseSink | None) -> None:
        self.request = request
        self.route = route
        self.sink = sink
        self.bound: BoundArgs = _EMPTY_BOUND
        self.started_ns = 0


Stage = Callable[[Call], Awaitable[None] | None]
#: The first response and, when it is an error, the error that produced it.
Outcome = tuple[Response | None, ApiError | None]


class Executor:
    """Runs requests against a :class:`~genapi.Registry`.

    ``detail_error`` adds the internal reason to ``Internal Server Error`` (off by default:
    internals never reach clients). ``max_threads`` bounds the pool that runs plain
    functions. ``rate_limiter`` fills the rate-limit stage.
    """

    def __init__(
        self,
        registry: Registry,
        *,
        detail_error: bool = False,
        max_threads: int = 64,
        rate_limiter: RateLimiter | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.registry = registry
        self.detail_error = detail_error
        self.rate_limiter = rate_limiter
        self.telemetry = telemetry or registry.telemetry
        self.invoker = Invoker(max_threads)
        self._stages: tuple[Stage, ...] = self._compose()

    @property
    def limits(self) -> Limits:
        """The registry's argument and payload limits."""
        return self.registry.limits

    def _compose(self) -> tuple[Stage, ...]:
        return (self._permission, self._rate_limit, self._validate)

    # -- entry points -------------------------------------------------------------------

    async def handle_payload(
        self,
        payload: bytes | str,
        *,
        user_id: str | None = None,
        user_roles: Sequence[str] = (),
        device_id: str | None = None,
        ip_address: str | None = None,
        sink: ResponseSink | None = None,
    ) -> Response | None:
        """Decode a raw JSON payload (identity from the caller) and execute it.

        A payload that cannot be decoded is answered with ``Invalid request: <reason>``.
        """
        response, _ = await self.run_payload(
            payload, user_id=user_id, user_roles=user_roles, device_id=device_id,
            ip_address=ip_address, sink=sink,
        )
        return response

    async def run_payload(
        self,
        payload: bytes | str,
        *,
        user_id: str | None = None,
        user_roles: Sequence[str] = (),
        device_id: str | None = None,
        ip_address: str | None = None,
        sink: ResponseSink | None = None,
    ) -> Outcome:
        """Like :meth:`handle_payload`, also returning the error behind a failure."""
        try:
            request = decode_request(
                payload,
                max_bytes=self.limits.max_payload_bytes,
                user_id=user_id,
                user_roles=tuple(user_roles),
                device_id=device_id,
                ip_address=ip_address,
            )
        except DecodeError as exc:
            error = InvalidRequest(exc.message)
            return Response.fail(exc.request_id or "unknown", error.message), error
        return await self.run(request, sink)

    async def execute(self, request: Request, sink: ResponseSink | None = None) -> Response | None:
        """Run ``request`` through the pipeline.

        Returns the first Response (the result, an error, an async ack or a stream's init),
        or None for fire-and-forget functions. Later responses go to ``sink``.
        """
        return (await self.run(request, sink))[0]

    async def run(self, request: Request, sink: ResponseSink | None = None) -> Outcome:
        """Like :meth:`execute`, also returning the error behind a failed response (for
        transports that map errors to statuses or reply details)."""
        telemetry = self.telemetry
        started = time.perf_counter_ns()
        if telemetry.has_handlers(EXECUTOR_START):
            telemetry.emit(EXECUTOR_START, {"system_time": time.time_ns()}, _meta(request))
        error: ApiError | None = None
        try:
            route = self.registry.resolve(request.service, request.request_type, request.version)
            call = Call(request, route, sink)
            call.started_ns = started
            for stage in self._stages:
                pending = stage(call)
                if pending is not None:
                    await pending
            response = await self._dispatch(call)
        except ApiError as exc:
            error = exc
            response = Response.fail(request.request_id, exc.message, can_retry=exc.can_retry)
        except Exception as exc:
            error = self._wrap(request, exc, started)
            response = Response.fail(request.request_id, error.message)
        if telemetry.has_handlers(EXECUTOR_STOP):
            meta = _meta(request)
            meta["success"] = response.success if response is not None else True
            meta["async"] = response.async_ if response is not None else False
            meta["error"] = response.error if response is not None else None
            telemetry.emit(
                EXECUTOR_STOP, {"duration_us": (time.perf_counter_ns() - started) // 1000}, meta
            )
        return response, error

    # -- stages -------------------------------------------------------------------------

    def _permission(self, call: Call) -> Awaitable[None] | None:
        route = call.route
        request = call.request
        if route.permission_callback is not None:
            if not request.user_id:
                raise AuthenticationRequired()
            return self._permission_callback(call, route.permission_callback)
        rule = route.permission
        if not rule.requires_identity:
            return None
        if not request.user_id:
            raise AuthenticationRequired()
        if not rule.allows(request):
            raise PermissionDenied()
        return None

    async def _permission_callback(self, call: Call, callback: Callable[..., Any]) -> None:
        route = call.route
        try:
            async with asyncio.timeout(route.hook_timeout_s):
                if asyncio.iscoroutinefunction(callback):
                    allowed = await callback(call.request, route.config)
                else:
                    allowed = await self.invoker.run_sync(callback, call.request, route.config)
        except Exception:
            logger.warning(
                "permission callback for %s.%s failed; denying",
                route.service, route.request_type, exc_info=True,
            )
            allowed = False
        if allowed is not True:
            raise PermissionDenied()

    def _rate_limit(self, call: Call) -> Awaitable[None] | None:
        limiter = self.rate_limiter
        if limiter is None:
            return None
        return limiter.check(call.request)

    def _validate(self, call: Call) -> None:
        call.bound = call.route.validator.bind(call.request.args)

    # -- dispatch -----------------------------------------------------------------------

    async def _dispatch(self, call: Call) -> Response | None:
        route = call.route
        if route.response_type != "sync":
            raise ApiError(f"unsupported response type: {route.response_type}")
        result = await self._invoke(call)
        return Response.sync(call.request.request_id, result)

    async def _invoke(self, call: Call) -> Any:
        route = call.route
        try:
            return await self.invoker.call(route, call.request, call.bound)
        except ApiError:
            raise
        except Exception as exc:
            raise self._wrap(call.request, exc, call.started_ns) from exc

    # -- errors -------------------------------------------------------------------------

    def _wrap(self, request: Request, exc: BaseException, started_ns: int) -> InternalError:
        """Log an unexpected exception and turn it into the masked client error."""
        logger.error(
            "%s.%s (request %s) raised",
            request.service, request.request_type, request.request_id, exc_info=exc,
        )
        if self.telemetry.has_handlers(EXECUTOR_EXCEPTION):
            meta = _meta(request)
            meta["kind"] = type(exc).__name__
            meta["reason"] = str(exc)
            duration = (time.perf_counter_ns() - started_ns) // 1000
            self.telemetry.emit(EXECUTOR_EXCEPTION, {"duration_us": duration}, meta)
        if self.detail_error:
            return InternalError(f"Internal Server Error: {exc!r}")
        return InternalError()

    async def aclose(self) -> None:
        """Release the executor's threads."""
        self.invoker.shutdown()


def _meta(request: Request) -> dict[str, Any]:
    return {
        "request_id": request.request_id,
        "service": request.service,
        "request_type": request.request_type,
        "version": request.version,
        "user_id": request.user_id,
    }
