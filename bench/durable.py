"""Durable calls end to end at the store level, and procrastinate on the same Postgres.

Run: ``.venv/bin/python bench/durable.py [--calls N] [--pg URL] [--backends postgres,sqlite]``

What one run measures, per backend (a fresh schema or file each time, ANALYZEd):

* ``--clients`` callers (default 1,000), as connected users of a gateway: each stores a
  call with ``store.enqueue`` (concurrent enqueues are coalesced into multi-row inserts,
  as the gateway's would be), waits for its result, then sends the next, until
  ``--calls`` calls were made. In-flight work is therefore bounded, like a gateway's.
* ``--workers`` workers (default 4) in the same process each loop: ``claim`` up to
  ``--batch`` due calls under a 30 s lease, run a trivial ``async`` function for each
  (concurrently), ``complete_many`` the batch, hand each result to its waiting caller;
  ``wait_for_work`` when nothing is due (LISTEN/NOTIFY on Postgres).
* ``jobs_per_s``: calls / wall time from the first enqueue to the last stored result.
  ``p50_ms``/``p99_ms``: per call, from ``enqueue`` called to ``complete_many`` returned
  (the result is stored).

Then procrastinate (the Python job queue on Postgres) does the same work on the same
server: a trivial async task; ``batch_defer_async`` of ``--calls`` jobs in batches of
``--batch`` from ``--clients // 50`` concurrent deferrers, then ``run_worker_async(wait=False)``
with ``--proc-concurrency`` until the queue is empty; its pool holds concurrency + 4
connections, LISTEN/NOTIFY on, finished jobs kept (as ours are). Its jobs_per_s is
jobs / (defer + run) time; the worker-only rate is printed too.

Not measured here: the gateway (WebSocket, validation, the executor) each call also
passes through. This is the store plus a worker loop, in one process on this machine,
sharing its cores with the database server.

The last lines are JSON, one per backend.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from genapi.durable import (
    Backoff,
    DurableStore,
    NewCall,
    PostgresStore,
    SqliteStore,
    StoredCall,
    new_call_id,
)

PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"


async def trivial(args: dict[str, Any]) -> dict[str, Any]:
    """The function every call runs."""
    return {"echo": args["i"]}


async def analyze(url: str, schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"ANALYZE {schema}.durable_calls")
    finally:
        await conn.close()


def postgres_cpu_s() -> float:
    """CPU seconds used so far by this machine's postgres processes (0 if not readable)."""
    total = 0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


async def run_store(
    store: DurableStore, *, calls: int, clients: int, workers: int, batch: int
) -> dict[str, float]:
    waiting: dict[str, asyncio.Future[Any]] = {}
    latencies: list[float] = []
    done = asyncio.Event()
    completed = 0
    claims = 0
    backoff = Backoff(base_s=1.0, max_s=60.0)
    counter = iter(range(calls))
    run = uuid.uuid4().hex[:8]  # keys unique per run: a repeated key would not run again

    async def client(n: int) -> None:
        loop = asyncio.get_running_loop()
        for i in counter:
            call = NewCall(
                id=new_call_id(), service="bench", request_type="trivial",
                request_id=f"r{i}", args={"i": i}, user_id=f"user-{n}",
                idempotency_key=f"user-{n}:{run}:r{i}", backoff=backoff,
            )
            future = loop.create_future()
            waiting[call.id] = future
            started = time.perf_counter()
            await store.enqueue(call)
            await future
            latencies.append(time.perf_counter() - started)

    async def worker(name: str) -> None:
        nonlocal completed, claims
        while not done.is_set():
            claimed: Sequence[StoredCall] = await store.claim(name, limit=batch, lease_s=30.0)
            claims += 1
            if not claimed:
                await store.wait_for_work(0.05)
                continue
            results = await asyncio.gather(*(trivial(c.args) for c in claimed))
            await store.complete_many(
                [(c.lease, r) for c, r in zip(claimed, results, strict=True)]
            )
            for c in claimed:
                waiting.pop(c.id).set_result(None)
            completed += len(claimed)
            if completed >= calls:
                done.set()

    started = time.perf_counter()
    cpu_started, pg_started = time.process_time(), postgres_cpu_s()
    worker_tasks = [asyncio.create_task(worker(f"w{i}")) for i in range(workers)]
    await asyncio.gather(*(client(n) for n in range(clients)))
    await done.wait()
    elapsed = time.perf_counter() - started
    cpu, pg_cpu = time.process_time() - cpu_started, postgres_cpu_s() - pg_started
    await asyncio.gather(*worker_tasks)
    latencies.sort()
    return {
        "jobs_per_s": round(calls / elapsed),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
        "seconds": round(elapsed, 2),
        "calls_per_claim": round(calls / claims, 1),
        # CPU per call of this process (clients, workers, store, driver, SQLite thread)
        # and of the postgres server processes (zero for SQLite).
        "bench_cpu_us_per_job": round(cpu / calls * 1e6, 1),
        "postgres_cpu_us_per_job": round(pg_cpu / calls * 1e6, 1),
    }


async def bench_postgres(url: str, args: argparse.Namespace) -> dict[str, Any]:
    schema = f"bench_durable_{uuid.uuid4().hex[:8]}"
    store = PostgresStore(url, schema=schema, min_connections=args.workers + 2,
                          max_connections=args.workers + 6)
    await store.open()
    try:
        await store.migrate()
        await analyze(url, schema)
        # A short warm-up (prepared statements, pool) then the measured run.
        await run_store(store, calls=min(2_000, args.calls), clients=args.clients,
                        workers=args.workers, batch=args.batch)
        await analyze(url, schema)
        return await run_store(store, calls=args.calls, clients=args.clients,
                               workers=args.workers, batch=args.batch)
    finally:
        await store.aclose()
        import asyncpg

        conn = await asyncpg.connect(url)
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()


async def bench_sqlite(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        store = SqliteStore(str(Path(folder) / "durable.db"))
        await store.open()
        try:
            await store.migrate()
            await run_store(store, calls=min(2_000, args.calls), clients=args.clients,
                            workers=args.workers, batch=args.batch)
            return await run_store(store, calls=args.calls, clients=args.clients,
                                   workers=args.workers, batch=args.batch)
        finally:
            await store.aclose()


async def bench_procrastinate(url: str, args: argparse.Namespace) -> dict[str, Any]:
    import asyncpg
    import procrastinate

    schema = f"bench_proc_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(url)
    await admin.execute(f"CREATE SCHEMA {schema}")
    concurrency = args.proc_concurrency
    connector = procrastinate.PsycopgConnector(
        conninfo=url, min_size=2, max_size=concurrency + 4,
        kwargs={"options": f"-c search_path={schema} {args.proc_pg_options}".strip()},
    )
    app = procrastinate.App(connector=connector)

    @app.task(name="trivial")
    async def trivial_task(i: int) -> dict[str, int]:
        return {"echo": i}

    try:
        async with app.open_async():
            await app.schema_manager.apply_schema_async()
            chunks = [
                [{"i": i} for i in range(start, min(start + args.batch, args.calls))]
                for start in range(0, args.calls, args.batch)
            ]
            deferrers = max(1, args.clients // 50)
            started = time.perf_counter()

            async def deferrer(mine: Sequence[list[dict[str, int]]]) -> None:
                for chunk in mine:
                    await trivial_task.batch_defer_async(*chunk)

            await asyncio.gather(*(deferrer(chunks[d::deferrers]) for d in range(deferrers)))
            deferred = time.perf_counter()
            cpu_started, pg_started = time.process_time(), postgres_cpu_s()
            # Fair to its planner: statistics of the filled table (autovacuum is off here).
            await admin.execute(f"ANALYZE {schema}.procrastinate_jobs")
            await app.run_worker_async(
                concurrency=concurrency, wait=False, install_signal_handlers=False,
                listen_notify=True,
            )
            finished = time.perf_counter()
            cpu, pg_cpu = time.process_time() - cpu_started, postgres_cpu_s() - pg_started
            done = await admin.fetchval(
                f"SELECT count(*) FROM {schema}.procrastinate_jobs WHERE status = 'succeeded'"
            )
            assert done == args.calls, (done, args.calls)
    finally:
        await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await admin.close()
    return {
        "procrastinate_jobs_per_s": round(args.calls / (finished - started)),
        "procrastinate_worker_jobs_per_s": round(args.calls / (finished - deferred)),
        "procrastinate_defer_per_s": round(args.calls / (deferred - started)),
        "procrastinate_concurrency": concurrency,
        # CPU per job of its worker phase, this process and the postgres server.
        "procrastinate_worker_cpu_us_per_job": round(cpu / args.calls * 1e6, 1),
        "procrastinate_postgres_cpu_us_per_job": round(pg_cpu / args.calls * 1e6, 1),
    }


async def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="durable calls: store-level benchmark")
    parser.add_argument("--calls", type=int, default=30_000)
    parser.add_argument("--clients", type=int, default=1_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--proc-concurrency", type=int, default=16)
    parser.add_argument("--pg", default=PG_DEFAULT)
    parser.add_argument(
        "--proc-pg-options", default="",
        help="extra libpq options for procrastinate's connections, for diagnosis only "
        "(e.g. '-c synchronous_commit=off' shows how much the commit flush costs it)",
    )
    parser.add_argument("--backends", default="postgres,sqlite")
    parser.add_argument("--skip-procrastinate", action="store_true", help="(for tuning)")
    args = parser.parse_args(argv)
    backends = args.backends.split(",")
    lines = []
    common = {"calls": args.calls, "clients": args.clients, "workers": args.workers,
              "batch": args.batch}
    if "postgres" in backends:
        ours = await bench_postgres(args.pg, args)
        print(f"postgres: {ours}", flush=True)
        theirs = {} if args.skip_procrastinate else await bench_procrastinate(args.pg, args)
        print(f"procrastinate: {theirs}", flush=True)
        lines.append({"backend": "postgres", **ours, **theirs, **common})
    if "sqlite" in backends:
        ours = await bench_sqlite(args)
        print(f"sqlite: {ours}", flush=True)
        lines.append({"backend": "sqlite", **ours, **common})
    for line in lines:
        print(json.dumps(line))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
