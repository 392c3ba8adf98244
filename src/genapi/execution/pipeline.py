"""The pipeline's stages, composed once per route, and performing the call itself.

Each pre-dispatch stage has the same shape, ``stage(call) -> None`` or an awaitable of None,
and fails by raising an :class:`~genapi.ApiError`. The plan of a route lists only the
stages it needs (no permission stage for a public function, no hook stage without a hook),
in the executor's order::

    permission → rate limit → argument validation → before hook

:meth:`Pipeline.perform` then calls the function (locally, or on nodes with fallback and
retries) and its after hook; any exception that is not an :class:`~genapi.ApiError` is
logged and masked as ``Internal Server Error``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from ..errors import ApiError, AuthenticationRequired, InternalError, PermissionDenied
from ..functions.config import FunConfig
from ..functions.registry import Registry
from ..functions.routes import Route
from ..functions.validation import BoundArgs
from ..messages import Request
from ..telemetry.events import EXECUTOR_EXCEPTION, Telemetry
from .calls import Caller
from .context import CallContext
from .hooks import run_after, run_before
from .invoke import Invoker
from .streams import Emit

__all__ = ["Call", "Pipeline", "RateLimiter", "ResponseSink", "Stage", "request_meta"]

logger = logging.getLogger("genapi.executor")

#: Where responses that come after the first one (async results, stream chunks) go.
ResponseSink = Emit
_EMPTY_BOUND: BoundArgs = ((), {})


class RateLimiter(Protocol):
    """What the rate-limit stage needs: raise RateLimited / RateLimiterUnavailable."""

    def check(self, request: Request) -> Awaitable[None] | None:
        """Check (and count) ``request`` against every applicable limit."""


class Call:
    """One request on its way through the pipeline."""

    __slots__ = ("bound", "owner", "request", "route", "sink", "started_ns")

    def __init__(self, request: Request, route: Route, sink: ResponseSink | None,
                 owner: Any, started_ns: int = 0) -> None:
        self.request = request
        self.route = route
        self.sink = sink
        self.owner = owner
        self.bound: BoundArgs = _EMPTY_BOUND
        self.started_ns = started_ns


Stage = Callable[[Call], Awaitable[None] | None]


class Pipeline:
    """The stages every request of a route goes through, and the call itself."""

    def __init__(self, registry: Registry, invoker: Invoker, caller: Caller, *,
                 telemetry: Telemetry, detail_error: bool = False,
                 rate_limiter: RateLimiter | None = None) -> None:
        self.registry = registry
        self.invoker = invoker
        self.caller = caller
        self.telemetry = telemetry
        self.detail_error = detail_error
        self._rate_limiter = rate_limiter
        self._plans: dict[Any, tuple[Route, tuple[Stage, ...]]] = {}

    @property
    def rate_limiter(self) -> RateLimiter | None:
        """The rate limiter of the rate-limit stage (None: no limits)."""
        return self._rate_limiter

    @rate_limiter.setter
    def rate_limiter(self, limiter: RateLimiter | None) -> None:
        self._rate_limiter = limiter
        self._plans = {}  # stage plans depend on it

    def plan(self, route: Route) -> tuple[Stage, ...]:
        """The stages ``route`` needs, composed once per route (skipping no-op stages)."""
        entry = self._plans.get(route.key)
        if entry is not None and entry[0] is route:
            return entry[1]
        stages: list[Stage] = []
        if route.permission_callback is not None or route.permission.requires_identity:
            stages.append(self._permission)
        if self._rate_limiter is not None:
            stages.append(self._rate_limit)
        stages.append(self._validate)
        if route.before_hook is not None:
            stages.append(self._run_before_hook)
        plan = tuple(stages)
        self._plans[route.key] = (route, plan)
        return plan

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
        limiter = self._rate_limiter
        if limiter is None:
            return None
        return limiter.check(call.request)

    def _validate(self, call: Call) -> None:
        call.bound = call.route.validator.bind(call.request.args)

    async def _run_before_hook(self, call: Call) -> None:
        route = call.route
        hook = route.before_hook
        if hook is None:
            return
        request, config = await run_before(
            hook, call.request, route.config, timeout=route.hook_timeout_s,
            run_sync=self.invoker.run_sync, telemetry=self.telemetry,
            detail_error=self.detail_error,
        )
        if config is not None and config is not route.config:
            call.route = self._recompile(config)
        if request is not call.request or config is not None:
            call.request = request
            call.bound = call.route.validator.bind(request.args)

    def _recompile(self, config: FunConfig) -> Route:
        route = self.registry.compile(config)
        if route.before_hook is not None:  # the new config must not loop back into the hook
            route.before_hook = None
        return route

    # -- the call -----------------------------------------------------------------------

    @staticmethod
    def context_of(call: Call) -> dict[str, Any] | None:
        """The injected values of ``call`` (its ``CallContext``), if its function asks."""
        if not call.route.wants_context:
            return None
        return {"call": CallContext(call.request, call.sink, call.owner)}

    async def perform(self, call: Call) -> Any:
        """Call the function (fallback, retries), then the after hook; wrap surprises."""
        route = call.route
        extra = self.context_of(call)
        try:
            if route.function is not None and route.retry is None:  # hot path: no retry loop
                result = await self.invoker.call(route, call.request, call.bound, extra)
            else:
                result = await self.caller.perform(route, call.request, call.bound, extra)
        except ApiError:
            raise
        except Exception as exc:
            raise self.wrap(call.request, exc, call.started_ns) from exc
        hook = route.after_hook
        if hook is not None:
            result = await run_after(
                hook, call.request, route.config, result, timeout=route.hook_timeout_s,
                run_sync=self.invoker.run_sync, telemetry=self.telemetry,
            )
        return result

    def wrap(self, request: Request, exc: BaseException, started_ns: int) -> InternalError:
        """Log an unexpected exception and turn it into the masked client error."""
        logger.error(
            "%s.%s (request %s) raised",
            request.service, request.request_type, request.request_id, exc_info=exc,
        )
        if self.telemetry.has_handlers(EXECUTOR_EXCEPTION):
            meta = request_meta(request)
            meta["kind"] = type(exc).__name__
            meta["reason"] = str(exc)
            duration = (time.perf_counter_ns() - started_ns) // 1000
            self.telemetry.emit(EXECUTOR_EXCEPTION, {"duration_us": duration}, meta)
        if self.detail_error:
            return InternalError(f"Internal Server Error: {exc!r}")
        return InternalError()


def request_meta(request: Request) -> dict[str, Any]:
    """The telemetry metadata of a request."""
    return {
        "request_id": request.request_id,
        "service": request.service,
        "request_type": request.request_type,
        "version": request.version,
        "user_id": request.user_id,
    }
