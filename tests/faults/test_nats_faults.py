"""NATS faults with real processes: a killed server, back at once or after 2 s."""

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


@pytest.mark.parametrize("outage", [0.0, 2.0], ids=["immediate", "after-2s"])
async def test_nats_killed_and_restarted(outage: float) -> None:
    """Calls in flight when NATS dies end once with a retryable error (no node is blamed);
    calls are served again within seconds of NATS being back."""
    with FaultCluster() as cluster, started(cluster):
        await cluster.wait_serving("a", "b")
        async with Recorder(cluster.url) as recorder:
            loader = asyncio.create_task(load(recorder, 4.0 + outage))
            await asyncio.sleep(1.0)
            cluster.nats.kill()
            await asyncio.sleep(outage)
            cluster.nats.start()
            back = time.monotonic()
            await loader
            await recorder.settle(time.monotonic() + 25)
        records = list(recorder.records.values())
    judged(records, served_from=back + 2.5)
