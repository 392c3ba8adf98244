"""Many workers on one queue (each with its own store connection, as separate gateways
would have): a property test that no call ever runs twice at once and each runs exactly
as often as its failures require (once, or twice after a failed first attempt)."""

from __future__ import annotations

import asyncio
import collections
import random
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genapi import DurableInfo, DurableSettings, Service
from genapi.durable import Backoff, CallState, Jitter, NewCall, StoredCall, new_call_id, open_store
from genapi.durable.runner import Workers
from genapi.execution.executor import Executor
from genapi.functions.registry import Registry


async def scenario(url: str, backend: str, workers: int, batch: int, calls: int,
                   failing: set[int], slots: int) -> None:
    tag = uuid.uuid4().hex[:8]
    running: set[str] = set()
    overlaps: list[str] = []
    runs: collections.Counter[str] = collections.Counter()
    service = Service(f"p{tag}", response_type="async", durable=True, max_attempts=3,
                      durable_backoff={"base_s": 0.01, "max_s": 0.02, "jitter": "none"})

    async def job(i: int, durable: DurableInfo) -> int:
        if durable.call_id in running:
            overlaps.append(durable.call_id)
        running.add(durable.call_id)
        runs[durable.call_id] += 1
        try:
            await asyncio.sleep(random.random() * 0.003)
            if i in failing and durable.attempt == 1:
                raise RuntimeError("first attempt fails")
            return i
        finally:
            running.discard(durable.call_id)

    service.add(job, "job")
    registry = Registry()
    registry.add_service(service)
    executor = Executor(registry)
    options: dict[str, Any] = ({"poll_s": 0.01} if backend == "sqlite"
                               else {"min_connections": 1, "max_connections": 3})
    stores = [open_store(url, **options) for _ in range(workers)]
    for store in stores:
        await store.open()
    await stores[0].migrate()
    await stores[0].enqueue_many([
        NewCall(id=new_call_id(), service=service.name, request_type="job",
                request_id=f"r{i}", args={"i": i}, max_attempts=3,
                backoff=Backoff(base_s=0.01, max_s=0.02, jitter=Jitter.NONE))
        for i in range(calls)])
    finished: list[StoredCall] = []

    async def noted(call: StoredCall) -> None:
        finished.append(call)

    async def no_webhook(call: StoredCall) -> None:
        raise AssertionError("no webhooks here")

    settings_ = DurableSettings(url=url, workers=slots, batch=batch, lease_s=30.0,
                                poll_interval=0.02)
    pool = [Workers(store, executor, settings_, worker_id=f"w{k}", finished=noted,
                    webhook=no_webhook) for k, store in enumerate(stores)]
    for worker in pool:
        worker.start()
    try:
        for _ in range(600):
            done = [c for c in await stores[0].list_calls(service=service.name, limit=1000)
                    if c.state is CallState.SUCCEEDED]
            if len(done) == calls:
                break
            await asyncio.sleep(0.05)
    finally:
        for worker in pool:
            await worker.aclose()
        for store in stores:
            await store.aclose()
        await executor.aclose()
    assert overlaps == []
    assert len(done) == calls and len(finished) == calls
    by_id = {c.id: c for c in done}
    for call in done:
        expected = 2 if call.args["i"] in failing else 1
        assert call.attempts == expected and runs[call.id] == expected
        assert call.result == call.args["i"]
    assert set(runs) == set(by_id)


def test_many_workers_never_run_a_call_twice(store_url: str, backend: str) -> None:
    """For any number of workers, batch size, worker slots and failing calls: every call
    succeeds, none runs concurrently with itself, and each runs once (twice when its first
    attempt fails)."""

    @settings(max_examples=15, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(workers=st.integers(2, 8), batch=st.integers(1, 16), calls=st.integers(10, 150),
           failing=st.sets(st.integers(0, 149), max_size=15), slots=st.integers(1, 16))
    def check(workers: int, batch: int, calls: int, failing: set[int], slots: int) -> None:
        asyncio.run(scenario(store_url, backend, workers, batch, calls, failing, slots))

    check()
