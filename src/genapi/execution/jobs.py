"""Async, fire-and-forget and stream work: the jobs, their bookkeeping and their bodies.

Every async, fire-and-forget or stream call runs as a *job* in a worker pool. A job is
keyed by its request id and knows its *owner* (the connection that asked; any object).
``cancel`` ends a job with the terminal error ``Cancelled``; ``stop`` ends a stream
normally (a stream end). When a connection goes away its jobs are cancelled, except those
whose function config sets ``keep_running_on_disconnect``.

:class:`JobRunner` starts jobs and runs their bodies: an async job sends its result (or
error) to the call's sink; a stream job sends the chunks and exactly one terminator,
whatever happens (timeout, cancel, stop, error). A job cancelled while still queued never
ran its body, so its terminator is sent from here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from enum import Enum
from typing import Any

from ..errors import ApiError, CallTimeout, Cancelled, InternalError, ShuttingDown
from ..functions.config import ResponseType
from ..messages import Response
from .pipeline import Call, Pipeline
from .pool import Pools

__all__ = ["Job", "JobEnd", "JobRunner", "Jobs"]

_ASYNC, _STREAM, _NONE = ResponseType.ASYNC, ResponseType.STREAM, ResponseType.NONE


class JobEnd(Enum):
    """Why a job was asked to end early."""

    CANCEL = "cancel"  # the client (or server) cancelled: terminal error "Cancelled"
    STOP = "stop"  # the server stopped a stream: normal stream end
    SHUTDOWN = "shutdown"  # the server is going away: "Server shutting down" (can_retry)


class Job:
    """One running (or queued) async or stream call."""

    __slots__ = ("end", "future", "keep_running", "owner", "request_id", "started")

    def __init__(self, request_id: str, owner: Any, keep_running: bool) -> None:
        self.request_id = request_id
        self.owner = owner
        self.keep_running = keep_running
        self.future: asyncio.Future[Any] | None = None
        self.started = False
        self.end: JobEnd | None = None

    def request_end(self, how: JobEnd) -> bool:
        """Ask the job to end; False if it already finished."""
        future = self.future
        if future is None or future.done():
            return False
        self.end = how
        return future.cancel()


class Jobs:
    """The registry of jobs, by request id and by owner."""

    def __init__(self) -> None:
        self._by_id: dict[str, set[Job]] = {}
        self._by_owner: dict[Any, set[Job]] = {}
        #: Called ``(owner, +1)`` as an owned job is registered and ``(owner, -1)`` as it is
        #: forgotten, so that a gateway can count acked work against its callers' caps.
        self.counted: Callable[[Any, int], None] | None = None

    def __len__(self) -> int:
        return sum(len(jobs) for jobs in self._by_id.values())

    def add(self, job: Job) -> None:
        """Register a job."""
        self._by_id.setdefault(job.request_id, set()).add(job)
        if job.owner is not None:
            self._by_owner.setdefault(job.owner, set()).add(job)
            if self.counted is not None:
                self.counted(job.owner, 1)

    def discard(self, job: Job) -> None:
        """Forget a finished job."""
        jobs = self._by_id.get(job.request_id)
        if jobs is not None:
            jobs.discard(job)
            if not jobs:
                del self._by_id[job.request_id]
        owned = self._by_owner.get(job.owner)
        if owned is not None and job in owned:
            owned.discard(job)
            if not owned:
                del self._by_owner[job.owner]
            if self.counted is not None:
                self.counted(job.owner, -1)

    def owned(self, owner: Any) -> int:
        """How many jobs ``owner`` has running or queued."""
        jobs = self._by_owner.get(owner)
        return 0 if jobs is None else len(jobs)

    def end(self, request_id: str, how: JobEnd, owner: Any = None) -> int:
        """End the jobs with ``request_id`` (only ``owner``'s when given); how many ended."""
        jobs = [j for j in self._by_id.get(request_id, ()) if owner is None or j.owner is owner]
        return sum(1 for job in jobs if job.request_end(how))

    def futures(self) -> list[asyncio.Future[Any]]:
        """The futures of every job still running or queued."""
        return [job.future for jobs in self._by_id.values() for job in jobs
                if job.future is not None and not job.future.done()]

    def end_all(self, how: JobEnd) -> int:
        """End every job (keep-running ones too); how many ended."""
        return sum(1 for jobs in list(self._by_id.values()) for job in list(jobs)
                   if job.request_end(how))

    def cancel_owned(self, owner: Any) -> int:
        """Cancel every job of ``owner`` that does not keep running; how many ended."""
        jobs = [j for j in self._by_owner.get(owner, ()) if not j.keep_running]
        return sum(1 for job in jobs if job.request_end(JobEnd.CANCEL))


async def _discard(response: Response) -> None:
    """The sink of calls nobody listens to."""


class JobRunner:
    """Starts async, fire-and-forget and stream calls as jobs and runs their bodies."""

    def __init__(self, pipeline: Pipeline, pools: Pools, jobs: Jobs) -> None:
        self.pipeline = pipeline
        self.pools = pools
        self.jobs = jobs
        self._terminals: set[asyncio.Task[None]] = set()  # terminators of never-started jobs

    async def settle(self) -> None:
        """Wait for the terminals of jobs that ended before they started."""
        if self._terminals:
            await asyncio.wait(set(self._terminals), timeout=1.0)

    def start(self, call: Call) -> Response | None:
        """Submit ``call`` to its pool (streams to the stream pool, async and
        fire-and-forget calls to the async pool); the first answer: an ack, a stream's
        init, or None."""
        request = call.request
        kind = call.route.response_type
        if kind is _STREAM:
            body, pool = self._stream_job, self.pools.stream_pool
        else:
            body, pool = self._async_job, self.pools.async_pool
        job = Job(request.request_id, call.owner, call.route.config.keep_running_on_disconnect)
        # the owner's share of the pool: one connection cannot queue out all the others
        job.future = pool.submit(lambda: body(call, job), owner=call.owner)
        self.jobs.add(job)
        job.future.add_done_callback(lambda _f: self._job_done(call, job))
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
                    else _ended(rid, job))
        task = asyncio.get_running_loop().create_task(_emit(call, response))
        self._terminals.add(task)
        task.add_done_callback(self._terminals.discard)

    async def _async_job(self, call: Call, job: Job) -> None:
        job.started = True
        rid = call.request.request_id
        try:
            response = Response.sync(rid, await self.pipeline.perform(call))
        except asyncio.CancelledError:
            await _emit(call, _ended(rid, job))
            raise
        except ApiError as exc:
            await _emit(call, Response.fail(rid, exc.message, can_retry=exc.can_retry))
            if call.route.is_local and isinstance(exc, InternalError | CallTimeout):
                # counts against the pool's circuit breaker; a remote node's failures count
                # against that node's breaker instead, never against the local pools
                raise
            return
        await _emit(call, response)

    async def _stream_job(self, call: Call, job: Job) -> None:
        job.started = True
        route = call.route
        rid = call.request.request_id
        emit = call.sink or _discard
        terminated = False
        invoker = self.pipeline.invoker

        async def send(response: Response) -> None:
            nonlocal terminated
            if terminated:
                return
            if not (response.success and response.has_more):
                terminated = True
            await emit(response)

        deadline = None
        if route.timeout_s is not None:
            deadline = invoker.deadlines.arm(route.timeout_s)
        try:
            if route.is_local:
                await invoker.stream(route, call.request, call.bound, send,
                                     self.pipeline.context_of(call))
            else:
                async for chunk in self.pipeline.caller.stream(route, call.request):
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
                await send(_ended(rid, job))
            raise
        except ApiError as exc:
            await send(Response.fail(rid, exc.message, can_retry=exc.can_retry))
        except Exception as exc:
            error = self.pipeline.wrap(call.request, exc, call.started_ns)
            await send(Response.fail(rid, error.message))
            if route.is_local:
                raise  # counts against the stream pool's breaker (see _async_job)
        finally:
            if deadline is not None:
                invoker.deadlines.disarm(deadline)


def _ended(request_id: str, job: Job) -> Response:
    """The terminal of a job ended early: shut down (retryable) or cancelled."""
    if job.end is JobEnd.SHUTDOWN:
        return Response.fail(request_id, ShuttingDown.default_message, can_retry=True)
    return Response.fail(request_id, Cancelled.default_message)


async def _emit(call: Call, response: Response) -> None:
    if call.sink is not None and call.route.response_type is not _NONE:
        await call.sink(response)

