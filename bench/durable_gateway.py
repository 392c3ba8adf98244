"""Durable calls end to end through a gateway: WebSocket → stored → run → stored → pushed.

Used by ``bench/durable.py`` (``--gateway``, on by default); runnable alone::

    python bench/durable_gateway.py [--backend sqlite|postgres] [--connections 400]

A ``genapi serve`` process serves one durable ``async`` function, ``bench.trivial(i)``,
with ``Gateway(durable=DurableSettings(url=…))`` (workers, batch as given). This process is
the load generator (``wsload.py``, hand-rolled framing): N connections, each joined to
``api:lobby``, each with one call in flight at a time (closed loop). A call is done when
its three frames arrived: the ack (sent once the call is committed), the ``phx_reply``,
and the terminal push — which the gateway sends after the worker recorded the result, so
"done" means enqueued over the socket, claimed, run, its result stored and delivered.
Calls are anonymous with unique request ids (no authentication cost). Measured in
``--rounds`` windows of ``--duration`` seconds after a warm-up; jobs/s is calls completed
per second of the windows, latencies from the push written to the terminal received.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wsload
from gateway import free_port, process

APP = """
import os
import genapi

bench = genapi.Service("bench", response_type="async", durable=True)

@bench.function()
async def trivial(i: int) -> dict:
    return {"echo": i}

gateway = genapi.Gateway(
    [bench],
    settings=genapi.GatewaySettings(
        admission=genapi.gateway.AdmissionLimits(connects=None, joins=None)),
    durable=genapi.DurableSettings(
        url=os.environ["BENCH_DURABLE_URL"], workers=int(os.environ["BENCH_WORKERS"]),
        batch=int(os.environ["BENCH_BATCH"]), service=None, stats_interval=60.0,
        store_options={"max_connections": 12} if os.environ["BENCH_DURABLE_URL"]
        .startswith("postgres") else {}),
)
"""


def process_cpu_s(pid: int) -> float:
    """CPU seconds used so far by ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def call_frame(tag: str) -> wsload.MakeFrame:
    def make(index: int, seq: int) -> bytes:
        return (b'["1","%d","api:lobby","api",{"request_id":"%s-%d-%d","service":"bench",'
                b'"request_type":"trivial","args":{"i":%d}}]'
                % (seq, tag.encode(), index, seq, seq))

    return make


async def load(port: int, args: argparse.Namespace, tag: str,
               duration: float) -> wsload.LoadResult:
    return await wsload.run(
        f"ws://127.0.0.1:{port}/socket/websocket?vsn=2.0.0", call_frame(tag),
        connections=args.connections, duration=duration, warmup=args.warmup,
        frames_per_call=3, prelude=[b'["1","1","api:lobby","phx_join",{}]'])


def run(store_url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Serve the bench gateway on ``store_url`` and load it; the figures."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        Path(tmp, "durable_bench_app.py").write_text(APP)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([tmp, *sys.path]),
               "BENCH_DURABLE_URL": store_url, "BENCH_WORKERS": str(args.gateway_workers),
               "BENCH_BATCH": str(args.gateway_batch)}
        serve = [sys.executable, "-m", "genapi", "serve", "durable_bench_app:gateway",
                 "--port", str(port), "--log-level", "warning"]
        stack.enter_context(process(serve, env, port))
        pid = _pid_on(port)
        asyncio.run(load(port, args, "warm", 1.0))  # schema, prepared statements, pools
        results = []
        cpu = 0.0
        for round_ in range(args.rounds):
            before = process_cpu_s(pid) if pid else 0.0
            result = asyncio.run(load(port, args, f"r{round_}-{uuid.uuid4().hex[:6]}",
                                      args.duration))
            cpu += (process_cpu_s(pid) if pid else 0.0) - before
            results.append(result)
            print(f"  gateway window {round_ + 1}: {result.rate:,.0f} jobs/s  "
                  f"p50 {result.percentile(0.5):.1f} ms", flush=True)
    calls = sum(r.calls for r in results)
    seconds = sum(r.seconds for r in results)
    merged = wsload.LoadResult(calls, seconds, [x for r in results for x in r.latencies_ms])
    return {
        "gateway_jobs_per_s": round(merged.rate),
        "gateway_p50_ms": round(merged.percentile(0.5), 2),
        "gateway_p99_ms": round(merged.percentile(0.99), 2),
        "gateway_connections": args.connections,
        # CPU of the gateway process per job (the loads' warm-ups included: an upper bound)
        "gateway_cpu_us_per_job": round(cpu / calls * 1e6, 1) if pid and calls else None,
    }


def _pid_on(port: int) -> int | None:
    """The pid of the process listening on ``port`` (from /proc/net/tcp), if readable."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        parts = line.split()
        if parts[3] == "0A" and int(parts[1].split(":")[1], 16) == port:
            inode = parts[9]
    if inode is None:
        return None
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) == f"socket:[{inode}]":
                    return int(entry.name)
    return None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--connections", type=int, default=400,
                        help="WebSocket connections, one call in flight each")
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--gateway-workers", type=int, default=256,
                        help="DurableSettings.workers of the gateway")
    parser.add_argument("--gateway-batch", type=int, default=128,
                        help="DurableSettings.batch of the gateway")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "postgres"])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    add_arguments(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        if args.backend == "sqlite":
            url = f"sqlite:///{folder}/durable.db"
        else:
            url = f"{args.pg}?schema=bench_gw_{uuid.uuid4().hex[:8]}"
        figures = run(url, args)
    print(json.dumps({"backend": args.backend, **figures}))


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
