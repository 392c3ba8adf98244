"""In-process throughput of the full sync pipeline (no socket, no JSON).

A local ``async def`` function with two validated arguments and an ``("arg", "user_id")``
permission check, called through ``Executor.execute``: lookup, permission, rate-limit
slot, validation, call under a timeout, Response. Prints calls/s for a sequential loop
and for 50 concurrent callers, on the default asyncio loop and on uvloop.

    python bench/executor.py [--calls 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

from genapi import Executor, Registry, Request, Service
from genapi.telemetry.events import Telemetry

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine import StealMeter


def build() -> tuple[Executor, Request]:
    svc = Service("bench")

    @svc.function(check_permission=("arg", "user_id"))
    async def echo(user_id: str, n: int) -> dict[str, Any]:
        return {"user_id": user_id, "n": n}

    registry = Registry(telemetry=Telemetry())
    registry.add_service(svc)
    request = Request(request_id="r", service="bench", request_type="echo",
                      args={"user_id": "u1", "n": 1}, user_id="u1")
    return Executor(registry), request


async def sequential(calls: int) -> float:
    executor, request = build()
    for _ in range(1000):  # warm up
        await executor.execute(request)
    started = time.perf_counter()
    for _ in range(calls):
        await executor.execute(request)
    return calls / (time.perf_counter() - started)


async def concurrent(calls: int, workers: int = 50) -> float:
    executor, request = build()
    per_worker = calls // workers

    async def worker() -> None:
        for _ in range(per_worker):
            await executor.execute(request)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return per_worker * workers / (time.perf_counter() - started)


def run(label: str, runner: Callable[[Coroutine[Any, Any, float]], float], calls: int) -> None:
    with StealMeter() as steal:
        seq = runner(sequential(calls))
        conc = runner(concurrent(calls))
    print(f"{label:<16} sequential {seq:>10,.0f} calls/s   50 concurrent {conc:>10,.0f} calls/s"
          f"   (stolen CPU {steal.steal:.0%})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200_000)
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, {args.calls:,} calls")
    run("asyncio", asyncio.run, args.calls)
    try:
        import uvloop
    except ImportError:
        return
    run("uvloop", uvloop.run, args.calls)


if __name__ == "__main__":
    main()
