"""Calls/s of one gateway at ``genapi serve --workers 1`` against ``--workers 2``.

    python bench/workers.py [--connections 50] [--duration 4] [--rounds 5]

Both serve ``echo(n: int)`` (the local path, as in ``gateway.py``) on their own port; the
two-worker gateway is two processes on one port (SO_REUSEPORT) in a cluster over a
private nats-server. This process is the load generator (``wsload.py``), closed loop,
one call in flight per connection; the setups are measured in alternating windows.
On a 2-core machine the load generator takes a share of the cores the workers need:
the figure is what a second worker buys here, not what it buys on a bigger machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gateway import (
    BENCH_APP,
    call_frame,
    check_call,
    combine,
    free_port,
    load_arguments,
    process,
    report,
    run_load,
)
from machine import StealMeter
from wsload import LoadResult


def main() -> None:
    args = load_arguments(__doc__, "per setup").parse_args()
    print(f"python {platform.python_version()}, {args.connections} connections, "
          f"{args.rounds} alternating windows of {args.duration:.0f} s per setup, "
          f"{os.cpu_count()} cores shared by every process (load generator included)")
    ports = {1: free_port(), 2: free_port()}
    results: dict[int, list[LoadResult]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        with open(os.path.join(tmp, "bench_app.py"), "w") as handle:
            handle.write(BENCH_APP)
        env = {**os.environ, "PYTHONPATH": tmp}
        for workers, port in ports.items():
            stack.enter_context(process(
                [sys.executable, "-m", "genapi", "serve", "bench_app:gateway", "--port",
                 str(port), "--log-level", "warning", "--workers", str(workers)], env, port))
        time.sleep(2.0)  # the second worker binds its socket too
        for port in ports.values():
            asyncio.run(check_call(port, "bench", "echo"))
        with StealMeter() as steal:
            for round_ in range(1, args.rounds + 1):
                line = []
                for workers, port in ports.items():
                    url = f"ws://127.0.0.1:{port}/socket/websocket?vsn=2.0.0"
                    results[workers].append(run_load(url, args, call_frame("bench", "echo")))
                    line.append(f"{workers} worker(s) {results[workers][-1].rate:>8,.0f}")
                print(f"  window {round_}: " + "   ".join(line) + "  calls/s")
    one, two = combine(results[1]), combine(results[2])
    report("genapi: 1 worker", one)
    report("genapi: 2 workers", two)
    print(f"2 workers against 1: {two.rate / one.rate:.2f}x calls/s")
    print(steal.describe())


if __name__ == "__main__":
    main()
