"""Guaranteed execution: durable calls stored before they are acknowledged.

A durable call is written to a store, claimed by one worker under a lease, retried with
backoff until it succeeds or runs out of attempts (then it is *dead* and kept for an
operator), and its terminal result is delivered to the caller once they are back::

    from genapi.durable import NewCall, new_call_id, open_store, retry_at

    store = open_store("sqlite:///var/lib/app/durable.db")   # or postgresql://…
    await store.open()
    await store.migrate()
    stored, created = await store.enqueue(NewCall(
        id=new_call_id(), service="signup", request_type="welcome",
        request_id="r1", args={"email": "a@example.com"}, idempotency_key="u1:r1"))

    for call in await store.claim("worker-1", limit=50, lease_s=30):
        try:
            result = await run(call)          # the function sees call.attempts
        except Exception as exc:
            when = retry_at(call.backoff, attempts=call.attempts,
                            max_attempts=call.max_attempts, now=time.time(),
                            rand=random.random)
            await store.fail(call.lease, str(exc), retry_at=when)
        else:
            await store.complete(call.lease, result)

Modules: ``states`` (the lifecycle), ``backoff`` (pure retry delays), ``calls`` (values),
``store`` (the :class:`DurableStore` interface and its guarantees), ``sqlite`` and
``postgres`` (the backends), ``urls`` (:func:`open_store`), ``batching`` (coalescing
concurrent writes), ``rows``/``common``/``*_sql`` (shared by the backends). The backends
are imported on first use: ``import genapi.durable`` loads neither sqlite3 nor asyncpg.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .backoff import Backoff, Jitter, RandomSource, delay_s, retry_at, seeded_random
from .calls import (
    Counts,
    Lease,
    NewCall,
    Renewal,
    Settle,
    StoredCall,
    default_idempotency_key,
    new_call_id,
)
from .states import TERMINAL, CallState
from .store import DurableStore
from .urls import open_store

if TYPE_CHECKING:
    from .postgres import PostgresStore
    from .sqlite import SqliteStore

__all__ = [
    "TERMINAL",
    "Backoff",
    "CallState",
    "Counts",
    "DurableStore",
    "Jitter",
    "Lease",
    "NewCall",
    "PostgresStore",
    "RandomSource",
    "Renewal",
    "Settle",
    "SqliteStore",
    "StoredCall",
    "default_idempotency_key",
    "delay_s",
    "new_call_id",
    "open_store",
    "retry_at",
    "seeded_random",
]


def __getattr__(name: str) -> Any:
    if name == "PostgresStore":
        from .postgres import PostgresStore

        return PostgresStore
    if name == "SqliteStore":
        from .sqlite import SqliteStore

        return SqliteStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
