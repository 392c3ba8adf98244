"""The values a durable store takes and gives: calls to store, stored calls, outcomes.

All are frozen msgspec Structs or enums; times are Unix time in seconds (``float``), the
same in both backends, so a value read from SQLite equals one read from Postgres.
"""

from __future__ import annotations

import enum
import os
import random
import time
from typing import Any, NamedTuple

import msgspec

from .backoff import Backoff
from .states import CallState

__all__ = [
    "Counts",
    "Lease",
    "NewCall",
    "Renewal",
    "Settle",
    "StoredCall",
    "default_idempotency_key",
    "new_call_id",
]


_last_ns = 0
# Ids need to be unique, not secret: a seeded generator costs no system call per id.
_random = random.Random(os.urandom(16))


def new_call_id() -> str:
    """A fresh call id: 16 hex digits of the time in nanoseconds, then 16 random ones.

    Ids sort by creation time: strictly within a process (the time part never repeats or
    goes back), to the clocks' agreement across processes. So listing calls by id lists
    them oldest first and keyset pagination by id is stable.
    """
    global _last_ns
    _last_ns = max(time.time_ns(), _last_ns + 1)
    return f"{_last_ns:016x}{_random.getrandbits(64):016x}"


def default_idempotency_key(user_id: str | None, request_id: str) -> str:
    """The key the gateway uses when the client gives none: the caller and its request id.

    Anonymous callers share the ``"-"`` user, so their request ids must be unique by
    themselves (the gateway should prefer a client-given key or the device id there).
    """
    return f"{user_id or '-'}:{request_id}"


class NewCall(msgspec.Struct, frozen=True, kw_only=True):
    """A durable call to store, before it is acknowledged to the caller.

    ``args`` and every later ``result`` must be JSON-able (they are stored as JSON).
    ``idempotency_key``: calls with the same key are the same call; enqueueing it again
    returns the stored one (whatever its state) and never stores or runs a second one.
    ``None`` means no deduplication. ``max_attempts`` counts every run, the first
    included. ``run_after`` delays the first run (Unix seconds); ``None`` means now.
    """

    id: str
    service: str
    request_type: str
    request_id: str
    args: dict[str, Any] = msgspec.field(default_factory=dict)
    version: str | None = None
    user_id: str | None = None
    user_roles: tuple[str, ...] = ()
    device_id: str | None = None
    idempotency_key: str | None = None
    max_attempts: int = 5
    backoff: Backoff = Backoff()
    run_after: float | None = None

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1 (got {self.max_attempts})")


class StoredCall(msgspec.Struct, frozen=True, kw_only=True):
    """A durable call as the store holds it.

    ``attempts`` counts the runs started so far (the current one included while
    ``RUNNING``): the function sees it as its attempt number. ``due_at`` is when the call
    next needs a worker: its run time while ``PENDING``, its lease expiry while
    ``RUNNING`` (then equal to ``lease_expires_at``). ``lease_owner`` is the worker that
    claimed it last. ``result`` is set when ``SUCCEEDED``; ``last_error`` keeps the
    latest failure. ``finished_at`` is set in a terminal state, ``delivered_at`` once the
    terminal response reached the caller. ``cancel_requested``: an operator cancelled it
    while running; it ends ``CANCELLED`` unless it succeeds first.
    """

    id: str
    service: str
    request_type: str
    request_id: str
    args: dict[str, Any]
    version: str | None
    user_id: str | None
    user_roles: tuple[str, ...]
    device_id: str | None
    idempotency_key: str | None
    max_attempts: int
    backoff: Backoff
    state: CallState
    attempts: int
    due_at: float
    lease_owner: str | None
    lease_expires_at: float | None
    cancel_requested: bool
    last_error: str | None
    result: Any
    created_at: float
    updated_at: float
    started_at: float | None
    finished_at: float | None
    delivered_at: float | None

    @property
    def lease(self) -> Lease:
        """The lease of this claim: what the worker passes back to settle or renew it."""
        return Lease(self.id, self.lease_owner or "", self.attempts)

    @property
    def retrying(self) -> bool:
        """True when the call failed at least once and waits for its next attempt."""
        return self.state is CallState.PENDING and self.attempts > 0


class Lease(NamedTuple):
    """A worker's hold on one claimed call: the proof it shows to complete, fail or renew.

    ``attempt`` fences stale holders: if the lease expired and the call was claimed again
    (even by the same worker id), the old attempt's lease no longer matches, so its late
    completion is refused instead of overwriting the new attempt's.
    """

    call_id: str
    worker_id: str
    attempt: int


class Settle(enum.StrEnum):
    """What became of a worker's ``complete`` or ``fail`` of one call."""

    RECORDED = "recorded"  # the worker held the lease; the outcome is stored
    NOT_OWNER = "not_owner"  # another worker holds the call now, or it is no longer
    #                          running (cancelled, finished): nothing was written
    NOT_FOUND = "not_found"  # no such call (purged?)


class Renewal(msgspec.Struct, frozen=True):
    """The result of renewing leases: which are still held, which should stop.

    A call missing from ``held`` was taken over (its lease had expired) or finished: the
    worker should abandon it, as its completion would be refused anyway.
    ``cancel_requested`` lists held calls an operator cancelled: stop and ``fail`` them.
    """

    held: frozenset[str]
    cancel_requested: frozenset[str]


class Counts(msgspec.Struct, frozen=True, kw_only=True):
    """A snapshot of the queue for dashboards and metrics.

    ``by_state`` has every state (zero when none). ``retrying`` is how many pending calls
    failed before. ``oldest_due_age_s`` is how long the longest-waiting due pending call
    has been due (``None`` when none is due): the queue's lag.
    """

    by_state: dict[CallState, int]
    retrying: int
    oldest_due_age_s: float | None
