"""What the rate limiter adds to each request.

Run: ``.venv/bin/python bench/ratelimit.py [--calls N]``

Measures the executor's rate-limit stage (``limiter.check(request)``, awaited only when it
returns an awaitable) with no limiter, with the in-memory limiter (one global and one API
limit, 1,000 distinct users, never rejecting), with limits that do not apply (anonymous
requests), and with the Redis limiter on a private ``redis-server`` (sequential latency
and 64 checks in flight). Then whole ``Executor.execute`` calls with and without the
memory limiter, for the overall figure. In-process figures are the best of a few runs.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from genapi import Executor, Registry, Request, Service
from genapi.ratelimit import RateLimit, RateLimitConfig, RateLimiter, RedisStore

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.support
from tests.support.redis_server import redis_server  # stdlib-only, shared with the tests

Check = Callable[[Request], Awaitable[None] | None]

CONFIG = RateLimitConfig(
    global_limits=(RateLimit("user_id", 10**9, 60_000),),
    api_limits=(RateLimit("user_id", 10**9, 1_000, service="svc", request_type="op"),),
)


def requests(anonymous: bool = False) -> list[Request]:
    return [
        Request(
            request_id=f"r{n}", service="svc", request_type="op",
            user_id=None if anonymous else f"user-{n}",
        )
        for n in range(1_000)
    ]


def no_limiter(request: Request) -> None:
    return None


def time_sync(check: Check, reqs: list[Request], calls: int, repeat: int = 5) -> float:
    """Microseconds per call of a check that answers synchronously (best of ``repeat``)."""
    n = len(reqs)
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter_ns()
        for i in range(calls):
            check(reqs[i % n])
        best = min(best, (time.perf_counter_ns() - started) / calls / 1000)
    return best


async def time_async(check: Check, reqs: list[Request], calls: int, in_flight: int) -> float:
    """Microseconds per call (wall clock / calls) with ``in_flight`` concurrent callers."""
    n = len(reqs)

    async def worker(first: int) -> None:
        for i in range(first, calls, in_flight):
            pending = check(reqs[i % n])
            if pending is not None:
                await pending

    started = time.perf_counter_ns()
    await asyncio.gather(*(worker(k) for k in range(in_flight)))
    return (time.perf_counter_ns() - started) / calls / 1000


async def time_executor(limiter: RateLimiter | None, calls: int, repeat: int = 3) -> float:
    svc = Service("svc")

    @svc.function()
    async def op() -> str:
        return "ok"

    registry = Registry()
    registry.add_service(svc)
    executor = Executor(registry, rate_limiter=limiter)
    reqs = requests()
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter_ns()
        for i in range(calls):
            await executor.execute(reqs[i % len(reqs)])
        best = min(best, (time.perf_counter_ns() - started) / calls / 1000)
    await executor.aclose()
    return best


def line(label: str, us: float, base: float | None = None) -> None:
    added = "" if base is None else f"   added {us - base:7.2f} µs"
    print(f"{label:<48} {us:8.2f} µs/call {1e6 / us:>12,.0f} calls/s{added}")


async def main(calls: int) -> None:
    reqs = requests()
    base = time_sync(no_limiter, reqs, calls)
    line("no limiter", base)
    memory = RateLimiter(CONFIG)
    line("memory: 1 global + 1 API limit", time_sync(memory.check, reqs, calls), base)
    line(
        "memory: limits, none applicable (anonymous)",
        time_sync(memory.check, requests(anonymous=True), calls),
        base,
    )
    with redis_server() as url:
        store = RedisStore(url)
        redis_limiter = RateLimiter(CONFIG, store=store)
        redis_calls = max(calls // 20, 1_000)
        await time_async(redis_limiter.check, reqs, 200, 1)  # connect, load the script
        line(
            "redis: 1 global + 1 API, sequential",
            await time_async(redis_limiter.check, reqs, redis_calls, 1),
            base,
        )
        line(
            "redis: 1 global + 1 API, 64 in flight",
            await time_async(redis_limiter.check, reqs, redis_calls, 64),
            base,
        )
        await redis_limiter.aclose()
    exec_calls = max(calls // 4, 1_000)
    plain = await time_executor(None, exec_calls)
    line("executor.execute, no limiter", plain)
    line("executor.execute, memory limiter", await time_executor(RateLimiter(CONFIG), exec_calls),
         plain)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    asyncio.run(main(parser.parse_args().calls))
