"""The SQLite store: the embedded default, a file and no server.

All SQL runs in one dedicated thread with group commit
(:class:`~genapi.durable.sqlite_thread.SqliteThread`), in WAL mode with
``synchronous=NORMAL``. A claim is one ``UPDATE … FROM (SELECT … LIMIT n) RETURNING``
inside ``BEGIN IMMEDIATE``: the write lock makes the select-and-update atomic across
threads and processes, which is SQLite's equivalent of ``FOR UPDATE SKIP LOCKED``
(workers queue for the lock instead of skipping rows; each claim is short).

Several processes may open the same file (a gateway and a CLI, say); they take turns
for the write lock (``busy_timeout_ms``). ``wait_for_work`` wakes at once for work
enqueued through this store and within ``poll_s`` for work committed by another process
(it watches ``PRAGMA data_version``).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any

from . import common
from . import sqlite_sql as q
from .calls import Counts, Lease, Renewal, Settle, StoredCall
from .rows import EncodedCall, call_from_row, encode_json, stored_from_new
from .sqlite_thread import SqliteThread
from .states import CallState, Move, OperatorAction
from .writes import CoalescedWrites

__all__ = ["SqliteStore"]

_MOVES = {Move.TO_PENDING: q.TO_PENDING, Move.TO_CANCELLED: q.TO_CANCELLED,
          Move.REQUEST_CANCEL: q.REQUEST_CANCEL}


class SqliteStore(CoalescedWrites):
    """Durable calls in a SQLite file; see the module docstring and
    :class:`~genapi.durable.DurableStore` for the guarantees.

    ``path`` is a file path (or ``":memory:"``, for one process). ``clock`` gives Unix
    seconds (default :func:`time.time`). ``max_batch`` bounds coalesced writes.
    """

    def __init__(
        self,
        path: str,
        *,
        clock: Callable[[], float] = time.time,
        poll_s: float = 0.2,
        busy_timeout_ms: int = 5_000,
        max_batch: int = 500,
    ) -> None:
        self.path = path
        self._clock = clock
        self._poll_s = poll_s
        self._thread = SqliteThread(path, busy_timeout_ms=busy_timeout_ms)
        self._wake = asyncio.Event()
        self._data_version: int | None = None
        self._max_batch = max_batch
        self._make_coalescers()

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r})"

    async def open(self) -> None:
        await self._thread.start()

    async def aclose(self) -> None:
        await self._close_coalescers()
        await self._thread.stop()

    def _now(self, now: float | None) -> float:
        return self._clock() if now is None else now

    async def migrate(self) -> int:
        def run(conn: sqlite3.Connection) -> int:
            conn.execute(q.VERSION_TABLE)
            (version,) = conn.execute(
                "SELECT coalesce(max(version), 0) FROM durable_schema_version"
            ).fetchone()
            for number, steps in enumerate(q.MIGRATIONS, start=1):
                if number > version:
                    for step in steps:
                        conn.execute(step)
                    conn.execute(
                        "INSERT INTO durable_schema_version VALUES (?, ?)",
                        (number, time.time()),
                    )
            return len(q.MIGRATIONS)

        return await self._thread.run(run)

    # -- enqueue -----------------------------------------------------------------------

    async def _enqueue_rows(
        self, items: Sequence[EncodedCall], *, now: float | None = None
    ) -> list[tuple[StoredCall, bool]]:
        if not items:
            return []
        at = self._now(now)
        calls = [call for call, _ in items]
        values = [(*row, at) for _, row in items]

        def run(conn: sqlite3.Connection) -> list[tuple[StoredCall, bool]]:
            # Fast path: one executemany; when every row went in, the stored form is
            # known without reading anything back.
            conn.execute("SAVEPOINT enqueue")
            if conn.executemany(q.INSERT_PLAIN, values).rowcount == len(values):
                conn.execute("RELEASE enqueue")
                return [
                    (stored_from_new(call, created_at=at, due_at=row[14] or at), True)
                    for call, row in zip(calls, values, strict=True)
                ]
            # Some were already stored: undo, then go row by row to tell which.
            conn.execute("ROLLBACK TO enqueue")
            conn.execute("RELEASE enqueue")
            inserted: dict[str, tuple[float, float]] = {}
            for row in values:
                for new_id, created_at, due_at in conn.execute(q.INSERT, row):
                    inserted[new_id] = (created_at, due_at)
            existing: dict[str, StoredCall] = {}
            for call in calls:
                if call.id in inserted:
                    continue
                if call.idempotency_key is not None:
                    found = conn.execute(q.GET_BY_KEY, (call.idempotency_key,)).fetchone()
                    if found is not None:
                        existing[f"key:{call.idempotency_key}"] = call_from_row(found)
                found = conn.execute(q.GET, (call.id,)).fetchone()
                if found is not None:
                    existing[f"id:{call.id}"] = call_from_row(found)
            return common.enqueue_results(calls, inserted, existing)

        results = await self._thread.run(run)
        if any(created for _, created in results):
            self._wake.set()
        return results

    # -- workers -----------------------------------------------------------------------

    async def claim(
        self, worker_id: str, *, limit: int, lease_s: float, now: float | None = None
    ) -> list[StoredCall]:
        common.check_claim(limit, lease_s)
        params = (worker_id, limit, float(lease_s), self._now(now))

        def run(conn: sqlite3.Connection) -> list[StoredCall]:
            return [call_from_row(row) for row in conn.execute(q.CLAIM, params)]

        return common.runnable(await self._thread.run(run), self.on_claim_ended)

    async def renew(
        self, leases: Sequence[Lease], *, lease_s: float, now: float | None = None
    ) -> Renewal:
        at = self._now(now)

        def run(conn: sqlite3.Connection) -> Renewal:
            held: set[str] = set()
            cancel: set[str] = set()
            for lease in leases:
                for call_id, cancel_requested in conn.execute(q.RENEW, (*lease, lease_s, at)):
                    held.add(call_id)
                    if cancel_requested:
                        cancel.add(call_id)
            return Renewal(frozenset(held), frozenset(cancel))

        return await self._thread.run(run)

    async def _complete_rows(
        self, outcomes: Sequence[tuple[Lease, str]], *, now: float | None = None
    ) -> list[Settle]:
        if not outcomes:
            return []
        at = self._now(now)
        values = [(*lease, result, at) for lease, result in outcomes]

        def run(conn: sqlite3.Connection) -> list[Settle]:
            # Fast path: every lease held, one executemany. Otherwise undo and go row by
            # row to report each outcome.
            conn.execute("SAVEPOINT complete")
            if conn.executemany(q.COMPLETE, values).rowcount == len(values):
                conn.execute("RELEASE complete")
                return [Settle.RECORDED] * len(values)
            conn.execute("ROLLBACK TO complete")
            conn.execute("RELEASE complete")
            return [_settled(conn, row[0], conn.execute(q.COMPLETE, row)) for row in values]

        return await self._thread.run(run)

    async def fail(
        self, lease: Lease, error: str, *, retry_at: float | None, now: float | None = None
    ) -> Settle:
        row = (*lease, error, retry_at, self._now(now))

        def run(conn: sqlite3.Connection) -> Settle:
            return _settled(conn, lease.call_id, conn.execute(q.FAIL, row))

        return await self._thread.run(run)

    # -- reading -----------------------------------------------------------------------

    async def _read_one(self, query: str, value: str) -> StoredCall | None:
        def run(conn: sqlite3.Connection) -> StoredCall | None:
            row = conn.execute(query, (value,)).fetchone()
            return None if row is None else call_from_row(row)

        return await self._thread.run(run, write=False)

    async def get(self, call_id: str) -> StoredCall | None:
        return await self._read_one(q.GET, call_id)

    async def get_by_key(self, idempotency_key: str) -> StoredCall | None:
        return await self._read_one(q.GET_BY_KEY, idempotency_key)

    async def _read_many(self, query: str, params: Sequence[Any]) -> list[StoredCall]:
        def run(conn: sqlite3.Connection) -> list[StoredCall]:
            return [call_from_row(row) for row in conn.execute(query, params)]

        return await self._thread.run(run, write=False)

    async def list_calls(
        self,
        *,
        state: CallState | None = None,
        service: str | None = None,
        user_id: str | None = None,
        limit: int = 100,
        before: str | None = None,
    ) -> list[StoredCall]:
        query = q.listing(
            state=state is not None, service=service is not None,
            user_id=user_id is not None, before=before is not None,
        )
        values = [v for v in (state and str(state), service, user_id, before) if v is not None]
        return await self._read_many(query, [*values, limit])

    async def undelivered(self, user_id: str, *, limit: int = 100) -> list[StoredCall]:
        return await self._read_many(q.UNDELIVERED, (user_id, limit))

    async def unfinished(self, user_id: str, *, limit: int = 100) -> list[StoredCall]:
        return await self._read_many(q.UNFINISHED, (user_id, limit))

    async def undelivered_for(
        self, user_ids: Sequence[str], *, limit: int = 100
    ) -> list[StoredCall]:
        if not user_ids:
            return []
        return await self._read_many(q.UNDELIVERED_FOR, (encode_json(list(user_ids)), limit))

    async def mark_delivered(self, ids: Sequence[str], *, now: float | None = None) -> int:
        at = self._now(now)

        def run(conn: sqlite3.Connection) -> int:
            return conn.executemany(q.MARK_DELIVERED, [(i, at) for i in ids]).rowcount

        return await self._thread.run(run)

    async def counts(self, *, now: float | None = None) -> Counts:
        at = self._now(now)

        def run(conn: sqlite3.Connection) -> Counts:
            states = conn.execute(q.COUNT_STATES).fetchall()
            (oldest,) = conn.execute(q.OLDEST_DUE, (at,)).fetchone()
            return common.counts([(s, n, r or 0) for s, n, r in states], oldest)

        return await self._thread.run(run, write=False)

    # -- operators ---------------------------------------------------------------------

    async def retry(self, call_id: str, *, now: float | None = None) -> StoredCall:
        call = await self._operator(OperatorAction.RETRY, call_id, self._now(now))
        self._wake.set()
        return call

    async def cancel(self, call_id: str, *, now: float | None = None) -> StoredCall:
        return await self._operator(OperatorAction.CANCEL, call_id, self._now(now))

    async def _operator(self, action: OperatorAction, call_id: str, now: float) -> StoredCall:
        def run(conn: sqlite3.Connection) -> StoredCall:
            row = conn.execute(q.GET, (call_id,)).fetchone()
            current = None if row is None else call_from_row(row)
            move = common.decide(action, call_id, current)
            if move is Move.NOTHING:
                assert current is not None
                return current
            return call_from_row(conn.execute(_MOVES[move], (call_id, now)).fetchone())

        return await self._thread.run(run)

    async def purge(self, *, finished_before: float) -> int:
        def run(conn: sqlite3.Connection) -> int:
            return conn.execute(q.PURGE, (finished_before,)).rowcount

        return await self._thread.run(run)

    # -- wake-ups ----------------------------------------------------------------------

    async def wait_for_work(self, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self._wake.is_set():
                self._wake.clear()
                return True
            if await self._changed_elsewhere():
                return True
            left = deadline - loop.time()
            if left <= 0:
                return False
            try:
                async with asyncio.timeout(min(left, self._poll_s)):
                    await self._wake.wait()
            except TimeoutError:
                continue

    async def _changed_elsewhere(self) -> bool:
        """True when another connection committed since the last look (or at the first)."""
        version = await self._thread.run(
            lambda conn: int(conn.execute("PRAGMA data_version").fetchone()[0]), write=False
        )
        changed = self._data_version is not None and version != self._data_version
        first = self._data_version is None
        self._data_version = version
        return changed or first


def _settled(conn: sqlite3.Connection, call_id: str, cursor: sqlite3.Cursor) -> Settle:
    if cursor.rowcount > 0:
        return Settle.RECORDED
    if conn.execute(q.EXISTS, (call_id,)).fetchone() is None:
        return Settle.NOT_FOUND
    return Settle.NOT_OWNER
