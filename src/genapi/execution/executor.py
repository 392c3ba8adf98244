"""The executor: turns one request into exactly one terminal response.

The pipeline, composed once when the executor is built::

    lookup → permission → rate limit → argument validation → before hook
           → dispatch by response type → (call with fallback and retries) → after hook

Each pre-dispatch stage has the same shape, ``stage(call) -> None`` or an awaitable of None,
and fails by raising an :class:`~genapi.ApiError`, which becomes a ``success: false``
Response with the error's wire message. Any other exception is logged with its traceback
and answered ``Internal Server Error`` (plus ``repr(exc)`` when ``detail_error`` is on).

Response types:

* ``sync`` — the result (or error) is the answer;
* ``async`` — the answer is an ack; the final Response goes to the ``sink`` later;
* ``none`` — no answer at all; the function still runs;
* ``stream`` — the answer is the ``"init"`` ack; chunks and one terminator go to the sink.

Async, none and stream calls run as jobs in bounded worker pools (a full pool answers
``Service temporarily unavailable`` with ``can_retry``); they can be cancelled by request
id (:meth:`Executor.cancel`), streams stopped (:meth:`Executor.stop_stream`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from ..errors import (
    ApiError,
    AuthenticationRequired,
    CallTimeout,
    Cancelled,
    DecodeError,
    InternalError,
    InvalidRequest,
    PermissionDenied,
)
from ..functions.argspec import Limits
from ..functions.config import FunConfig, ResponseType
from ..functions.registry import Registry
from ..functions.routes import Route
from ..functions.validation import BoundArgs
from ..messages import Request, Response, decode_request
from ..telemetry.events import (
    EXECUTOR_EXCEPTION,
    EXECUTOR_START,
    EXECUTOR_STOP,
    Telemetry,
    register_event,
)
from ..telemetry.histograms import RequestHistograms
from ..transport.base import Transport
from .breaker import BreakerSet, BreakerSettings
from .calls import Caller
from .context import CallContext
from .hooks import run_after, run_before
from .invoke import Invoker
from .jobs import Job, JobEnd, Jobs
from .pool import Pools, PoolSettings, PoolStatus
from .retry import Backoff
from .selection import NodeSelector
from .streams import Emit

__all__ = ["Call", "Executor", "Outcome", "RateLimiter", "ResponseSink", "Stage"]

logger = logging.getLogger("genapi.executor")

#: Where responses that come after the first one (async results, stream chunks) go.
ResponseSink = Emit
_EMPTY_BOUND: BoundArgs = ((), {})
_SYNC, _ASYNC, _STREAM, _NONE = (ResponseType.SYNC, ResponseType.ASYNC, ResponseType.STREAM,
                                 ResponseType.NONE)

EXECUTOR_CANCEL = register_event(
    "executor.cancel", (), ("request_id", "how", "found"),
    "A client or the server asked to cancel (or stop) in-flight work by request id.",
)


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
#: The first response and, when it is an error, the error that produced it.
Outcome = tuple[Response | None, ApiError | None]
#: ``observer(request, response, known, duration_us)``: see
#: :meth:`Executor.add_request_observer`.
RequestObserver = Callable[[Request, Response | None, bool, int], None]


async def _discard(response: Response) -> None:
    """The sink of calls nobody listens to."""


class Executor:
    """Runs requests against a :class:`~genapi.Registry`.

    * ``detail_error`` adds the internal reason to ``Internal Server Error`` (off by
      default: internals never reach clients);
    * ``max_threads`` bounds the pool that runs plain functions;
    * ``rate_limiter`` fills the rate-limit stage;
    * ``transport`` reaches functions on other nodes; ``selector``, ``node_breakers`` and
      ``backoff`` shape fallback and retries;
    * ``pools`` (or ``pool_settings``) bound async and stream work.
    """

    def __init__(
        self,
        registry: Registry,
        *,
        detail_error: bool = False,
        max_threads: int = 64,
        rate_limiter: RateLimiter | None = None,
        transport: Transport | None = None,
        selector: NodeSelector | None = None,
        node_breakers: BreakerSet | None = None,
        backoff: Backoff | None = None,
        pools: Pools | None = None,
        pool_settings: PoolSettings | None = None,
        rng: random.Random | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.registry = registry
        self.detail_error = detail_error
        self._rate_limiter = rate_limiter
        self.telemetry = telemetry if telemetry is not None else registry.telemetry
        self._observers: tuple[RequestObserver, ...] = ()
        self._histograms: tuple[RequestHistograms, ...] = ()
        self.invoker = Invoker(max_threads)
        rng = rng or random.Random()
        # (BreakerSet has a length, so "x or default" would replace an empty one)
        self.breakers = (
            node_breakers if node_breakers is not None
            else BreakerSet(BreakerSettings(), telemetry=self.telemetry)
        )
        self.caller = Caller(
            self.invoker,
            transport=transport,
            selector=selector if selector is not None else NodeSelector(rng=rng),
            breakers=self.breakers,
            backoff=backoff if backoff is not None else Backoff(),
            rng=rng,
            telemetry=self.telemetry,
        )
        self.pools = pools if pools is not None else Pools(pool_settings,
                                                            telemetry=self.telemetry)
        self.jobs = Jobs()
        self._terminals: set[asyncio.Task[None]] = set()  # terminators of never-started jobs
        self._owner_callbacks: list[Callable[[Any], None]] = []
        self._plans: dict[Any, tuple[Route, tuple[Stage, ...]]] = {}

    @property
    def limits(self) -> Limits:
        """The registry's argument and payload limits."""
        return self.registry.limits

    @property
    def transport(self) -> Transport | None:
        """The transport used for remote functions."""
        return self.caller.transport

    @transport.setter
    def transport(self, transport: Transport | None) -> None:
        self.caller.transport = transport

    @property
    def rate_limiter(self) -> RateLimiter | None:
        """The rate limiter of the rate-limit stage (None: no limits)."""
        return self._rate_limiter

    @rate_limiter.setter
    def rate_limiter(self, limiter: RateLimiter | None) -> None:
        self._rate_limiter = limiter
        self._plans = {}  # stage plans depend on it

    def _plan(self, route: Route) -> tuple[Stage, ...]:
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
        try:
            request = decode_request(
                payload, max_bytes=self.limits.max_payload_bytes, user_id=user_id,
                user_roles=tuple(user_roles), device_id=device_id, ip_address=ip_address,
            )
        except DecodeError as exc:
            error = InvalidRequest(exc.message)
            return Response.fail(exc.request_id or "unknown", error.message)
        return (await self.run(request, sink))[0]

    async def execute(self, request: Request, sink: ResponseSink | None = None) -> Response | None:
        """Run ``request`` through the pipeline.

        Returns the first Response (the result, an error, an async ack or a stream's init),
        or None for fire-and-forget functions. Later responses go to ``sink``.
        """
        return (await self.run(request, sink))[0]

    async def run(
        self, request: Request, sink: ResponseSink | None = None, owner: Any = None
    ) -> Outcome:
        """Like :meth:`execute`, also returning the error behind a failed response.

        ``owner`` (for example the connection) owns the async and stream work started, so
        that it can be cancelled when the owner goes away (:meth:`cancel_owned`).
        """
        telemetry = self.telemetry
        started = time.perf_counter_ns()
        if EXECUTOR_START in telemetry.handled:
            telemetry.emit(EXECUTOR_START, {"system_time": time.time_ns()}, _meta(request))
        error: ApiError | None = None
        response: Response | None
        route: Route | None = None
        try:
            route = self.registry.resolve(request.service, request.request_type, request.version)
            call = Call(request, route, sink, owner, started)
            for stage in self._plan(route):
                pending = stage(call)
                if pending is not None:
                    await pending
            kind = call.route.response_type
            if kind is _SYNC:
                response = Response(request_id=request.request_id,
                                    result=await self._perform(call), success=True)
            elif kind is _STREAM:
                response = self._start_job(call, self._stream_job, self.pools.stream_pool)
            else:
                response = self._start_job(call, self._async_job, self.pools.async_pool)
        except ApiError as exc:
            error = exc
            response = Response.fail(request.request_id, exc.message, can_retry=exc.can_retry)
        except Exception as exc:
            error = self._wrap(request, exc, started)
            response = Response.fail(request.request_id, error.message)
        histograms, observers = self._histograms, self._observers
        if histograms or observers or EXECUTOR_STOP in telemetry.handled:
            elapsed = time.perf_counter_ns() - started
            success = response.success if response is not None else True
            for counts in histograms:
                # Inline on purpose: the cheapest way to count on the request path (see
                # genapi.histograms); a call per request would cost more than the counting.
                if route is None:
                    pair = counts.unknown
                else:
                    pair = counts.by_route.get(route) or counts.bind(route)
                series = pair[success]
                series[0] += elapsed
                series[1 + bisect_left(counts.bounds_ns, elapsed)] += 1
            duration_us = elapsed // 1000
            for observe in observers:
                try:
                    observe(request, response, route is not None, duration_us)
                except Exception:
                    logger.exception("request observer %r failed", observe)
            if EXECUTOR_STOP in telemetry.handled:
                meta = _meta(request)
                meta["success"] = success
                meta["async"] = response.async_ if response is not None else False
                meta["error"] = response.error if response is not None else None
                telemetry.emit(EXECUTOR_STOP, {"duration_us": duration_us}, meta)
        return response, error

    def add_request_observer(self, observer: RequestObserver) -> None:
        """Call ``observer(request, response, known, duration_us)`` as each request ends.

        For per-request work that must cost little (genapi's tracer decides sampling
        here): the observer runs on the request path, like a telemetry handler, but
        without an event being built — so it must be O(1), never block and never raise.
        ``response`` is the first answer (None for fire-and-forget functions); ``known``
        is False for requests naming no registered function (clients choose those names);
        ``duration_us`` runs from the request's arrival to its first answer. Counts and
        durations by function are cheaper still with :meth:`attach_histograms`; anything
        slower belongs in a telemetry handler wrapped in an
        :class:`~genapi.OffloadingHandler`.
        """
        if observer not in self._observers:
            self._observers = (*self._observers, observer)

    def remove_request_observer(self, observer: RequestObserver) -> None:
        """Stop calling ``observer`` (nothing happens if it was not added)."""
        self._observers = tuple(o for o in self._observers if o != observer)

    def attach_histograms(self, histograms: RequestHistograms) -> None:
        """Count every request as it ends into ``histograms`` (by function and outcome).

        The counting is done inline, without a call: about a quarter of a microsecond per
        request (:mod:`genapi.histograms`). genapi's Prometheus exporter uses it.
        """
        if histograms not in self._histograms:
            self._histograms = (*self._histograms, histograms)

    def detach_histograms(self, histograms: RequestHistograms) -> None:
        """Stop counting into ``histograms`` (its counts are kept)."""
        self._histograms = tuple(h for h in self._histograms if h is not histograms)

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

    # -- running the function -----------------------------------------------------------

    async def _perform(self, call: Call) -> Any:
        """Call the function (fallback, retries), then the after hook; wrap surprises."""
        route = call.route
        extra = (
            {"call": CallContext(call.request, call.sink, call.owner)}
            if route.wants_context else None
        )
        try:
            if route.function is not None and route.retry is None:  # hot path: no retry loop
                result = await self.invoker.call(route, call.request, call.bound, extra)
            else:
                result = await self.caller.perform(route, call.request, call.bound, extra)
        except ApiError:
            raise
        except Exception as exc:
            raise self._wrap(call.request, exc, call.started_ns) from exc
        hook = route.after_hook
        if hook is not None:
            result = await run_after(
                hook, call.request, route.config, result, timeout=route.hook_timeout_s,
                run_sync=self.invoker.run_sync, telemetry=self.telemetry,
            )
        return result

    # -- jobs (async, none, stream) -----------------------------------------------------

    def _start_job(
        self, call: Call, body: Callable[[Call, Job], Awaitable[None]], pool: Any
    ) -> Response | None:
        request = call.request
        job = Job(request.request_id, call.owner, call.route.config.keep_running_on_disconnect)
        job.future = pool.submit(lambda: body(call, job))
        self.jobs.add(job)
        job.future.add_done_callback(lambda _f: self._job_done(call, job))
        kind = call.route.response_type
        if kind is _STREAM:
            return Response.stream_init(request.request_id)
        if kind is _ASYNC:
            return Response.async_ack(request.request_id)
        return None

    def _job_done(self, call: Call, job: Job) -> None:
        self.jobs.discard(job)
        future = job.future
        if future is not None and future.cancelled() and not job.started:
            # cancelled while queued: the body never ran, so answer here
            self._spawn_terminal(call, job)

    def _spawn_terminal(self, call: Call, job: Job) -> None:
        if call.sink is None or call.route.response_type is _NONE:
            return
        rid = call.request.request_id
        response = (Response.stream_end(rid) if job.end is JobEnd.STOP
                    else Response.fail(rid, Cancelled.default_message))
        task = asyncio.get_running_loop().create_task(self._emit(call, response))
        self._terminals.add(task)
        task.add_done_callback(self._terminals.discard)

    async def _async_job(self, call: Call, job: Job) -> None:
        job.started = True
        rid = call.request.request_id
        try:
            response = Response.sync(rid, await self._perform(call))
        except asyncio.CancelledError:
            await self._emit(call, Response.fail(rid, Cancelled.default_message))
            raise
        except ApiError as exc:
            await self._emit(call, Response.fail(rid, exc.message, can_retry=exc.can_retry))
            if isinstance(exc, InternalError | CallTimeout):
                raise  # counts against the pool's circuit breaker
            return
        await self._emit(call, response)

    async def _stream_job(self, call: Call, job: Job) -> None:
        job.started = True
        route = call.route
        rid = call.request.request_id
        emit = call.sink or _discard
        terminated = False

        async def send(response: Response) -> None:
            nonlocal terminated
            if terminated:
                return
            if not (response.success and response.has_more):
                terminated = True
            await emit(response)

        deadline = None
        if route.timeout_s is not None:
            deadline = self.invoker.deadlines.arm(route.timeout_s)
        try:
            if route.is_local:
                await self.invoker.stream(route, call.request, call.bound, send)
            else:
                async for chunk in self.caller.stream(route, call.request):
                    await send(Response.stream_chunk(rid, chunk))
            await send(Response.stream_end(rid))
        except asyncio.CancelledError:
            if deadline is not None and deadline.consume():
                await send(Response.fail(rid, CallTimeout(route.config.timeout or 0).message,
                                         can_retry=True))
                return
            if job.end is JobEnd.STOP:
                await send(Response.stream_end(rid))
            else:
                await send(Response.fail(rid, Cancelled.default_message))
            raise
        except ApiError as exc:
            await send(Response.fail(rid, exc.message, can_retry=exc.can_retry))
        except Exception as exc:
            error = self._wrap(call.request, exc, call.started_ns)
            await send(Response.fail(rid, error.message))
            raise
        finally:
            if deadline is not None:
                self.invoker.deadlines.disarm(deadline)

    async def _emit(self, call: Call, response: Response) -> None:
        if call.sink is not None and call.route.response_type is not _NONE:
            await call.sink(response)

    # -- control ------------------------------------------------------------------------

    def cancel(self, request_id: str, owner: Any = None) -> int:
        """Cancel in-flight async or stream work; the caller gets ``Cancelled``.

        Only ``owner``'s jobs when given. Returns how many jobs were cancelled.
        """
        found = self.jobs.end(request_id, JobEnd.CANCEL, owner)
        self._emit_cancel(request_id, "cancel", found)
        return found

    def stop_stream(self, request_id: str, owner: Any = None) -> int:
        """End a running stream normally (the client gets a stream end)."""
        found = self.jobs.end(request_id, JobEnd.STOP, owner)
        self._emit_cancel(request_id, "stop", found)
        return found

    def cancel_owned(self, owner: Any) -> int:
        """Cancel ``owner``'s jobs (except those configured to keep running)."""
        return self.jobs.cancel_owned(owner)

    def on_owner_closed(self, callback: Callable[[Any], None]) -> None:
        """Call ``callback(owner)`` whenever an owner (a connection) goes away."""
        self._owner_callbacks.append(callback)

    def owner_closed(self, owner: Any) -> None:
        """An owner went away: cancel its jobs and tell the callbacks (errors are logged)."""
        self.cancel_owned(owner)
        for callback in self._owner_callbacks:
            try:
                callback(owner)
            except Exception:
                logger.exception("owner-closed callback %r failed", callback)

    def _emit_cancel(self, request_id: str, how: str, found: int) -> None:
        if self.telemetry.has_handlers(EXECUTOR_CANCEL):
            self.telemetry.emit(EXECUTOR_CANCEL, {},
                                {"request_id": request_id, "how": how, "found": found})

    def pool_status(self) -> dict[str, Any]:
        """Pools (idle, busy, queued, breaker) and node breakers, as plain data."""
        pools: dict[str, PoolStatus] = self.pools.status()
        return {
            "pools": pools,
            "nodes": self.breakers.snapshot(),
        }

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

    async def aclose(self, timeout: float = 5.0) -> None:
        """Stop the pools (running jobs get ``timeout`` seconds) and release the threads."""
        await self.pools.aclose(timeout)
        self.invoker.shutdown()


def _meta(request: Request) -> dict[str, Any]:
    return {
        "request_id": request.request_id,
        "service": request.service,
        "request_type": request.request_type,
        "version": request.version,
        "user_id": request.user_id,
    }
