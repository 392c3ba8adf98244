"""The workers' lease handling and their resilience, on each backend: long calls keep their
lease, a lease taken over is abandoned without writing, a cancel made elsewhere stops a
running call, a store that fails for a moment loses nothing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from genapi import ApiError, DurableInfo, DurableSettings, Service
from genapi.durable import CallState, DurableCalls, DurableStore, StoredCall, open_store
from genapi.durable.runner import error_text, is_retryable
from genapi.errors import (
    ArgumentError,
    CallTimeout,
    FunctionNotFound,
    InternalError,
    StoreUnavailable,
)
from genapi.execution.executor import Executor
from genapi.functions.registry import Registry
from genapi.messages import Request
from genapi.telemetry.events import Telemetry

STARTED: list[tuple[str, int]] = []
STOPPED: list[str] = []
RELEASE: dict[str, asyncio.Event] = {}


def work_service() -> Service:
    service = Service("work", response_type="async", durable=True, max_attempts=3,
                      durable_backoff={"base_s": 0.05, "max_s": 0.1, "jitter": "none"},
                      timeout=30_000)

    @service.function()
    async def hold(name: str, durable: DurableInfo) -> dict[str, Any]:
        STARTED.append((name, durable.attempt))
        try:
            await RELEASE.setdefault(name, asyncio.Event()).wait()
        except asyncio.CancelledError:
            STOPPED.append(name)
            raise
        return {"name": name, "attempt": durable.attempt}

    return service


class FlakyStore:
    """A store whose named methods raise StoreUnavailable the next ``n`` times."""

    def __init__(self, store: DurableStore) -> None:
        self._store = store
        self.failing: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._store, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            if self.failing.get(name, 0) > 0:
                self.failing[name] -= 1
                raise StoreUnavailable(f"{name} failed (test)")
            return await method(*args, **kwargs)

        return call


@pytest.fixture(autouse=True)
def _fresh() -> None:
    STARTED.clear()
    STOPPED.clear()
    RELEASE.clear()


@pytest.fixture
async def engine(store_url: str, backend: str) -> AsyncIterator[Callable[..., Any]]:
    made: list[DurableCalls] = []

    async def make(*, lease_s: float = 0.6, flaky: bool = False,
                   telemetry: Telemetry | None = None) -> DurableCalls:
        registry = Registry(telemetry=telemetry) if telemetry else Registry()
        registry.add_service(work_service())
        options: dict[str, Any] = ({"poll_s": 0.02} if backend == "sqlite"
                                   else {"min_connections": 1, "max_connections": 4})
        store: Any = open_store(store_url, **options)
        if flaky:
            store = FlakyStore(store)
        calls = DurableCalls(Executor(registry), DurableSettings(
            url=store_url, lease_s=lease_s, poll_interval=0.05, drain_timeout=0.5),
            store=store)
        await calls.start()
        made.append(calls)
        return calls

    yield make
    for calls in made:
        for event in RELEASE.values():
            event.set()
        await calls.aclose()


async def submit(calls: DurableCalls, name: str) -> str:
    response = await calls.executor.execute(Request(
        request_id=name, service="work", request_type="hold", args={"name": name},
        user_id="alice"))
    assert response is not None and response.result["durable"] == "stored"
    return str(response.result["call_id"])


async def settled(calls: DurableCalls, call_id: str, timeout: float = 10.0) -> StoredCall:
    deadline = time.monotonic() + timeout
    while True:
        call = await calls.store.get(call_id)
        if call is not None and call.state.terminal:
            return call
        assert time.monotonic() < deadline, call
        await asyncio.sleep(0.02)


async def started(name: str, attempt: int = 1, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while (name, attempt) not in STARTED:
        assert time.monotonic() < deadline, STARTED
        await asyncio.sleep(0.01)


async def test_a_long_call_keeps_its_lease(engine: Any) -> None:
    """A call running for several leases is renewed: it runs once and succeeds."""
    calls = await engine(lease_s=0.3)
    call_id = await submit(calls, "long")
    await started("long")
    await asyncio.sleep(1.2)  # four leases
    RELEASE["long"].set()
    done = await settled(calls, call_id)
    assert done.state is CallState.SUCCEEDED and done.attempts == 1
    assert STARTED == [("long", 1)]


async def test_a_lease_taken_over_is_abandoned_without_writing(engine: Any) -> None:
    """When another worker claims the call (its lease expired, as after a pause), the
    first worker stops the function at its next renewal and writes nothing; the new
    holder's result stands."""
    seen: list[str] = []
    telemetry = Telemetry()
    telemetry.attach("t", ["durable.call.lease_lost"], lambda e, m, md: seen.append(e))
    calls = await engine(lease_s=0.4, telemetry=telemetry)
    call_id = await submit(calls, "stolen")
    await started("stolen")
    thief = await calls.store.claim("thief", limit=1, lease_s=30.0, now=time.time() + 60)
    assert [c.id for c in thief] == [call_id]
    deadline = time.monotonic() + 5
    while "stolen" not in STOPPED:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    assert seen == ["durable.call.lease_lost"]
    await calls.store.complete(thief[0].lease, {"by": "thief"})
    done = await settled(calls, call_id)
    assert done.result == {"by": "thief"} and done.lease_owner == "thief"


async def test_a_cancel_made_elsewhere_stops_the_running_call(engine: Any) -> None:
    """An operator's cancel through another process's store reaches the worker at its
    next renewal: the function is stopped and the call ends cancelled."""
    calls = await engine(lease_s=0.3)
    call_id = await submit(calls, "doomed")
    await started("doomed")
    elsewhere = await calls.store.cancel(call_id)
    assert elsewhere.state is CallState.RUNNING and elsewhere.cancel_requested
    done = await settled(calls, call_id)
    assert done.state is CallState.CANCELLED and "doomed" in STOPPED


async def test_a_store_failing_for_a_moment_loses_nothing(engine: Any) -> None:
    """A failed claim is retried after a pause; a result the store could not record runs
    again once the lease expires (attempt 2); a failed submission is refused, not acked."""
    calls = await engine(lease_s=0.4, flaky=True)
    store: FlakyStore = calls.store  # type: ignore[assignment]
    store.failing["enqueue"] = 1
    refused = await calls.executor.execute(Request(
        request_id="x", service="work", request_type="hold", args={"name": "x"},
        user_id="alice"))
    assert refused is not None and refused.error == "Durable calls unavailable"
    assert refused.can_retry
    store.failing["claim"] = 1
    store.failing["complete"] = 1
    call_id = await submit(calls, "shaky")
    RELEASE["shaky"] = asyncio.Event()
    RELEASE["shaky"].set()
    done = await settled(calls, call_id)
    assert done.state is CallState.SUCCEEDED and done.attempts == 2
    assert STARTED == [("shaky", 1), ("shaky", 2)]


@pytest.mark.parametrize(("error", "retryable"), [
    (ApiError("No such customer"), False),
    (ApiError("Busy", can_retry=True), True),
    (ArgumentError("Missing required argument: x"), False),
    (CallTimeout(5000), True),
    (InternalError(), True),
    (FunctionNotFound("unsupported function: f version latest"), True),
])
def test_which_errors_are_retried(error: ApiError, retryable: bool) -> None:
    """Business refusals and bad arguments end a call; the rest are retried."""
    assert is_retryable(error) is retryable


def test_the_stored_error_keeps_the_detail_for_operators() -> None:
    """An unexpected exception is stored with its repr after the client's message."""
    wrapped = InternalError()
    wrapped.__cause__ = KeyError("smtp")
    assert error_text(wrapped) == "Internal Server Error: KeyError('smtp')"
    assert error_text(ApiError("x" * 5000)) == "x" * 2000
    assert error_text(RuntimeError("plain")) == "plain"
