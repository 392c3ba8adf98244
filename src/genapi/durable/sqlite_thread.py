"""One SQLite connection driven by one dedicated thread, with group commit.

SQLite allows one writer at a time and its calls block, so the store never calls it from
the event loop: every operation is a function of the connection, queued to this thread.
The thread takes everything queued (up to ``max_batch`` operations) and runs it in
**one** transaction, each operation inside its own savepoint: an operation that raises
is rolled back alone and its caller gets the error, the others commit together. So N
concurrent operations cost one ``BEGIN IMMEDIATE … COMMIT`` and one wake-up of the event
loop, not N.

A batch of reads only starts a deferred transaction (it does not take the write lock
that other processes on the same file compete for). Lock waits are bounded by
``busy_timeout_ms``; ``sqlite3`` errors reach callers as
:class:`~genapi.errors.StoreUnavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from genapi.errors import StoreUnavailable, UsageError

__all__ = ["Op", "SqliteThread"]

logger = logging.getLogger("genapi.durable")

R = TypeVar("R")
#: An operation: runs in the thread with the connection, inside a transaction.
Op = Callable[[sqlite3.Connection], R]

_STOP = object()


def _unavailable(exc: sqlite3.Error) -> StoreUnavailable:
    error = StoreUnavailable(f"durable store (sqlite) failed: {exc}")
    error.__cause__ = exc
    return error


class SqliteThread:
    """Owns the connection to ``path`` and the thread that uses it."""

    def __init__(self, path: str, *, busy_timeout_ms: int = 5_000, max_batch: int = 256) -> None:
        self.path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        """Open the connection in a new thread (idempotent)."""
        if self._thread is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._queue = queue.SimpleQueue()  # nothing left over from a start given up
        opened: asyncio.Future[None] = self._loop.create_future()
        self._thread = threading.Thread(
            target=self._main, args=(opened,), name=f"genapi-sqlite:{self.path}", daemon=True
        )
        self._thread.start()
        try:
            await opened
        except BaseException:
            # Failed, or cancelled while opening: the thread may have its connection by
            # now and be waiting for work, so tell it to stop before joining it.
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None
            raise

    async def stop(self) -> None:
        """Finish the queued operations, close the connection, end the thread."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._queue.put(_STOP)
        await asyncio.to_thread(thread.join)

    async def run(self, op: Op[R], *, write: bool = True) -> R:
        """Run ``op(connection)`` in the thread, in a transaction, and return its result."""
        if self._thread is None or self._loop is None:
            raise UsageError("SqliteStore is not open: await store.open() first")
        future: asyncio.Future[R] = self._loop.create_future()
        self._queue.put((op, write, future))
        return await future

    # -- the thread --------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=True, cached_statements=256
        )
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        # WAL: readers never block the writer; NORMAL: no fsync per commit, durable
        # across process crashes (not power cuts) - the documented trade.
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def _main(self, opened: asyncio.Future[None]) -> None:
        assert self._loop is not None
        loop = self._loop
        try:
            conn = self._connect()
        except sqlite3.Error as exc:
            loop.call_soon_threadsafe(_settle_one, opened, None, _unavailable(exc))
            return
        loop.call_soon_threadsafe(_settle_one, opened, None, None)
        try:
            while True:
                first = self._queue.get()
                if first is _STOP:
                    return
                batch = [first]
                while len(batch) < self._max_batch:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        self._queue.put(_STOP)  # stop after this batch
                        break
                    batch.append(item)
                loop.call_soon_threadsafe(_settle_all, self._run_batch(conn, batch))
        finally:
            conn.close()

    def _run_batch(
        self, conn: sqlite3.Connection, batch: list[Any]
    ) -> list[tuple[asyncio.Future[Any], Any, BaseException | None]]:
        write = any(item[1] for item in batch)
        done: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        except sqlite3.Error as exc:
            error = _unavailable(exc)
            return [(future, None, error) for _, _, future in batch]
        for op, _, future in batch:
            try:
                conn.execute("SAVEPOINT op")
                result = op(conn)
                conn.execute("RELEASE op")
            except Exception as exc:
                try:
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                except sqlite3.Error:
                    logger.exception("sqlite savepoint rollback failed")
                failure: BaseException = (
                    _unavailable(exc) if isinstance(exc, sqlite3.Error) else exc
                )
                done.append((future, None, failure))
            else:
                done.append((future, result, None))
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            # The failed COMMIT already decided the outcome; a failing ROLLBACK adds nothing.
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            error = _unavailable(exc)
            return [(future, None, error) for future, _, _ in done]
        return done


def _settle_one(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # the caller was cancelled
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


def _settle_all(done: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, result, error in done:
        _settle_one(future, result, error)
