"""Node faults with real processes: every call ends exactly once, and fast."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.support.faults import (
    FaultCluster,
    Recorder,
    judged,
    load,
    started,
)

pytestmark = pytest.mark.integration


async def test_kill_9_of_a_node_under_mixed_load() -> None:
    """A node killed with SIGKILL mid-load: its sync, async and stream calls in flight end
    once with a retryable error, the survivor serves everything after."""
    with FaultCluster() as cluster, started(cluster):
        await cluster.wait_serving("a", "b")
        async with Recorder(cluster.url) as recorder:
            loader = asyncio.create_task(load(recorder, 5.0))
            await asyncio.sleep(1.5)
            killed_at = time.monotonic()
            cluster.nodes["a"].kill()
            await loader
            await recorder.settle(time.monotonic() + 25)
        records = list(recorder.records.values())
    judged(records, served_from=killed_at + 3.0)


async def test_a_node_killed_restarted_then_the_other_killed() -> None:
    """Node a dies and comes back; then node b dies: a serves at once (its breaker does not
    keep it out after it came back)."""
    with FaultCluster() as cluster, started(cluster):
        await cluster.wait_serving("a", "b")
        async with Recorder(cluster.url) as recorder:
            loader = asyncio.create_task(load(recorder, 8.0))
            await asyncio.sleep(1.0)
            cluster.nodes["a"].kill()
            await asyncio.sleep(1.0)
            cluster.start_node("a")
            await cluster.wait_serving("a")
            killed_b = time.monotonic()
            cluster.nodes["b"].kill()
            await loader
            await recorder.settle(time.monotonic() + 25)
        records = list(recorder.records.values())
    judged(records, served_from=killed_b + 3.0)


@pytest.mark.parametrize("work_ms", [400, 4000], ids=["shorter", "longer"])
async def test_a_node_drains_on_sigterm(work_ms: int) -> None:
    """SIGTERM: work shorter than the node's drain finishes; longer work is answered
    'Server shutting down' (retryable) at the drain's end, not at its timeout; new calls go
    to the other node."""
    with FaultCluster(node_drain=1.5) as cluster, started(cluster):
        await cluster.wait_serving("a", "b")
        async with Recorder(cluster.url) as recorder:
            for i in range(6):
                await recorder.call("slow", "sync", {"ms": work_ms}, request_id=f"slow-{i}")
                await recorder.call("work", "async", {"ms": work_ms}, request_id=f"work-{i}")
                await recorder.call("ticks", "stream", {"count": work_ms // 100,
                                                        "interval_ms": 100},
                                    request_id=f"ticks-{i}", timeout=None)
            await asyncio.sleep(0.2)
            term_at = time.monotonic()
            cluster.nodes["a"].signal(15)
            loader = asyncio.create_task(load(recorder, 2.0))
            await loader
            await recorder.settle(time.monotonic() + 25)
        records = list(recorder.records.values())
    v = judged(records, served_from=term_at + 0.5)
    if work_ms < 1500:
        assert v.error == 0, v.failures
    else:
        assert set(v.errors) <= {"Server shutting down"}, v.errors
        ends = [r.terminals()[0][0] - term_at for r in records
                if not r.terminals()[0][1]["success"]]
        assert ends and max(ends) < 1.5 + 2.0  # at the drain's end, not at the 20 s timeout
