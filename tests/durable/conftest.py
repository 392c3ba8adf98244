"""Fixtures for the durable-store tests: a fake clock and a fresh store per backend.

Postgres is the server at ``GENAPI_TEST_PG`` (default 127.0.0.1:5432, database ``test``);
each test gets its own schema, dropped afterwards, so runs can share the server. When no
Postgres answers the tests fail with a message saying so: they are never skipped.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from durable_helpers import FakeClock

from genapi.durable import DurableStore, PostgresStore, SqliteStore

PG_URL = os.environ.get("GENAPI_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _run(coro: Any) -> Any:
    """Run a coroutine to completion from sync code, even inside a running loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _drop_schema(schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_URL)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_url() -> str:
    """The Postgres URL, checked once: fails the tests clearly when nothing answers."""
    import asyncpg

    async def probe() -> None:
        conn = await asyncpg.connect(PG_URL, timeout=5)
        await conn.close()

    try:
        _run(probe())
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        pytest.fail(
            f"the durable-store tests need Postgres at {PG_URL} (set GENAPI_TEST_PG to use "
            f"another; CI must start one): {exc!r}",
            pytrace=False,
        )
    return PG_URL


@pytest.fixture
def clock() -> FakeClock:
    """Unix seconds that move only on ``advance``."""
    return FakeClock()


@pytest.fixture
def pg_schema(pg_url: str) -> Iterator[str]:
    """A fresh schema name for this test; dropped afterwards."""
    schema = f"t_durable_{uuid.uuid4().hex[:12]}"
    yield schema
    _run(_drop_schema(schema))


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    """Each backend in turn."""
    return str(request.param)


@pytest.fixture
async def make_store(
    backend: str, request: pytest.FixtureRequest, tmp_path: Any, clock: FakeClock
) -> AsyncIterator[Callable[..., Any]]:
    """Open stores on one fresh database of the backend (each its own connections), as
    separate processes of one deployment would; all closed after the test."""
    made: list[DurableStore] = []
    if backend == "postgres":
        schema = request.getfixturevalue("pg_schema")
        url = request.getfixturevalue("pg_url")

    async def make(**options: Any) -> DurableStore:
        options.setdefault("clock", clock)
        store: DurableStore
        if backend == "sqlite":
            options.setdefault("poll_s", 0.02)
            store = SqliteStore(str(tmp_path / "durable.db"), **options)
        else:
            options.setdefault("min_connections", 1)
            options.setdefault("max_connections", 4)
            store = PostgresStore(url, schema=schema, **options)
        await store.open()
        made.append(store)
        await store.migrate()
        return store

    yield make
    for store in made:
        await store.aclose()


@pytest.fixture
async def store(make_store: Callable[..., Any]) -> DurableStore:
    """A fresh, migrated store of the backend on the fake clock."""
    made: DurableStore = await make_store()
    return made
