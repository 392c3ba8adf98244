"""In-process throughput of the full sync pipeline (no socket, no JSON).

A local ``async def`` function with two validated arguments and an ``("arg", "user_id")``
permission check, called through ``Executor.execute``: lookup, permission, rate-limit
slot, validation, call under a timeout, Response. Prints calls/s for a sequential loop
and for 50 concurrent callers, on the default asyncio loop and on uvloop. (``n: int`` is a
typed argument: strict, refusing floats.)

``--validation`` measures instead what validating arguments costs per call: one 5-field
``msgspec.Struct`` argument, five spec-typed arguments (``arg_types``, as configs write
them), five hinted scalars (``str``, ``int``, ``bool``, ``float``), and the pipeline's
calls/s with each.

    python bench/executor.py [--calls 200000] [--validation]
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

import msgspec

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


class Profile(msgspec.Struct):
    name: str
    email: str
    age: int
    admin: bool
    score: float


FIELDS: dict[str, Any] = {"name": "Ann", "email": "ann@example.com", "age": 42,
                          "admin": False, "score": 1.5}


def validation_service() -> tuple[Executor, dict[str, Request]]:
    svc = Service("v")

    @svc.function()
    async def struct(profile: Profile) -> None:
        return None

    @svc.function()
    async def hinted(name: str, email: str, age: int, admin: bool, score: float) -> None:
        return None

    async def specs(name: str, email: str, age: float, admin: bool, score: float) -> None:
        return None

    svc.add(specs, "specs", arg_types={"name": "string", "email": "string", "age": "num",
                                       "admin": "boolean", "score": "num"},
            arg_orders=["name", "email", "age", "admin", "score"])
    registry = Registry(telemetry=Telemetry())
    registry.add_service(svc)
    requests = {
        "5-field Struct": Request(request_id="r", service="v", request_type="struct",
                                  args={"profile": FIELDS}),
        "5 spec-typed args": Request(request_id="r", service="v", request_type="specs",
                                     args=FIELDS),
        "5 hinted scalars": Request(request_id="r", service="v", request_type="hinted",
                                    args=FIELDS),
    }
    return Executor(registry), requests


def measure_validation(calls: int) -> None:
    executor, requests = validation_service()
    for label, request in requests.items():
        route = executor.registry.resolve(request.service, request.request_type)
        bind, args = route.validator.bind, request.args
        best = float("inf")
        for _ in range(5):  # the best of five windows: the least disturbed by neighbours
            started = time.perf_counter()
            for _ in range(calls):
                bind(args)
            best = min(best, (time.perf_counter() - started) / calls)

        async def pipeline(request: Request = request) -> float:
            for _ in range(1000):
                await executor.execute(request)
            started = time.perf_counter()
            for _ in range(calls):
                await executor.execute(request)
            return calls / (time.perf_counter() - started)

        rate = asyncio.run(pipeline())
        print(f"{label:<18} validation {best * 1e6:6.2f} µs/call   "
              f"pipeline {rate:>10,.0f} calls/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--validation", action="store_true",
                        help="measure the validation cost of typed vs spec arguments")
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, {args.calls:,} calls")
    if args.validation:
        with StealMeter() as steal:
            measure_validation(args.calls)
        print(f"(stolen CPU {steal.steal:.0%})")
        return
    run("asyncio", asyncio.run, args.calls)
    try:
        import uvloop
    except ImportError:
        return
    run("uvloop", uvloop.run, args.calls)


if __name__ == "__main__":
    main()
