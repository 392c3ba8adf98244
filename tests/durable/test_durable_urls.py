"""Choosing a backend from a URL, lazy driver imports and errors at the boundary."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from durable_helpers import new_call

from genapi.durable import PostgresStore, SqliteStore, open_store
from genapi.durable.sqlite_thread import SqliteThread
from genapi.durable.urls import parse_store_url
from genapi.errors import ConfigError, StoreUnavailable


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///durable.db", ("sqlite", "durable.db", {})),
        ("sqlite:////var/lib/app/durable.db", ("sqlite", "/var/lib/app/durable.db", {})),
        ("sqlite:///:memory:", ("sqlite", ":memory:", {})),
        ("postgresql://u@db:5432/app", ("postgres", "postgresql://u@db:5432/app", {})),
        ("postgres://u@db/app?schema=jobs&sslmode=require",
         ("postgres", "postgres://u@db/app?sslmode=require", {"schema": "jobs"})),
    ],
)
def test_parse_store_url(url: str, expected: tuple[str, str, dict[str, str]]) -> None:
    """Each supported URL gives its backend, target and options."""
    assert parse_store_url(url) == expected


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("mysql://db/app", "unsupported scheme"),
        ("sqlite://durable.db", "sqlite:///relative/path"),
        ("sqlite:///", "names no file"),
        ("postgresql://", "names no host"),
        ("durable.db", "unsupported scheme"),
    ],
)
def test_bad_urls_are_config_errors(url: str, problem: str) -> None:
    """A URL of no known form raises ConfigError (also a ValueError) saying why."""
    with pytest.raises(ConfigError, match=problem) as info:
        open_store(url)
    assert isinstance(info.value, ValueError)


def test_open_store_builds_the_backend(tmp_path: Path) -> None:
    """open_store picks the class by scheme and passes the schema on."""
    assert isinstance(open_store(f"sqlite:///{tmp_path}/d.db"), SqliteStore)
    store = open_store("postgresql://u@db/app?schema=jobs")
    assert isinstance(store, PostgresStore) and "jobs" in repr(store)
    with pytest.raises(ConfigError, match="schema"):
        open_store("postgresql://u@db/app?schema=Bad-Name")
    with pytest.raises(ConfigError, match="schema"):
        open_store(f"postgresql://u@db/app?schema={'s' * 49}")
    with pytest.raises(ConfigError, match="schema"):
        open_store("postgresql://u@db/app?schema=a", schema="b")


def test_importing_the_package_loads_no_driver() -> None:
    """import genapi.durable imports neither asyncpg nor psycopg nor sqlite3."""
    code = (
        "import sys, genapi.durable; "
        "print(sorted(m for m in ('asyncpg', 'psycopg', 'sqlite3') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PYTHONPATH": str(Path(__file__).parents[2] / "src")})
    assert out.stdout.strip() == "[]"


async def test_unreachable_postgres_is_store_unavailable() -> None:
    """A Postgres that does not answer raises StoreUnavailable with the cause attached."""
    store = PostgresStore("postgresql://postgres@127.0.0.1:1/test", connect_timeout_s=2)
    with pytest.raises(StoreUnavailable, match="could not connect") as info:
        await store.open()
    assert info.value.__cause__ is not None
    assert info.value.can_retry is True
    await store.aclose()


async def test_unopenable_sqlite_file_is_store_unavailable(tmp_path: Path) -> None:
    """A SQLite path in a missing folder raises StoreUnavailable at open."""
    store = SqliteStore(str(tmp_path / "missing" / "d.db"))
    with pytest.raises(StoreUnavailable):
        await store.open()


async def test_closed_store_says_open_it_first(tmp_path: Path) -> None:
    """Using a store before open() is a clear RuntimeError."""
    with pytest.raises(RuntimeError, match="open"):
        await SqliteStore(str(tmp_path / "d.db")).get("x")
    with pytest.raises(RuntimeError, match="open"):
        await PostgresStore("postgresql://u@db/app").get("x")


async def test_sqlite_thread_isolates_a_failing_operation(tmp_path: Path) -> None:
    """In one group commit, an operation that raises is rolled back alone."""
    thread = SqliteThread(str(tmp_path / "t.db"))
    await thread.start()
    try:
        await thread.run(lambda c: c.execute("CREATE TABLE t (x INTEGER UNIQUE)"))

        def bad(conn: object) -> None:
            conn.execute("INSERT INTO t VALUES (2)")  # type: ignore[attr-defined]
            conn.execute("INSERT INTO t VALUES (1)")  # type: ignore[attr-defined]

        results = await asyncio.gather(
            thread.run(lambda c: c.execute("INSERT INTO t VALUES (1)").rowcount),
            thread.run(bad),
            thread.run(lambda c: c.execute("INSERT INTO t VALUES (3)").rowcount),
            return_exceptions=True,
        )
        assert results[0] == 1 and results[2] == 1
        assert isinstance(results[1], StoreUnavailable)
        rows = await thread.run(lambda c: c.execute("SELECT x FROM t ORDER BY x").fetchall())
        assert rows == [(1,), (3,)]
    finally:
        await thread.stop()


async def test_memory_sqlite_store_works_in_one_process() -> None:
    """sqlite:///:memory: gives a working store for tests (one process, one connection)."""
    store = open_store("sqlite:///:memory:")
    await store.open()
    try:
        await store.migrate()
        stored, created = await store.enqueue(new_call())
        assert created and await store.get(stored.id) == stored
    finally:
        await store.aclose()
