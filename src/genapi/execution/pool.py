"""Worker pools: bounded concurrency for async, fire-and-forget and stream work.

A :class:`WorkerPool` runs at most ``size`` coroutines at once and keeps at most
``max_queue`` more waiting, first in first out. :meth:`WorkerPool.submit` never blocks: it
returns an :class:`asyncio.Future` for the result, or raises
:class:`~genapi.ServiceUnavailable` (``can_retry`` true) at once when the queue is full, the
pool's circuit breaker is open, or the pool is closing. An *owner* (a connection) may hold
at most ``owner_share`` of the pool's places (running plus queued), so that one busy
client cannot take the whole pool from the others; past it the owner gets
:class:`~genapi.TooManyInflight` (a ServiceUnavailable)::

    pool = WorkerPool("async", size=100, max_queue=1000)
    future = pool.submit(lambda: do_work(x))
    result = await asyncio.wait_for(future, 5)   # the caller owns the deadline

The pool owns its tasks. A task that raises is counted once as a failure (and fed to the
breaker; ``failure_threshold`` consecutive failures open it) and its future carries the
exception; the pool carries on. Cancelling the future removes a queued task or cancels a
running one. :meth:`WorkerPool.aclose` refuses queued tasks (their futures get
ServiceUnavailable: they never ran, so a retry is safe), waits for running ones up to a
timeout, then cancels them (their futures get :class:`~genapi.Cancelled`).
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import functools
import itertools
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from enum import Enum, StrEnum
from types import MappingProxyType, TracebackType
from typing import Any, Final, NoReturn, TypeVar

from ..errors import Cancelled, ConfigError, ServiceUnavailable, TooManyInflight
from ..telemetry.events import Telemetry, default_telemetry, now_us, register_event
from .breaker import BreakerSettings, BreakerState, CircuitBreaker

__all__ = [
    "POOL_TASK_EXCEPTION",
    "POOL_TASK_REJECTED",
    "POOL_TASK_START",
    "POOL_TASK_STOP",
    "PoolSettings",
    "PoolState",
    "PoolStatus",
    "Pools",
    "WorkerPool",
]

logger = logging.getLogger("genapi.pool")

T = TypeVar("T")

POOL_TASK_START: Final = register_event(
    "worker_pool.task.start", ("system_time",), ("pool_name",), "A pool task started running."
)
POOL_TASK_STOP: Final = register_event(
    "worker_pool.task.stop", ("duration_us",), ("pool_name",), "A pool task returned."
)
POOL_TASK_EXCEPTION: Final = register_event(
    "worker_pool.task.exception",
    ("duration_us",),
    ("pool_name", "kind", "reason"),
    "A pool task raised (kind is the exception type) or was cancelled (kind 'cancelled').",
)
POOL_TASK_REJECTED: Final = register_event(
    "worker_pool.task.rejected",
    ("system_time",),
    ("pool_name", "reason"),
    "A task was refused: reason 'queue_full', 'owner_share', 'circuit_open', 'closed' or "
    "'shutdown'.",
)

#: Pools trip after more failures than a node breaker: one bad function should not stop all.
DEFAULT_POOL_BREAKER: Final = BreakerSettings(failure_threshold=10, reset_timeout=60.0)


class PoolState(StrEnum):
    """A pool's lifecycle: OPEN → CLOSING → CLOSED, driven only by :meth:`WorkerPool.aclose`."""

    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class _JobState(Enum):
    QUEUED = 1
    RUNNING = 2
    DONE = 3


class _Ticket(asyncio.Future[Any]):
    """The future :meth:`WorkerPool.submit` returns, which is also the pool's job record.

    Overriding :meth:`cancel` lets the pool act at once (drop the queued job or cancel the
    running task) instead of one loop iteration later through a done callback.
    """

    __slots__ = ("context", "fn", "key", "owner", "pool", "started_us", "state", "task",
                 "trial")

    def __init__(
        self,
        pool: WorkerPool,
        fn: Callable[[], Awaitable[Any]],
        trial: bool,
        context: contextvars.Context | None,
        loop: asyncio.AbstractEventLoop,
        owner: Any = None,
    ) -> None:
        super().__init__(loop=loop)
        self.pool = pool
        self.owner = owner  # whose share of the pool it takes (None: nobody's)
        self.fn = fn
        self.trial = trial  # holds one of the breaker's half-open trial slots
        self.context = context
        self.state = _JobState.QUEUED
        self.task: asyncio.Task[Any] | None = None
        self.key = 0
        self.started_us = 0

    def cancel(self, msg: Any | None = None) -> bool:
        if not super().cancel(msg):
            return False
        self.pool._cancel(self)
        return True


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PoolStatus:
    """A pool's counters at one instant. Each submitted task is counted exactly once:
    rejected, cancelled, or executed (``total_failed`` counts the executed that raised)."""

    name: str
    state: PoolState
    size: int
    max_queue: int
    idle: int
    busy: int
    queued: int
    total_executed: int
    total_failed: int
    total_rejected: int
    total_cancelled: int
    breaker: BreakerState

    @property
    def circuit_open(self) -> bool:
        """True while the pool's breaker refuses work."""
        return self.breaker is BreakerState.OPEN


async def _call(fn: Callable[[], Awaitable[T]]) -> T:
    return await fn()


def _settle_exception(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
        # The pool already counted and reported it; an unawaited future must not log it again.
        future.exception()


class WorkerPool:
    """At most ``size`` concurrent tasks and ``max_queue`` waiting ones (see module doc)."""

    def __init__(
        self,
        name: str,
        size: int,
        max_queue: int,
        *,
        breaker: CircuitBreaker | None = None,
        telemetry: Telemetry | None = None,
        owner_share: float = 1.0,
    ) -> None:
        problems = []
        if size < 1:
            problems.append("size must be >= 1")
        if max_queue < 0:
            problems.append("max_queue must be >= 0")
        if not 0.0 < owner_share <= 1.0:
            problems.append("owner_share must be > 0 and <= 1")
        if problems:
            raise ConfigError(f"WorkerPool {name}", problems)
        self.name = name
        self.size = size
        self.max_queue = max_queue
        #: The most places (running plus queued) one owner may hold at once.
        self.max_per_owner = max(1, int((size + max_queue) * owner_share))
        self._held: dict[Any, int] = {}
        self.telemetry = telemetry if telemetry is not None else default_telemetry
        self.breaker = (
            breaker
            if breaker is not None
            else CircuitBreaker(f"pool:{name}", DEFAULT_POOL_BREAKER, telemetry=self.telemetry)
        )
        self._state = PoolState.OPEN
        self._queue: OrderedDict[int, _Ticket] = OrderedDict()
        self._ids = itertools.count()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._busy = 0
        self._executed = 0
        self._failed = 0
        self._rejected = 0
        self._cancelled = 0
        self._meta = MappingProxyType({"pool_name": name})
        self._task_name = f"genapi-pool-{name}"

    @property
    def state(self) -> PoolState:
        """Where the pool is in its lifecycle."""
        return self._state

    def running(self) -> list[asyncio.Task[Any]]:
        """The tasks running now (a cancelled job's task runs until its body has ended)."""
        return [task for task in self._tasks if not task.done()]

    # -- submission -------------------------------------------------------------------

    def submit(self, fn: Callable[[], Awaitable[T]], owner: Any = None) -> asyncio.Future[T]:
        """Run ``fn()`` in the pool; the future resolves to its result or exception.

        Starts at once when a slot is free, else queues. Raises ServiceUnavailable when
        the queue is full, the breaker is open or the pool is closing, TooManyInflight
        when ``owner`` (hashable; None: no owner) holds its whole share already. Must be
        called from the event loop.
        """
        loop = asyncio.get_running_loop()
        if self._state is not PoolState.OPEN:
            self._refuse("closed")
        held = self._held
        if owner is not None and held.get(owner, 0) >= self.max_per_owner and not (
                len(self._queue) >= self.max_queue and self._busy >= self.size):
            # (a full pool is everyone's problem: that refusal says queue_full below)
            self._refuse("owner_share")
        breaker = self.breaker
        if not breaker.admit():
            self._refuse("circuit_open")
        trial = breaker.state is BreakerState.HALF_OPEN
        context: contextvars.Context | None = None
        if self._busy >= self.size or self._queue:
            if len(self._queue) >= self.max_queue:
                if trial:
                    breaker.release()
                self._refuse("queue_full")
            # Queued work starts from another task's callback: keep the submitter's context.
            context = contextvars.copy_context()
        ticket = _Ticket(self, fn, trial, context, loop, owner)
        if owner is not None:
            held[owner] = held.get(owner, 0) + 1
        if context is None:
            self._start(ticket, loop)
        else:
            ticket.key = key = next(self._ids)
            self._queue[key] = ticket
        return ticket

    def _refuse(self, reason: str) -> NoReturn:
        self._rejected += 1
        if self.telemetry.has_handlers(POOL_TASK_REJECTED):
            self.telemetry.emit(
                POOL_TASK_REJECTED,
                {"system_time": time.time_ns()},
                {"pool_name": self.name, "reason": reason},
            )
        if reason == "owner_share":
            raise TooManyInflight(details={"pool": self.name, "cause": reason,
                                           "max": self.max_per_owner})
        # "cause", not "reason": a client's reply is {"reason": <message>, **details}
        raise ServiceUnavailable(details={"pool": self.name, "cause": reason})

    def _release(self, ticket: _Ticket) -> None:
        """The ticket's place is free again (it ended, or left the queue)."""
        owner = ticket.owner
        if owner is not None:
            ticket.owner = None
            left = self._held.get(owner, 0) - 1
            if left > 0:
                self._held[owner] = left
            else:
                self._held.pop(owner, None)

    # -- running ------------------------------------------------------------------------

    def _start(self, ticket: _Ticket, loop: asyncio.AbstractEventLoop) -> None:
        self._busy += 1
        ticket.state = _JobState.RUNNING
        ticket.started_us = now_us()
        if self.telemetry.has_handlers(POOL_TASK_START):
            self.telemetry.emit(POOL_TASK_START, {"system_time": time.time_ns()}, self._meta)
        task = loop.create_task(_call(ticket.fn), name=self._task_name, context=ticket.context)
        ticket.task = task
        self._tasks.add(task)
        # Bookkeeping lives in a done callback, not in the coroutine: a task cancelled before
        # its first step never runs its body, but its callbacks always run.
        task.add_done_callback(functools.partial(self._on_task_done, ticket))

    def _on_task_done(self, ticket: _Ticket, task: asyncio.Task[Any]) -> None:
        ticket.state = _JobState.DONE
        self._release(ticket)
        ticket.task = ticket.context = None
        self._busy -= 1
        self._tasks.discard(task)
        duration = now_us() - ticket.started_us
        if task.cancelled():
            self._cancelled += 1
            if ticket.trial:
                self.breaker.release()
            self._emit_exception(duration, "cancelled", "cancelled")
            if not ticket.done():
                if self._state is PoolState.OPEN:
                    ticket.cancel()  # the function cancelled itself
                else:
                    _settle_exception(ticket, Cancelled())
        else:
            self._executed += 1
            exc = task.exception()
            if exc is None:
                self.breaker.record_success()
                if self.telemetry.has_handlers(POOL_TASK_STOP):
                    self.telemetry.emit(POOL_TASK_STOP, {"duration_us": duration}, self._meta)
                if not ticket.done():
                    ticket.set_result(task.result())
            else:
                self._failed += 1
                self.breaker.record_failure()
                logger.debug("task in pool %s raised %r", self.name, exc)
                self._emit_exception(duration, type(exc).__name__, str(exc))
                _settle_exception(ticket, exc)
        self._start_next()

    def _emit_exception(self, duration: int, kind: str, reason: str) -> None:
        if self.telemetry.has_handlers(POOL_TASK_EXCEPTION):
            self.telemetry.emit(
                POOL_TASK_EXCEPTION,
                {"duration_us": duration},
                {"pool_name": self.name, "kind": kind, "reason": reason},
            )

    def _start_next(self) -> None:
        queue = self._queue
        while queue and self._busy < self.size and self._state is PoolState.OPEN:
            _, ticket = queue.popitem(last=False)
            self._start(ticket, asyncio.get_running_loop())

    def _cancel(self, ticket: _Ticket) -> None:
        # Called by _Ticket.cancel once the future is cancelled.
        if ticket.state is _JobState.QUEUED:
            del self._queue[ticket.key]
            ticket.state = _JobState.DONE
            self._release(ticket)
            ticket.context = None
            self._cancelled += 1
            if ticket.trial:
                self.breaker.release()
        elif ticket.state is _JobState.RUNNING and ticket.task is not None:
            ticket.task.cancel()

    # -- lifecycle -----------------------------------------------------------------------

    async def aclose(self, timeout: float | None = 30.0) -> None:
        """Refuse queued tasks, wait up to ``timeout`` seconds for running ones, cancel the rest.

        Idempotent. A task that ignores cancellation delays the return until it ends.
        """
        if self._state is PoolState.OPEN:
            self._state = PoolState.CLOSING
            queued = list(self._queue.values())
            self._queue.clear()
            for ticket in queued:
                ticket.state = _JobState.DONE
                self._release(ticket)
                ticket.context = None
                if ticket.trial:
                    self.breaker.release()
                self._rejected += 1
                if self.telemetry.has_handlers(POOL_TASK_REJECTED):
                    self.telemetry.emit(
                        POOL_TASK_REJECTED,
                        {"system_time": time.time_ns()},
                        {"pool_name": self.name, "reason": "shutdown"},
                    )
                refusal = ServiceUnavailable(details={"pool": self.name, "cause": "shutdown"})
                _settle_exception(ticket, refusal)
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        self._state = PoolState.CLOSED

    async def __aenter__(self) -> WorkerPool:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def status(self) -> PoolStatus:
        """A frozen snapshot of the pool's occupancy and counters."""
        return PoolStatus(
            name=self.name,
            state=self._state,
            size=self.size,
            max_queue=self.max_queue,
            idle=self.size - self._busy,
            busy=self._busy,
            queued=len(self._queue),
            total_executed=self._executed,
            total_failed=self._failed,
            total_rejected=self._rejected,
            total_cancelled=self._cancelled,
            breaker=self.breaker.state,
        )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PoolSettings:
    """Sizes and queue bounds of the default pools, and their breaker settings."""

    async_size: int = 1000
    async_max_queue: int = 10_000
    stream_size: int = 500
    stream_max_queue: int = 10_000
    #: The share of a pool's places (size plus queue) one owner (a connection) may hold:
    #: a tenth of the default async pool is 1,100, above a connection's 1,000 in flight.
    owner_share: float = 0.1
    breaker: BreakerSettings = DEFAULT_POOL_BREAKER


class Pools:
    """The gateway's two pools: ``async`` (async and fire-and-forget calls) and ``stream``."""

    def __init__(
        self,
        settings: PoolSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.settings = s = settings if settings is not None else PoolSettings()
        tel = telemetry if telemetry is not None else default_telemetry

        def make(name: str, size: int, max_queue: int) -> WorkerPool:
            breaker = CircuitBreaker(f"pool:{name}", s.breaker, clock=clock, telemetry=tel)
            return WorkerPool(name, size, max_queue, breaker=breaker, telemetry=tel,
                              owner_share=s.owner_share)

        self.async_pool = make("async", s.async_size, s.async_max_queue)
        self.stream_pool = make("stream", s.stream_size, s.stream_max_queue)

    def __getitem__(self, name: str) -> WorkerPool:
        if name == "async":
            return self.async_pool
        if name == "stream":
            return self.stream_pool
        raise KeyError(name)

    def running(self) -> list[asyncio.Task[Any]]:
        """The tasks both pools run now."""
        return [*self.async_pool.running(), *self.stream_pool.running()]

    def status(self) -> dict[str, PoolStatus]:
        """Both pools' snapshots, keyed ``"async"`` and ``"stream"``."""
        return {"async": self.async_pool.status(), "stream": self.stream_pool.status()}

    async def aclose(self, timeout: float | None = 30.0) -> None:
        """Close both pools concurrently (see :meth:`WorkerPool.aclose`)."""
        await asyncio.gather(self.async_pool.aclose(timeout), self.stream_pool.aclose(timeout))
