"""The interface every durable store implements, and what it promises.

The gateway stores a call (:meth:`DurableStore.enqueue`) before it acknowledges it;
workers :meth:`~DurableStore.claim` due calls under a lease, run them, and settle them
with :meth:`~DurableStore.complete` / :meth:`~DurableStore.fail`; the gateway delivers
finished calls to their callers (:meth:`~DurableStore.undelivered`,
:meth:`~DurableStore.mark_delivered`); operators list, retry, cancel and purge.

Guarantees, for every backend:

* **Stored before acknowledged.** ``enqueue`` returns only once the call is committed
  (SQLite in WAL mode with ``synchronous=NORMAL`` may lose the last commits on a power
  cut, not on a process crash; Postgres follows its own ``synchronous_commit``).
* **Idempotency key.** Calls with the same key are one call: a second ``enqueue`` returns
  the stored call (``created`` False) in whatever state it is, its result included;
  nothing is stored or run twice, also when the two enqueues race.
* **One worker at a time.** ``claim`` hands each due call to exactly one worker and gives
  it a lease until ``now + lease_s``; other workers skip it until the lease expires.
  ``renew`` extends leases for long work.
* **At-least-once execution.** A worker that dies (crash, ``kill -9``, lost database)
  leaves its lease to expire; the call is then claimed again with ``attempts`` one
  higher. So a call may *run* more than once; functions with side effects use the
  attempt number and the idempotency key to make them exactly-once.
* **Exactly one terminal record.** Only the current lease holder (worker id *and*
  attempt, a :class:`~genapi.durable.Lease`) may complete or fail a call; a stale
  worker whose lease was taken over is told :attr:`~genapi.durable.Settle.NOT_OWNER`
  and writes nothing. A call reaches one terminal state (succeeded, dead, cancelled)
  once; only an operator's ``retry`` starts it again.
* **Bounded retries.** The worker computes ``retry_at`` with
  :func:`~genapi.durable.retry_at` (``None`` on the last attempt → dead). A call whose
  lease expires on its last attempt (it keeps killing its worker) is made dead by the
  next ``claim`` instead of running again.
* **Cancellation.** ``cancel`` ends a pending call at once. A running call is flagged
  (``cancel_requested``): ``renew`` reports it so the worker can stop; its ``fail``, or
  its lease expiring, then ends it cancelled; a ``complete`` that comes first still
  records the success (the work was done).

Every method that depends on time takes ``now`` (Unix seconds) so tests need no sleep;
``None`` uses the store's clock. Database failures raise
:class:`~genapi.errors.StoreUnavailable`, never a driver's exception.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from .calls import Counts, Lease, NewCall, Renewal, Settle, StoredCall
from .states import CallState

__all__ = ["DurableStore"]


class DurableStore(Protocol):
    """A place where durable calls live; see the module docstring for the guarantees."""

    #: Called, on the event loop, with the calls a :meth:`claim` ended instead of leasing
    #: them (dead: the lease expired on the last attempt, its worker lost; cancelled):
    #: their caller and webhook must still hear of it. Set by the engine.
    on_claim_ended: Callable[[list[StoredCall]], None] | None

    async def open(self) -> None:
        """Connect (idempotent). Every other method needs an open store."""
        ...

    async def aclose(self) -> None:
        """Release connections and background tasks (idempotent)."""
        ...

    async def migrate(self) -> int:
        """Create or upgrade the schema to the current version and return it.

        Idempotent and safe to run from several processes at once.
        """
        ...

    async def enqueue(
        self, call: NewCall, *, now: float | None = None
    ) -> tuple[StoredCall, bool]:
        """Store ``call``; ``(stored, True)``, or ``(existing, False)`` when its
        idempotency key (or id) is already stored. Concurrent calls are written in
        batches."""
        ...

    async def enqueue_many(
        self, calls: Sequence[NewCall], *, now: float | None = None
    ) -> list[tuple[StoredCall, bool]]:
        """:meth:`enqueue` for several calls in one transaction; results in order."""
        ...

    async def claim(
        self, worker_id: str, *, limit: int, lease_s: float, now: float | None = None
    ) -> list[StoredCall]:
        """Take up to ``limit`` due calls, the longest due first, leased to ``worker_id``
        (the returned list is in no particular order).

        Due calls are pending ones whose ``due_at`` has come and running ones whose
        lease has expired (taken over: ``attempts`` grows by one each time). The
        returned calls are ``RUNNING`` with ``attempts`` as this run's number.
        """
        ...

    async def renew(
        self, leases: Sequence[Lease], *, lease_s: float, now: float | None = None
    ) -> Renewal:
        """Extend the leases still held to ``now + lease_s``."""
        ...

    async def complete(
        self, lease: Lease, result: Any, *, now: float | None = None
    ) -> Settle:
        """Record a success (``result`` JSON-able) if ``lease`` is still held.
        Concurrent calls are written in batches."""
        ...

    async def complete_many(
        self, outcomes: Sequence[tuple[Lease, Any]], *, now: float | None = None
    ) -> list[Settle]:
        """:meth:`complete` for several calls in one statement; results in order."""
        ...

    async def fail(
        self,
        lease: Lease,
        error: str,
        *,
        retry_at: float | None,
        now: float | None = None,
    ) -> Settle:
        """Record a failed attempt if ``lease`` is still held: pending again at
        ``retry_at``, or dead when ``retry_at`` is None (cancelled if cancel was
        requested)."""
        ...

    async def get(self, call_id: str) -> StoredCall | None:
        """The call with that id, or None."""
        ...

    async def get_by_key(self, idempotency_key: str) -> StoredCall | None:
        """The call with that idempotency key, or None."""
        ...

    async def list_calls(
        self,
        *,
        state: CallState | None = None,
        service: str | None = None,
        user_id: str | None = None,
        limit: int = 100,
        before: str | None = None,
    ) -> list[StoredCall]:
        """A page of calls matching every filter given, newest first.

        For the next page pass the last call's id as ``before``.
        """
        ...

    async def retry(self, call_id: str, *, now: float | None = None) -> StoredCall:
        """Run a dead or cancelled call again: pending, due now, attempts from zero.

        Raises :class:`~genapi.errors.CallNotFound` or
        :class:`~genapi.errors.StateConflict` (pending, running, succeeded).
        """
        ...

    async def cancel(self, call_id: str, *, now: float | None = None) -> StoredCall:
        """Cancel a pending call (at once) or a running one (flagged; see the module
        docstring). Cancelling a cancelled call changes nothing.

        Raises :class:`~genapi.errors.CallNotFound` or
        :class:`~genapi.errors.StateConflict` (succeeded, dead).
        """
        ...

    async def purge(self, *, finished_before: float) -> int:
        """Delete terminal calls finished before that time (delivered or not); return
        how many."""
        ...

    async def counts(self, *, now: float | None = None) -> Counts:
        """Calls by state and the age of the oldest due call."""
        ...

    async def undelivered(self, user_id: str, *, limit: int = 100) -> list[StoredCall]:
        """Finished calls of ``user_id`` whose terminal response was not delivered yet,
        oldest first."""
        ...

    async def unfinished(self, user_id: str, *, limit: int = 100) -> list[StoredCall]:
        """The pending and running calls of ``user_id``, newest first."""
        ...

    async def undelivered_for(
        self, user_ids: Sequence[str], *, limit: int = 100
    ) -> list[StoredCall]:
        """:meth:`undelivered` for several users in one query (a gateway sweeping for the
        users connected to it), oldest first."""
        ...

    async def mark_delivered(self, ids: Sequence[str], *, now: float | None = None) -> int:
        """Note that these finished calls reached their caller; return how many changed."""
        ...

    async def wait_for_work(self, timeout: float) -> bool:
        """Wait until new work may be due (a call enqueued or retried, here or in another
        process) or ``timeout`` seconds pass; True when woken.

        Wake-ups are hints: a worker must still ``claim`` and may find nothing, and
        calls that become due later (backoff) wake nobody, so workers also poll.
        """
        ...
