"""The Postgres store: several gateways and nodes share one queue.

Built on asyncpg (measured faster than psycopg 3 on these statements; see
``bench/durable_drivers.py``). Every hot operation is one statement, prepared once per
connection and batched:

* enqueue: ``INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING`` for the whole batch,
  plus one ``pg_notify`` per batch (delivered at commit) to wake listening workers;
* claim: ``UPDATE … FROM (SELECT … ORDER BY due_at LIMIT n FOR UPDATE SKIP LOCKED)``:
  concurrent workers skip each other's rows instead of waiting, and each row is taken by
  exactly one of them;
* complete and renew: ``UPDATE … FROM unnest(…)`` guarded by the lease (worker and
  attempt), so a stale worker's write matches no row.

Concurrent :meth:`PostgresStore.enqueue` and :meth:`PostgresStore.complete` calls are
coalesced into those batches (:class:`~genapi.durable.batching.Coalescer`).
``wait_for_work`` LISTENs on its own connection, opened at its first use.

Times default to the database server's clock, so hosts need not agree on the time.
asyncpg's and OS errors become :class:`~genapi.errors.StoreUnavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import asyncpg

from genapi.errors import StoreUnavailable, UsageError

from . import common
from .calls import Counts, Lease, NewCall, Renewal, Settle, StoredCall
from .postgres_sql import Statements
from .rows import EncodedCall, call_from_row
from .states import CallState, Move, OperatorAction
from .writes import CoalescedWrites

__all__ = ["PostgresStore"]

logger = logging.getLogger("genapi.durable")


async def _reset(conn: asyncpg.Connection) -> None:
    """What a connection needs before it goes back to the pool: nothing, unless a
    cancelled operation left a transaction open.

    asyncpg's default reset sends ``RESET ALL; UNLISTEN *; …`` on every release, one more
    round trip per statement; this store never changes session state on pool
    connections (LISTEN has its own connection, locks are transaction-scoped).
    """
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


@contextlib.contextmanager
def _translated(action: str) -> Iterator[None]:
    """Turn the driver's and the network's errors into :class:`StoreUnavailable`."""
    try:
        yield
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        raise StoreUnavailable(f"durable store (postgres) could not {action}: {exc}") from exc


class PostgresStore(CoalescedWrites):
    """Durable calls in Postgres; see the module docstring and
    :class:`~genapi.durable.DurableStore` for the guarantees.

    ``url`` is a ``postgresql://`` URL. Tables live in ``schema`` (created by
    :meth:`migrate`). The pool holds ``min_connections`` to ``max_connections``
    connections. ``clock`` replaces the server's clock (tests). ``max_batch`` bounds the
    rows of one coalesced statement.
    """

    def __init__(
        self,
        url: str,
        *,
        schema: str = "genapi",
        min_connections: int = 2,
        max_connections: int = 10,
        clock: Callable[[], float] | None = None,
        max_batch: int = 500,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self.url = url
        self._sql = Statements(schema, f"genapi_durable_{schema}")
        self._pool_size = (min_connections, max_connections)
        self._clock = clock
        self._connect_timeout_s = connect_timeout_s
        self._pool: asyncpg.Pool | None = None
        self._listener: asyncpg.Connection | None = None
        self._wake = asyncio.Event()
        self._max_batch = max_batch
        self._coalesce = max(1, max_connections // 4)
        self._make_coalescers()

    def __repr__(self) -> str:
        return f"PostgresStore(schema={self._sql.schema!r})"

    # -- lifecycle ---------------------------------------------------------------------

    async def open(self) -> None:
        if self._pool is not None:
            return
        with _translated("connect"):
            self._pool = await asyncpg.create_pool(
                self.url,
                min_size=self._pool_size[0],
                max_size=self._pool_size[1],
                timeout=self._connect_timeout_s,
                reset=_reset,
            )

    async def aclose(self) -> None:
        await self._close_coalescers()
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(asyncpg.InterfaceError, OSError):
                await listener.close()
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    def _now(self, now: float | None) -> float | None:
        if now is None and self._clock is not None:
            return self._clock()
        return now

    @property
    def _p(self) -> asyncpg.Pool:
        if self._pool is None:
            raise UsageError("PostgresStore is not open: await store.open() first")
        return self._pool

    async def _fetch(self, action: str, query: str, *args: Any) -> list[Any]:
        with _translated(action):
            return list(await self._p.fetch(query, *args))

    # -- schema ------------------------------------------------------------------------

    async def migrate(self) -> int:
        sql = self._sql
        with _translated("migrate"):
            async with self._p.acquire() as conn, conn.transaction():
                await conn.execute(sql.migration_lock, f"genapi_durable:{sql.schema}")
                await conn.execute(sql.create_schema)
                await conn.execute(sql.create_version_table)
                version: int = await conn.fetchval(sql.current_version)
                for number, step in enumerate(sql.migrations, start=1):
                    if number > version:
                        await conn.execute(step)
                        await conn.execute(sql.record_version, number)
                        logger.info("durable schema %s migrated to %d", sql.schema, number)
                return len(sql.migrations)

    # -- enqueue -----------------------------------------------------------------------

    async def _enqueue_rows(
        self, items: Sequence[EncodedCall], *, now: float | None = None
    ) -> list[tuple[StoredCall, bool]]:
        if not items:
            return []
        calls = [call for call, _ in items]
        columns = [list(col) for col in zip(*(row for _, row in items), strict=True)]
        rows = await self._fetch(
            "enqueue", self._sql.enqueue, *columns, self._now(now), self._sql.channel
        )
        inserted = {row[0]: (row[1], row[2]) for row in rows}
        missing = [call for call in calls if call.id not in inserted]
        existing = await self._existing(missing) if missing else {}
        return common.enqueue_results(calls, inserted, existing)

    async def _existing(self, calls: Sequence[NewCall]) -> dict[str, StoredCall]:
        keys = [c.idempotency_key for c in calls if c.idempotency_key is not None]
        found: dict[str, StoredCall] = {}
        if keys:
            for row in await self._fetch("read calls", self._sql.get_by_keys, keys):
                found[f"key:{row[9]}"] = call_from_row(row)
        ids = [c.id for c in calls]
        for row in await self._fetch("read calls", self._sql.get_by_ids, ids):
            found[f"id:{row[0]}"] = call_from_row(row)
        return found

    # -- workers -----------------------------------------------------------------------

    async def claim(
        self, worker_id: str, *, limit: int, lease_s: float, now: float | None = None
    ) -> list[StoredCall]:
        common.check_claim(limit, lease_s)
        rows = await self._fetch(
            "claim", self._sql.claim, worker_id, limit, float(lease_s), self._now(now)
        )
        calls = [call_from_row(row) for row in rows]
        return common.runnable(calls, self.on_claim_ended)

    async def renew(
        self, leases: Sequence[Lease], *, lease_s: float, now: float | None = None
    ) -> Renewal:
        if not leases:
            return Renewal(frozenset(), frozenset())
        ids, workers, attempts = (list(col) for col in zip(*leases, strict=True))
        rows = await self._fetch(
            "renew", self._sql.renew, ids, workers, attempts, float(lease_s), self._now(now)
        )
        return Renewal(
            frozenset(row[0] for row in rows), frozenset(row[0] for row in rows if row[1])
        )

    async def _complete_rows(
        self, outcomes: Sequence[tuple[Lease, str]], *, now: float | None = None
    ) -> list[Settle]:
        if not outcomes:
            return []
        ids = [lease.call_id for lease, _ in outcomes]
        rows = await self._fetch(
            "complete", self._sql.complete, ids,
            [lease.worker_id for lease, _ in outcomes],
            [lease.attempt for lease, _ in outcomes],
            [result for _, result in outcomes],
            self._now(now),
        )
        recorded = {row[0] for row in rows}
        return await self._settles(ids, recorded)

    async def fail(
        self, lease: Lease, error: str, *, retry_at: float | None, now: float | None = None
    ) -> Settle:
        rows = await self._fetch(
            "fail", self._sql.fail, lease.call_id, lease.worker_id, lease.attempt, error,
            retry_at, self._now(now),
        )
        return (await self._settles([lease.call_id], {row[0] for row in rows}))[0]

    async def _settles(self, ids: Sequence[str], recorded: set[str]) -> list[Settle]:
        if len(recorded) == len(set(ids)):
            return [Settle.RECORDED] * len(ids)
        rows = await self._fetch("read calls", self._sql.exists, list(ids))
        return common.settles(ids, recorded, {row[0] for row in rows})

    # -- reading -----------------------------------------------------------------------

    async def get(self, call_id: str) -> StoredCall | None:
        rows = await self._fetch("read a call", self._sql.get, call_id)
        return call_from_row(rows[0]) if rows else None

    async def get_by_key(self, idempotency_key: str) -> StoredCall | None:
        rows = await self._fetch("read a call", self._sql.get_by_key, idempotency_key)
        return call_from_row(rows[0]) if rows else None

    async def list_calls(
        self,
        *,
        state: CallState | None = None,
        service: str | None = None,
        user_id: str | None = None,
        limit: int = 100,
        before: str | None = None,
    ) -> list[StoredCall]:
        query = self._sql.listing(
            state=state is not None, service=service is not None,
            user_id=user_id is not None, after=before is not None,
        )
        values = [v for v in (state and str(state), service, user_id, before) if v is not None]
        rows = await self._fetch("list calls", query, *values, limit)
        return [call_from_row(row) for row in rows]

    async def counts(self, *, now: float | None = None) -> Counts:
        states = await self._fetch("count calls", self._sql.count_states)
        oldest = await self._fetch("count calls", self._sql.oldest_due, self._now(now))
        return common.counts([(s, n, r) for s, n, r in states], oldest[0][0])

    async def undelivered(self, user_id: str, *, limit: int = 100) -> list[StoredCall]:
        rows = await self._fetch("list undelivered", self._sql.undelivered, user_id, limit)
        return [call_from_row(row) for row in rows]

    async def unfinished(self, user_id: str, *, limit: int = 100) -> list[StoredCall]:
        rows = await self._fetch("list unfinished", self._sql.unfinished, user_id, limit)
        return [call_from_row(row) for row in rows]

    async def undelivered_for(
        self, user_ids: Sequence[str], *, limit: int = 100
    ) -> list[StoredCall]:
        if not user_ids:
            return []
        rows = await self._fetch(
            "list undelivered", self._sql.undelivered_for, list(user_ids), limit
        )
        return [call_from_row(row) for row in rows]

    async def mark_delivered(self, ids: Sequence[str], *, now: float | None = None) -> int:
        with _translated("mark delivered"):
            status = await self._p.execute(self._sql.mark_delivered, list(ids), self._now(now))
        return int(status.split()[-1])

    # -- operators ---------------------------------------------------------------------

    async def retry(self, call_id: str, *, now: float | None = None) -> StoredCall:
        return await self._operator(OperatorAction.RETRY, call_id, self._now(now))

    async def cancel(self, call_id: str, *, now: float | None = None) -> StoredCall:
        return await self._operator(OperatorAction.CANCEL, call_id, self._now(now))

    async def _operator(
        self, action: OperatorAction, call_id: str, now: float | None
    ) -> StoredCall:
        sql = self._sql
        statements = {
            Move.TO_PENDING: sql.to_pending,
            Move.TO_CANCELLED: sql.to_cancelled,
            Move.REQUEST_CANCEL: sql.request_cancel,
        }
        with _translated(str(action)):
            async with self._p.acquire() as conn, conn.transaction():
                row = await conn.fetchrow(sql.get_for_update, call_id)
                current = None if row is None else call_from_row(row)
                move = common.decide(action, call_id, current)
                if move is Move.NOTHING:
                    assert current is not None
                    return current
                row = await conn.fetchrow(statements[move], call_id, now)
                if move is Move.TO_PENDING:
                    await conn.execute(sql.notify, sql.channel)
                return call_from_row(row)

    async def purge(self, *, finished_before: float) -> int:
        with _translated("purge"):
            status = await self._p.execute(self._sql.purge, finished_before)
        return int(status.split()[-1])

    # -- wake-ups ----------------------------------------------------------------------

    async def wait_for_work(self, timeout: float) -> bool:
        if self._listener is None or self._listener.is_closed():
            await self._listen()
            # Work may have arrived while nobody listened: report a wake-up so the
            # worker claims before it waits.
            return True
        if self._wake.is_set():
            self._wake.clear()
            return True
        try:
            async with asyncio.timeout(timeout):
                await self._wake.wait()
        except TimeoutError:
            return False
        self._wake.clear()
        return True

    async def _listen(self) -> None:
        def woken(*_: Any) -> None:
            self._wake.set()

        def lost(*_: Any) -> None:
            # The next wait opens a new listener and reports a wake-up.
            self._wake.set()

        with _translated("listen"):
            conn = await asyncpg.connect(self.url, timeout=self._connect_timeout_s)
            conn.add_termination_listener(lost)
            await conn.add_listener(self._sql.channel, woken)
        self._listener = conn
