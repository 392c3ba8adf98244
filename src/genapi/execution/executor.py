"""The executor: turns one request into exactly one terminal response.

The pipeline, composed once per route when it is first called::

    lookup → permission → rate limit → argument validation → before hook
           → dispatch by response type → (call with fallback and retries) → after hook

The stages live in :mod:`.pipeline`, async and stream work in :mod:`.jobs`, what happens as
a request ends in :mod:`.observers`; this module holds the entry points and the controls.
A stage fails by raising an :class:`~genapi.ApiError`, which becomes a ``success: false``
Response with the error's wire message. Any other exception is logged with its traceback
and answered ``Internal Server Error`` (plus ``repr(exc)`` when ``detail_error`` is on).

Response types:

* ``sync`` — the result (or error) is the answer;
* ``async`` — the answer is an ack; the final Response goes to the ``sink`` later;
* ``none`` — no answer at all; the function still runs;
* ``stream`` — the answer is the ``"init"`` ack; chunks and one terminator go to the sink.

A *durable* function (``FunConfig(durable=True)``, async or none) is not run here: after
its stages the call goes to the executor's :attr:`Executor.durable` (set by the gateway),
which stores it and answers the ack once it is committed; workers run it later.

Async, none and stream calls run as jobs in bounded worker pools (a full pool answers
``Service temporarily unavailable`` with ``can_retry``); they can be cancelled by request
id (:meth:`Executor.cancel`), streams stopped (:meth:`Executor.stop_stream`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import ApiError, DecodeError, DurableUnavailable, InvalidRequest
from ..functions.argspec import Limits
from ..functions.config import ResponseType
from ..functions.registry import Registry
from ..functions.routes import Route
from ..messages import Request, Response, decode_request
from ..telemetry.events import EXECUTOR_START, EXECUTOR_STOP, Telemetry, register_event
from ..telemetry.histograms import RequestHistograms
from ..transport.base import Transport
from .breaker import BreakerSet, BreakerSettings
from .calls import Caller
from .invoke import Invoker
from .jobs import JobEnd, JobRunner, Jobs
from .observers import RequestEnd, RequestObserver
from .pipeline import Call, Pipeline, RateLimiter, ResponseSink, Stage, request_meta
from .pool import Pools, PoolSettings, PoolState, PoolStatus
from .retry import Backoff
from .selection import NodeSelector
from .submit import DurableSubmit

__all__ = ["Call", "Executor", "Outcome", "RateLimiter", "ResponseSink", "Stage"]

logger = logging.getLogger("genapi.executor")

_SYNC = ResponseType.SYNC
_NONE = ResponseType.NONE

EXECUTOR_CANCEL = register_event(
    "executor.cancel", (), ("request_id", "how", "found"),
    "A client or the server asked to cancel (or stop) in-flight work by request id.",
)

#: The first response and, when it is an error, the error that produced it.
Outcome = tuple[Response | None, ApiError | None]


class Executor:
    """Runs requests against a :class:`~genapi.Registry`.

    * ``detail_error`` adds the internal reason to ``Internal Server Error`` (off by
      default: internals never reach clients);
    * ``max_threads`` bounds the pool that runs plain functions;
    * ``rate_limiter`` fills the rate-limit stage;
    * ``transport`` reaches functions on other nodes; ``selector``, ``node_breakers`` and
      ``backoff`` shape fallback and retries;
    * ``pools`` (or ``pool_settings``) bound async and stream work;
    * ``durable`` stores durable calls (a gateway with durable settings sets it).
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
        durable: DurableSubmit | None = None,
    ) -> None:
        self.registry = registry
        #: Where durable calls go after their stages (None: they are refused).
        self.durable = durable
        self.telemetry = telemetry if telemetry is not None else registry.telemetry
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
        self.pipeline = Pipeline(registry, self.invoker, self.caller, telemetry=self.telemetry,
                                 detail_error=detail_error, rate_limiter=rate_limiter)
        self.pools = pools if pools is not None else Pools(pool_settings,
                                                            telemetry=self.telemetry)
        self.jobs = Jobs()
        self.runner = JobRunner(self.pipeline, self.pools, self.jobs)
        self.end = RequestEnd(self.telemetry)
        self._owner_callbacks: list[Callable[[Any], None]] = []

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
        return self.pipeline.rate_limiter

    @rate_limiter.setter
    def rate_limiter(self, limiter: RateLimiter | None) -> None:
        self.pipeline.rate_limiter = limiter

    @property
    def detail_error(self) -> bool:
        """Whether ``Internal Server Error`` carries the internal reason (off by default)."""
        return self.pipeline.detail_error

    @detail_error.setter
    def detail_error(self, enabled: bool) -> None:
        self.pipeline.detail_error = enabled

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
            telemetry.emit(EXECUTOR_START, {"system_time": time.time_ns()},
                           request_meta(request))
        error: ApiError | None = None
        response: Response | None
        route: Route | None = None
        end = self.end
        counted_later = False
        try:
            route = self.registry.resolve(request.service, request.request_type, request.version)
            call = Call(request, route, sink, owner, started)
            for stage in self.pipeline.plan(route):
                pending = stage(call)
                if pending is not None:
                    await pending
            if call.route.response_type is _SYNC:
                response = Response(request_id=request.request_id,
                                    result=await self.pipeline.perform(call), success=True)
            elif call.route.config.durable:
                response = await self._submit_durable(call)
            elif end.histograms and sink is not None and call.route.response_type is not _NONE:
                # counted when it ends, with its terminal outcome (a cancelled stream fails)
                call.sink = end.count_at_end(sink, call.route, started)
                response = self.runner.start(call)
                counted_later = True
            else:
                response = self.runner.start(call)
        except ApiError as exc:
            error = exc
            response = Response.fail(request.request_id, exc.message, can_retry=exc.can_retry)
        except Exception as exc:
            error = self.pipeline.wrap(request, exc, started)
            response = Response.fail(request.request_id, error.message)
        if end.histograms or end.observers or EXECUTOR_STOP in telemetry.handled:
            end.report(request, response, route, time.perf_counter_ns() - started,
                       count=not counted_later)
        return response, error

    async def _submit_durable(self, call: Call) -> Response | None:
        submit = self.durable
        if submit is None:
            raise DurableUnavailable(
                "Durable calls unavailable: this gateway has no durable store",
                can_retry=False)
        return await submit.submit(call)

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
        self.end.add_observer(observer)

    def remove_request_observer(self, observer: RequestObserver) -> None:
        """Stop calling ``observer`` (nothing happens if it was not added)."""
        self.end.remove_observer(observer)

    def attach_histograms(self, histograms: RequestHistograms) -> None:
        """Count every request as it ends into ``histograms`` (by function and outcome).

        The counting is done inline, without a call: about a quarter of a microsecond per
        request (:mod:`genapi.telemetry.histograms`). genapi's Prometheus exporter uses it.
        """
        self.end.attach(histograms)

    def detach_histograms(self, histograms: RequestHistograms) -> None:
        """Stop counting into ``histograms`` (its counts are kept)."""
        self.end.detach(histograms)

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

    async def drain(self, timeout: float) -> int:
        """Let async and stream work finish for up to ``timeout`` seconds, then end what
        still runs with ``Server shutting down`` (``can_retry``); returns how many ended.

        Every job still sends exactly one terminal: the jobs ended here send theirs before
        this returns (waiting at most a further second).
        """
        running = self.jobs.futures()
        if running:
            await asyncio.wait(running, timeout=timeout)
        ended = self.jobs.end_all(JobEnd.SHUTDOWN)
        if ended:
            self._emit_cancel("*", "shutdown", ended)
            # A cancelled job's future is done at once; its body still sends the terminal.
            bodies = self.pools.running()
            if bodies:
                await asyncio.wait(bodies, timeout=1.0)
            await self.runner.settle()
        return ended

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

    async def aclose(self, timeout: float = 5.0) -> None:
        """Stop the pools (running jobs get ``timeout`` seconds) and release the threads."""
        await self.pools.aclose(timeout)
        self.invoker.shutdown()

    def reopen(self) -> None:
        """Make a closed executor usable again (a gateway started after it stopped): fresh
        pools with the same settings; threads are made again when needed."""
        if self.pools.async_pool.state is PoolState.OPEN:
            return
        self.pools = Pools(self.pools.settings, telemetry=self.telemetry)
        self.runner.pools = self.pools

