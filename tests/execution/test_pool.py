"""Worker pools: limits, FIFO, failures, the pool breaker, cancellation, shutdown, status."""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import functools
import gc
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import pytest

from genapi.errors import Cancelled, ConfigError, ServiceUnavailable, TooManyInflight
from genapi.execution.breaker import BreakerSettings, BreakerState, CircuitBreaker
from genapi.execution.pool import (
    POOL_TASK_EXCEPTION,
    POOL_TASK_REJECTED,
    POOL_TASK_START,
    POOL_TASK_STOP,
    Pools,
    PoolSettings,
    PoolState,
    PoolStatus,
    WorkerPool,
)
from genapi.telemetry.events import Telemetry


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Recorder:
    """Collects telemetry events."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.events: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        telemetry.attach("rec", "worker_pool.*", self)

    def __call__(self, event: str, m: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        self.events.append((event, dict(m), dict(meta)))

    def names(self) -> list[str]:
        return [e for e, _, _ in self.events]


def blocked(gate: asyncio.Event, result: Any = None) -> Callable[[], Awaitable[Any]]:
    """A task that waits for ``gate`` then returns ``result``."""

    async def run() -> Any:
        await gate.wait()
        return result

    return run


async def fail() -> None:
    raise RuntimeError("boom")


async def ok() -> str:
    return "ok"


async def settle(rounds: int = 5) -> None:
    """Let ready tasks and callbacks run."""
    for _ in range(rounds):
        await asyncio.sleep(0)


def pool_with_breaker(
    threshold: int = 3, reset: float = 10.0, size: int = 2, max_queue: int = 2
) -> tuple[WorkerPool, FakeClock, Recorder]:
    clock, telemetry = FakeClock(), Telemetry()
    recorder = Recorder(telemetry)
    settings = BreakerSettings(failure_threshold=threshold, reset_timeout=reset)
    breaker = CircuitBreaker("pool:p", settings, clock=clock, telemetry=telemetry)
    return WorkerPool("p", size, max_queue, breaker=breaker, telemetry=telemetry), clock, recorder


def counts(status: PoolStatus) -> tuple[int, int, int]:
    return status.idle, status.busy, status.queued


# -- running and limits ----------------------------------------------------------------------


async def test_submit_returns_a_future_of_the_result() -> None:
    """A submitted coroutine function runs and its future resolves to the return value."""
    pool = WorkerPool("p", 2, 2)
    assert await pool.submit(ok) == "ok"
    assert pool.status().total_executed == 1


async def test_one_owner_gets_only_its_share_of_the_pool() -> None:
    """Pool 2 + queue 8 with owner_share 0.3: an owner holds at most 3 places (running plus
    queued), is refused with TooManyInflight beyond, and gets places back as its tasks end,
    are cancelled, or are refused at shutdown; other owners and owner-less work still fit."""
    pool, gate = WorkerPool("p", 2, 8, owner_share=0.3), asyncio.Event()
    assert pool.max_per_owner == 3
    hog = object()
    mine = [pool.submit(blocked(gate, i), owner=hog) for i in range(3)]
    with pytest.raises(TooManyInflight) as info:
        pool.submit(blocked(gate), owner=hog)
    assert isinstance(info.value, ServiceUnavailable) and info.value.can_retry
    assert info.value.details == {"pool": "p", "cause": "owner_share", "max": 3}
    assert info.value.message == "Service temporarily unavailable: too many calls in flight"
    others = [pool.submit(blocked(gate, 10 + i), owner=i) for i in range(3)]
    free = pool.submit(blocked(gate, 99))
    mine[2].cancel()  # queued: its place is given back at once
    mine.append(pool.submit(blocked(gate, 3), owner=hog))
    gate.set()
    assert await asyncio.gather(*mine[:2], mine[3], *others, free) == [0, 1, 3, 10, 11, 12, 99]
    assert pool._held == {}
    again = [pool.submit(blocked(gate), owner=hog) for _ in range(3)]
    await asyncio.gather(*again)
    stuck = asyncio.Event()
    pool.submit(blocked(stuck), owner=hog)
    pool.submit(blocked(stuck), owner=hog)
    queued = pool.submit(blocked(stuck), owner=hog)
    await pool.aclose(timeout=0.01)
    assert isinstance(queued.exception(), ServiceUnavailable)
    assert pool._held == {}
    with pytest.raises(ConfigError):
        WorkerPool("p", 1, 1, owner_share=0)


async def test_idle_pool_starts_the_task_without_queueing() -> None:
    """An idle pool starts the task inside submit(): busy at once, nothing queued."""
    pool, gate = WorkerPool("p", 2, 0), asyncio.Event()
    pool.submit(blocked(gate))
    assert counts(pool.status()) == (1, 1, 0)
    gate.set()
    await pool.aclose()


async def test_size_and_queue_limits() -> None:
    """Pool 3 + queue 5 accepts 8 tasks; the 9th is refused at once with can_retry."""
    pool, gate = WorkerPool("p", 3, 5), asyncio.Event()
    futures = [pool.submit(blocked(gate, i)) for i in range(8)]
    with pytest.raises(ServiceUnavailable) as info:
        pool.submit(blocked(gate))
    assert info.value.can_retry is True
    assert info.value.details == {"pool": "p", "cause": "queue_full"}
    status = pool.status()
    assert (counts(status), status.total_rejected) == ((0, 3, 5), 1)
    gate.set()
    assert await asyncio.gather(*futures) == list(range(8))
    status = pool.status()
    assert (counts(status), status.total_executed, status.total_rejected) == ((3, 0, 0), 8, 1)


async def test_queue_is_fifo() -> None:
    """Queued tasks start in submission order as slots free up."""
    pool, gate, order = WorkerPool("p", 1, 10), asyncio.Event(), []

    def task(i: int) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            order.append(i)
            await gate.wait()

        return run

    futures = [pool.submit(task(i)) for i in range(6)]
    gate.set()
    await asyncio.gather(*futures)
    assert order == list(range(6))


async def test_status_snapshots() -> None:
    """status() reports idle/busy/queued as tasks block and queue, as a frozen value."""
    pool, gate = WorkerPool("p", 3, 5), asyncio.Event()
    assert counts(pool.status()) == (3, 0, 0)
    futures = [pool.submit(blocked(gate)) for _ in range(2)]
    assert counts(pool.status()) == (1, 2, 0)
    futures += [pool.submit(blocked(gate)) for _ in range(3)]
    status = pool.status()
    assert counts(status) == (0, 3, 2)
    assert (status.name, status.size, status.max_queue, status.state) == ("p", 3, 5, "open")
    assert status.breaker is BreakerState.CLOSED
    assert not status.circuit_open
    with pytest.raises(dataclasses.FrozenInstanceError):
        status.busy = 0  # type: ignore[misc]
    gate.set()
    await asyncio.gather(*futures)


async def test_queued_task_keeps_the_submitters_context() -> None:
    """A queued task runs in the context variables of the code that submitted it."""
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="none")
    pool, gate = WorkerPool("p", 1, 1), asyncio.Event()

    async def read() -> str:
        return var.get()

    first = pool.submit(blocked(gate))
    var.set("submitter")
    second = pool.submit(read)
    var.set("later")
    gate.set()
    await first
    assert await second == "submitter"


@pytest.mark.parametrize(("size", "max_queue"), [(0, 1), (-1, 1), (1, -1)])
def test_limits_are_validated(size: int, max_queue: int) -> None:
    """A pool needs at least one slot and a non-negative queue bound."""
    with pytest.raises(ConfigError):
        WorkerPool("p", size, max_queue)


# -- failures and the breaker ------------------------------------------------------------


async def test_exception_is_counted_once_and_the_pool_survives() -> None:
    """A raising task fails its future, is counted once, and later tasks still run."""
    pool = WorkerPool("p", 1, 5)
    failing = pool.submit(fail)
    after = pool.submit(ok)
    with pytest.raises(RuntimeError, match="boom"):
        await failing
    assert await after == "ok"
    await settle()
    status = pool.status()
    assert (status.total_executed, status.total_failed, status.busy) == (2, 1, 0)


async def test_unawaited_failure_is_not_logged_as_never_retrieved(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The pool reports failures itself, so a dropped future does not log again."""
    pool = WorkerPool("p", 1, 1)
    pool.submit(fail)
    await settle()
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        gc.collect()
    assert "never retrieved" not in caplog.text
    assert pool.status().total_failed == 1


async def test_breaker_opens_after_consecutive_failures_and_rejects() -> None:
    """threshold consecutive task failures open the pool breaker; submit then refuses."""
    pool, _, recorder = pool_with_breaker(threshold=3)
    for _ in range(3):
        with pytest.raises(RuntimeError):
            await pool.submit(fail)
    assert pool.status().circuit_open
    with pytest.raises(ServiceUnavailable) as info:
        pool.submit(ok)
    assert info.value.details["cause"] == "circuit_open"
    assert pool.status().total_rejected == 1
    assert "worker_pool.circuit_breaker.open" in recorder.names()
    assert recorder.events[-1] == (
        POOL_TASK_REJECTED,
        {"system_time": recorder.events[-1][1]["system_time"]},
        {"pool_name": "p", "reason": "circuit_open"},
    )


async def test_success_resets_the_failure_count() -> None:
    """Failures separated by a success never open the breaker."""
    pool, _, _ = pool_with_breaker(threshold=2)
    for fn in (fail, ok, fail, ok, fail):
        await asyncio.gather(pool.submit(fn), return_exceptions=True)
    assert pool.status().breaker is BreakerState.CLOSED


async def test_half_open_recovery() -> None:
    """After the reset timeout one trial is admitted; its success closes the breaker."""
    pool, clock, _ = pool_with_breaker(threshold=1, reset=10.0)
    with pytest.raises(RuntimeError):
        await pool.submit(fail)
    clock.now = 10.0
    gate = asyncio.Event()
    trial = pool.submit(blocked(gate, "trial"))
    assert pool.status().breaker is BreakerState.HALF_OPEN
    with pytest.raises(ServiceUnavailable):
        pool.submit(ok)
    gate.set()
    assert await trial == "trial"
    await settle()
    assert pool.status().breaker is BreakerState.CLOSED
    assert await pool.submit(ok) == "ok"


async def test_failed_trial_reopens() -> None:
    """A failing trial re-opens the breaker and restarts its timer."""
    pool, clock, _ = pool_with_breaker(threshold=1, reset=10.0)
    await asyncio.gather(pool.submit(fail), return_exceptions=True)
    clock.now = 10.0
    await asyncio.gather(pool.submit(fail), return_exceptions=True)
    assert pool.status().breaker is BreakerState.OPEN
    clock.now = 19.0
    with pytest.raises(ServiceUnavailable):
        pool.submit(ok)
    clock.now = 20.0
    assert await pool.submit(ok) == "ok"


async def test_cancelled_trial_frees_its_slot() -> None:
    """Cancelling the half-open trial lets another trial in."""
    pool, clock, _ = pool_with_breaker(threshold=1, reset=1.0)
    await asyncio.gather(pool.submit(fail), return_exceptions=True)
    clock.now = 1.0
    trial = pool.submit(blocked(asyncio.Event()))
    trial.cancel()
    await settle()
    assert await pool.submit(ok) == "ok"
    assert pool.status().breaker is BreakerState.CLOSED


# -- cancellation --------------------------------------------------------------------------


async def test_cancel_queued_task_removes_it() -> None:
    """Cancelling a queued task's future removes it from the queue at once; it never runs."""
    pool, gate, ran = WorkerPool("p", 1, 5), asyncio.Event(), []

    async def record() -> None:
        ran.append(1)

    first = pool.submit(blocked(gate))
    queued = pool.submit(record)
    assert queued.cancel()
    assert not queued.cancel()
    assert counts(pool.status()) == (0, 1, 0)
    gate.set()
    await first
    await settle()
    status = pool.status()
    assert (ran, status.total_cancelled, status.total_executed) == ([], 1, 1)


async def test_cancel_running_task_cancels_it() -> None:
    """Cancelling a running task's future cancels its asyncio task and frees the slot."""
    pool, seen = WorkerPool("p", 1, 5), []

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    running = pool.submit(forever)
    after = pool.submit(ok)
    await settle()
    running.cancel()
    assert await after == "ok"
    status = pool.status()
    assert (seen, status.total_cancelled, status.total_executed, status.busy) == (
        ["cancelled"], 1, 1, 0,
    )


async def test_cancel_before_the_task_first_runs() -> None:
    """A task cancelled before its first step is still accounted for and frees its slot."""
    pool, ran = WorkerPool("p", 1, 1), []

    async def record() -> None:
        ran.append(1)

    pool.submit(record).cancel()
    await settle()
    status = pool.status()
    assert (ran, status.busy, status.total_cancelled) == ([], 0, 1)


# -- shutdown ------------------------------------------------------------------------------


async def test_aclose_drains_running_tasks() -> None:
    """aclose waits for running tasks; queued ones are refused with ServiceUnavailable."""
    pool, gate = WorkerPool("p", 1, 5), asyncio.Event()
    running = pool.submit(blocked(gate, "done"))
    queued = pool.submit(ok)
    asyncio.get_running_loop().call_soon(gate.set)
    await pool.aclose(timeout=None)
    assert running.result() == "done"
    with pytest.raises(ServiceUnavailable) as info:
        queued.result()
    assert info.value.details["cause"] == "shutdown"
    status = pool.status()
    assert (status.state, status.total_executed, status.total_rejected) == (
        PoolState.CLOSED, 1, 1,
    )


async def test_aclose_cancels_tasks_past_the_timeout() -> None:
    """Tasks still running at the deadline are cancelled; their futures get Cancelled."""
    pool = WorkerPool("p", 2, 5)
    stuck = pool.submit(blocked(asyncio.Event()))
    await settle()
    await pool.aclose(timeout=0)
    with pytest.raises(Cancelled):
        stuck.result()
    status = pool.status()
    assert (status.busy, status.total_cancelled, status.state) == (0, 1, PoolState.CLOSED)
    await pool.aclose()


async def test_submit_after_close_is_refused() -> None:
    """A closing or closed pool refuses new work with ServiceUnavailable."""
    async with WorkerPool("p", 1, 1) as pool:
        pass
    with pytest.raises(ServiceUnavailable) as info:
        pool.submit(ok)
    assert info.value.details["cause"] == "closed"


# -- telemetry -----------------------------------------------------------------------------


async def test_task_telemetry() -> None:
    """start/stop/exception/rejected carry the pool name; stop and exception a duration."""
    telemetry = Telemetry()
    recorder = Recorder(telemetry)
    pool = WorkerPool("p", 1, 0, telemetry=telemetry)
    await pool.submit(ok)
    with pytest.raises(RuntimeError):
        await pool.submit(fail)
    gate = asyncio.Event()
    running = pool.submit(blocked(gate))
    with pytest.raises(ServiceUnavailable):
        pool.submit(ok)
    gate.set()
    await running
    await settle()
    events = [(e, m, meta) for e, m, meta in recorder.events if e.startswith("worker_pool.task")]
    assert [e for e, _, _ in events] == [
        POOL_TASK_START, POOL_TASK_STOP, POOL_TASK_START, POOL_TASK_EXCEPTION,
        POOL_TASK_START, POOL_TASK_REJECTED, POOL_TASK_STOP,
    ]
    assert all(meta["pool_name"] == "p" for _, _, meta in events)
    timed = (POOL_TASK_STOP, POOL_TASK_EXCEPTION)
    assert all("duration_us" in m for e, m, _ in events if e in timed)
    assert events[3][2] == {"pool_name": "p", "kind": "RuntimeError", "reason": "boom"}
    assert events[5][2] == {"pool_name": "p", "reason": "queue_full"}


# -- load ----------------------------------------------------------------------------------


async def test_a_thousand_tasks_are_each_completed_or_refused() -> None:
    """1,000 tasks on pool 50 + queue 500: each completes or is refused with can_retry."""
    pool, gate = WorkerPool("p", 50, 500), asyncio.Event()

    async def work(i: int) -> int:
        await gate.wait()
        for _ in range(i % 4):
            await asyncio.sleep(0)
        return i

    futures: list[asyncio.Future[int]] = []
    refusals: list[ServiceUnavailable] = []
    for i in range(1000):
        if i == 700:
            gate.set()  # the pool starts draining while submissions continue
        try:
            futures.append(pool.submit(functools.partial(work, i)))
        except ServiceUnavailable as exc:
            refusals.append(exc)
        if i % 10 == 0:
            await asyncio.sleep(0)
    results = await asyncio.gather(*futures)
    assert len(set(results)) == len(results) == len(futures)
    refused = len(refusals)
    assert refused > 0
    assert all(exc.can_retry for exc in refusals)
    assert len(results) + refused == 1000
    status = pool.status()
    assert (status.total_executed, status.total_rejected) == (len(results), refused)
    assert (status.total_failed, status.total_cancelled, status.busy, status.queued) == (0, 0, 0, 0)


# -- the default pools -------------------------------------------------------------------


async def test_pools_defaults_and_status() -> None:
    """Pools builds "async" (1000 + 10,000) and "stream" (500 + 10,000) and reports both."""
    pools = Pools()
    status = pools.status()
    assert (status["async"].size, status["async"].max_queue) == (1000, 10_000)
    assert (status["stream"].size, status["stream"].max_queue) == (500, 10_000)
    assert pools["async"] is pools.async_pool
    assert pools["stream"] is pools.stream_pool
    with pytest.raises(KeyError):
        pools["other"]
    assert await pools["stream"].submit(ok) == "ok"
    await pools.aclose()
    assert {s.state for s in pools.status().values()} == {PoolState.CLOSED}


async def test_pools_from_settings_share_clock_and_breaker_settings() -> None:
    """PoolSettings sizes the pools; each pool gets its own breaker with the shared settings."""
    clock = FakeClock()
    settings = PoolSettings(
        async_size=2, async_max_queue=1, stream_size=1, stream_max_queue=0,
        breaker=BreakerSettings(failure_threshold=1, reset_timeout=5.0),
    )
    pools = Pools(settings, clock=clock, telemetry=Telemetry())
    await asyncio.gather(pools.async_pool.submit(fail), return_exceptions=True)
    assert pools.status()["async"].circuit_open
    assert not pools.status()["stream"].circuit_open
    clock.now = 5.0
    assert await pools.async_pool.submit(ok) == "ok"
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.async_size = 3  # type: ignore[misc]
    await pools.aclose()


async def test_the_callers_deadline_cancels_the_running_task() -> None:
    """The pool imposes no timeout; a caller's wait_for deadline cancels the task itself."""
    pool, seen = WorkerPool("p", 1, 1), []

    async def slow() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            seen.append("stopped")

    future = pool.submit(slow)
    await settle()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(future, 0)
    await settle()
    assert seen == ["stopped"]
    assert (pool.status().busy, pool.status().total_cancelled) == (0, 1)
