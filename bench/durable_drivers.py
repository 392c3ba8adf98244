"""asyncpg vs psycopg 3 on the durable store's own statements (the driver choice).

Runs the three hot statements of :mod:`genapi.durable.postgres_sql` (batched enqueue,
``FOR UPDATE SKIP LOCKED`` claim, batched completion) with each driver on the same
Postgres, same schema, same batch sizes, rows decoded into ``StoredCall`` both times:
``--calls`` calls enqueued in batches of ``--batch`` by ``--conns`` connections, then
``--conns`` workers claim and complete batches of ``--batch`` until none is left.
Prints one JSON line per driver.

    python bench/durable_drivers.py --url postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from genapi.durable import NewCall, new_call_id
from genapi.durable.postgres_sql import Statements
from genapi.durable.rows import call_from_row, new_call_columns

Run = Callable[[str, Sequence[Any]], Awaitable[list[Sequence[Any]]]]


def make_calls(n: int) -> list[NewCall]:
    return [
        NewCall(
            id=new_call_id(), service="bench", request_type="noop", request_id=f"r{i}",
            args={"i": i}, user_id=f"u{i % 100}", idempotency_key=f"k{i}",
        )
        for i in range(n)
    ]


def enqueue_params(sql: Statements, calls: Sequence[NewCall]) -> list[Any]:
    columns = list(zip(*(new_call_columns(c) for c in calls), strict=True))
    return [list(col) for col in columns] + [None, sql.channel]


async def workload(
    runs: Sequence[Run], sql: Statements, calls: int, batch: int
) -> dict[str, float]:
    items = make_calls(calls)
    chunks = [items[i : i + batch] for i in range(0, calls, batch)]
    start = time.perf_counter()

    async def enqueuer(run: Run, mine: list[list[NewCall]]) -> None:
        for chunk in mine:
            await run(sql.enqueue, enqueue_params(sql, chunk))

    await asyncio.gather(
        *(enqueuer(run, chunks[i :: len(runs)]) for i, run in enumerate(runs))
    )
    enqueued = time.perf_counter()
    done = 0

    async def worker(run: Run, name: str) -> None:
        nonlocal done
        while True:
            rows = await run(sql.claim, [name, batch, 30.0, None])
            if not rows:
                return
            claimed = [call_from_row(r) for r in rows]
            await run(sql.complete, [
                [c.id for c in claimed], [name] * len(claimed),
                [c.attempts for c in claimed], ['{"ok":true}'] * len(claimed), None,
            ])
            done += len(claimed)

    await asyncio.gather(*(worker(run, f"w{i}") for i, run in enumerate(runs)))
    finished = time.perf_counter()
    assert done == calls, (done, calls)
    return {
        "enqueue_per_s": round(calls / (enqueued - start)),
        "claim_complete_per_s": round(calls / (finished - enqueued)),
        "end_to_end_per_s": round(calls / (finished - start)),
    }


async def prepare(url: str, schema: str) -> Statements:
    import asyncpg

    sql = Statements(schema, f"{schema}_work")
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.execute(sql.create_schema)
        for step in sql.migrations:
            await conn.execute(step)
    finally:
        await conn.close()
    return sql


async def with_asyncpg(url: str, sql: Statements, calls: int, batch: int, conns: int) -> Any:
    import asyncpg

    connections = [await asyncpg.connect(url) for _ in range(conns)]

    def runner(conn: Any) -> Run:
        async def run(query: str, params: Sequence[Any]) -> list[Sequence[Any]]:
            return list(await conn.fetch(query, *params))

        return run

    try:
        return await workload([runner(c) for c in connections], sql, calls, batch)
    finally:
        for conn in connections:
            await conn.close()


async def with_psycopg(url: str, sql: Statements, calls: int, batch: int, conns: int) -> Any:
    import psycopg
    from psycopg.types.string import TextLoader

    connections = [await psycopg.AsyncConnection.connect(url, autocommit=True)
                   for _ in range(conns)]
    for conn in connections:
        # Keep jsonb as text so both drivers hand call_from_row the same thing.
        conn.adapters.register_loader("jsonb", TextLoader)

    def runner(conn: Any) -> Run:
        async def run(query: str, params: Sequence[Any]) -> list[Sequence[Any]]:
            async with psycopg.AsyncRawCursor(conn) as cur:
                await cur.execute(query, params, prepare=True)
                return await cur.fetchall() if cur.description else []

        return run

    try:
        return await workload([runner(c) for c in connections], sql, calls, batch)
    finally:
        for conn in connections:
            await conn.close()


async def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--conns", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    schema = f"bench_drivers_{uuid.uuid4().hex[:8]}"
    results: dict[str, list[dict[str, float]]] = {"asyncpg": [], "psycopg": []}
    try:
        for _ in range(args.rounds):
            for name, fn in (("asyncpg", with_asyncpg), ("psycopg", with_psycopg)):
                sql = await prepare(args.url, schema)
                results[name].append(await fn(args.url, sql, args.calls, args.batch, args.conns))
    finally:
        import asyncpg

        conn = await asyncpg.connect(args.url)
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()
    for name, rounds in results.items():
        best = {key: max(r[key] for r in rounds) for key in rounds[0]}
        print(json.dumps({"driver": name, **best, "calls": args.calls, "batch": args.batch,
                          "conns": args.conns, "rounds": args.rounds}))


if __name__ == "__main__":
    asyncio.run(main())
