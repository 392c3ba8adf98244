"""Fault scenarios with real processes, longer than the test suite's: for each, every call's
fate and how fast the cluster recovers.

A nats-server, a gateway (`genapi serve`) and two nodes (`genapi node`) on loopback; a
recording Phoenix client sends a steady mix of remote sync, async and stream calls (see
``tests/support/faults.py``) while a fault is injected. Per scenario it prints sent / ok /
error / lost / duplicated / late / hung, how long the calls in flight on a killed node
waited for their answer, and how long after the fault (or after the repair) new calls
kept failing.

    python bench/faults.py [--seconds 20] [--only node-kill,nats-2s]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.support.faults import (
    FaultCluster,
    Mix,
    Record,
    Recorder,
    first_answer_after,
    load,
    started,
    verdict,
)


def recovery(records: list[Record], moment: float) -> float:
    """Seconds after ``moment`` until calls stopped failing: the send time of the last
    failed call sent after ``moment`` (0 when none failed)."""
    failed = [r.sent - moment for r in records
              if r.sent >= moment and r.terminals() and not r.terminals()[0][1]["success"]]
    return max(failed, default=0.0)


async def run(cluster: FaultCluster, seconds: float,
              fault: Callable[[FaultCluster], Awaitable[dict[str, float]]],
              mix: Mix | None = None) -> tuple[list[Record], dict[str, float]]:
    await cluster.wait_serving("a", "b")
    async with Recorder(cluster.url) as recorder:
        loader = asyncio.create_task(load(recorder, seconds, mix))
        moments = await fault(cluster)
        await loader
        await recorder.settle(time.monotonic() + 30)
    return list(recorder.records.values()), moments


async def node_kill(cluster: FaultCluster) -> dict[str, float]:
    await asyncio.sleep(5)
    killed = time.monotonic()
    cluster.nodes["a"].kill()
    return {"fault": killed}


async def node_kill_restart_kill_other(cluster: FaultCluster) -> dict[str, float]:
    await asyncio.sleep(4)
    cluster.nodes["a"].kill()
    await asyncio.sleep(2)
    cluster.start_node("a")
    await cluster.wait_serving("a")
    back = time.monotonic()
    cluster.nodes["b"].kill()
    return {"fault": back, "repair": back}


def nats_kill(outage: float) -> Callable[[FaultCluster], Awaitable[dict[str, float]]]:
    async def fault(cluster: FaultCluster) -> dict[str, float]:
        await asyncio.sleep(5)
        killed = time.monotonic()
        cluster.nats.kill()
        await asyncio.sleep(outage)
        cluster.nats.start()
        return {"fault": killed, "repair": time.monotonic()}

    return fault


async def node_sigterm(cluster: FaultCluster) -> dict[str, float]:
    await asyncio.sleep(5)
    term = time.monotonic()
    cluster.nodes["a"].signal(15)
    return {"fault": term}


async def gateway_sigterm(cluster: FaultCluster, calls: int) -> tuple[list[Record], int | None]:
    await cluster.wait_serving("a", "b")
    async with Recorder(cluster.url) as recorder:
        for i in range(calls):
            ms = 500 if i % 2 else 6000
            await recorder.call("slow", "sync", {"ms": ms})
            await recorder.call("work", "async", {"ms": ms})
            await recorder.call("ticks", "stream", {"count": ms // 100, "interval_ms": 100},
                                timeout=None)
            await recorder.call("slow_local", "sync", {"ms": ms}, service="local")
        await asyncio.sleep(0.5)
        assert cluster.gateway is not None
        cluster.gateway.signal(15)
        await recorder.settle(time.monotonic() + 20)
        cluster.gateway.wait(20)
        await asyncio.sleep(0.3)
        return list(recorder.records.values()), recorder.close_code


def report(name: str, records: list[Record], moments: dict[str, float]) -> dict[str, Any]:
    v = verdict(records)
    row: dict[str, Any] = {"scenario": name, **{k: getattr(v, k) for k in (
        "sent", "ok", "error", "lost", "duplicated", "late", "hung")},
        "not_retryable": len(v.not_retryable), "errors": v.errors}
    if "fault" in moments:
        waited = first_answer_after(records, moments["fault"])
        row["inflight_answered_s"] = None if waited is None else round(waited, 2)
    since = moments.get("repair", moments.get("fault"))
    if since is not None:
        row["failing_after_s"] = round(recovery(records, since), 2)
    extra = "  ".join(f"{k} {row[k]}" for k in ("inflight_answered_s", "failing_after_s")
                      if k in row)
    print(f"{name:28s} {v.line()}  {extra}  errors {v.errors}", flush=True)
    return row


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    only = set(filter(None, args.only.split(",")))
    rows = []
    scenarios: dict[str, tuple[Callable[[FaultCluster], Awaitable[dict[str, float]]],
                               dict[str, float]]] = {
        "node-kill": (node_kill, {}),
        "node-kill-restart-kill-other": (node_kill_restart_kill_other, {}),
        "nats-kill-immediate": (nats_kill(0.0), {}),
        "nats-kill-2s": (nats_kill(2.0), {}),
        "node-sigterm-short-work": (node_sigterm, {"node_drain": 10.0}),
        "node-sigterm-long-work": (node_sigterm, {"node_drain": 1.0}),
    }
    for name, (fault, options) in scenarios.items():
        if only and name not in only:
            continue
        mix = Mix(async_ms=3000, stream_count=40) if name.endswith("long-work") else None
        with FaultCluster(**options) as cluster, started(cluster):
            records, moments = await run(cluster, args.seconds, fault, mix)
        rows.append(report(name, records, moments))
    if not only or "gateway-sigterm" in only:
        with FaultCluster(gateway_drain=2.0) as cluster, started(cluster):
            records, code = await gateway_sigterm(cluster, 40)
        row = report("gateway-sigterm", records, {})
        row["close_code"] = code
        rows.append(row)
    print(json.dumps(rows))


if __name__ == "__main__":
    asyncio.run(main())
