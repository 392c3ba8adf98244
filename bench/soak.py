"""Soak: mixed load with connection churn for minutes; memory of every process, and every
call's fate.

A nats-server, a gateway (`genapi serve`) and two nodes (`genapi node`) on loopback.
``--clients`` loops each open a socket, send a mix of remote sync, async and stream calls
and local calls for a few seconds, wait for every answer, close, and start over. RSS of the
gateway and of each node is sampled every 10 s; growth is measured from the end of the
warm-up (``--warmup`` seconds) to the end.

    python bench/soak.py [--minutes 10] [--clients 8] [--warmup 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.support.faults import FaultCluster, Mix, Record, Recorder, load, started, verdict


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def client(url: str, until: float, records: list[Record], rng: random.Random) -> None:
    mix = Mix(sync_per_s=20, async_per_s=4, stream_per_s=1, async_ms=200, stream_count=10,
              stream_interval_ms=50)
    while time.monotonic() < until:
        async with Recorder(url) as recorder:
            await load(recorder, rng.uniform(3, 8), mix)
            for _ in range(5):
                await recorder.call("slow_local", "sync", {"ms": 20}, service="local")
            await recorder.settle(time.monotonic() + 30)
        records.extend(recorder.records.values())


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--warmup", type=float, default=60.0)
    args = parser.parse_args()
    records: list[Record] = []
    samples: list[dict[str, Any]] = []
    with FaultCluster() as cluster, started(cluster):
        await cluster.wait_serving("a", "b")
        pids = {"gateway": cluster.gateway.popen.pid}  # type: ignore[union-attr]
        pids.update({name: p.popen.pid for name, p in cluster.nodes.items()  # type: ignore[union-attr]
                     })
        start = time.monotonic()
        until = start + args.minutes * 60
        rng = random.Random(7)
        clients = [asyncio.create_task(client(cluster.url, until, records, rng))
                   for _ in range(args.clients)]
        while time.monotonic() < until:
            await asyncio.sleep(10)
            sample = {"t": round(time.monotonic() - start), **{
                name: rss_kb(pid) for name, pid in pids.items()}}
            samples.append(sample)
            print(f"t={sample['t']:4d}s  " + "  ".join(
                f"{n} {sample[n] / 1024:.1f} MB" for n in pids), f"calls {len(records)}",
                flush=True)
        await asyncio.gather(*clients)
    v = verdict(records)
    warm = next((s for s in samples if s["t"] >= args.warmup), samples[0])
    end = samples[-1]
    growth = {name: round(100 * (end[name] - warm[name]) / warm[name], 1) for name in pids}
    print(v.line(), v.errors)
    print("RSS growth after warm-up (%):", growth)
    print(json.dumps({"minutes": args.minutes, "calls": v.sent, "lost": v.lost,
                      "duplicated": v.duplicated, "late": v.late, "errors": v.errors,
                      "rss_kb_warm": warm, "rss_kb_end": end, "growth_pct": growth}))


if __name__ == "__main__":
    asyncio.run(main())
