"""Decisions both SQL backends make the same way once their statements have run.

Plain functions over values (no I/O), so the backends differ only in how they talk to
their database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from genapi.errors import CallNotFound, ConfigError, StateConflict, StoreUnavailable

from .calls import Counts, NewCall, Settle, StoredCall
from .rows import stored_from_new
from .states import CallState, Move, OperatorAction, operator_transition

__all__ = ["check_claim", "counts", "decide", "enqueue_results", "runnable", "settles"]


def check_claim(limit: int, lease_s: float) -> None:
    """Refuse a claim that could take nothing or hold nothing."""
    if limit < 1:
        raise ConfigError(f"claim limit must be at least 1 (got {limit})")
    if not lease_s > 0:
        raise ConfigError(f"lease_s must be positive (got {lease_s})")


def enqueue_results(
    calls: Sequence[NewCall],
    inserted: Mapping[str, tuple[float, float]],
    existing: Mapping[str, StoredCall],
) -> list[tuple[StoredCall, bool]]:
    """Pair each call with its stored form: ``inserted`` maps new ids to their
    ``(created_at, due_at)``; ``existing`` maps ``"key:<key>"`` and ``"id:<id>"`` to
    calls that were already stored.

    A call that was neither inserted nor found lost a race with a purge of its
    duplicate; that is reported as :class:`StoreUnavailable` (enqueue again).
    """
    results: list[tuple[StoredCall, bool]] = []
    for call in calls:
        times = inserted.get(call.id)
        if times is not None:
            results.append((stored_from_new(call, created_at=times[0], due_at=times[1]), True))
            continue
        found = None
        if call.idempotency_key is not None:
            found = existing.get(f"key:{call.idempotency_key}")
        if found is None:
            found = existing.get(f"id:{call.id}")
        if found is None:
            raise StoreUnavailable(
                f"durable call {call.id!r} was neither stored nor found; enqueue it again"
            )
        results.append((found, False))
    return results


def runnable(claimed: Sequence[StoredCall],
             ended: Callable[[list[StoredCall]], None] | None = None) -> list[StoredCall]:
    """The claimed calls a worker should run: ``claim`` also ends, and returns,
    cancel-requested and last-attempt calls whose lease expired; those go to ``ended``
    (no worker runs them, so nobody else would report their end)."""
    run = [call for call in claimed if call.state is CallState.RUNNING]
    if ended is not None and len(run) < len(claimed):
        ended([call for call in claimed if call.state is not CallState.RUNNING])
    return run


def settles(ids: Sequence[str], recorded: set[str], present: set[str]) -> list[Settle]:
    """The outcome of settling each id: recorded, held by someone else, or gone."""
    return [
        Settle.RECORDED if i in recorded
        else Settle.NOT_OWNER if i in present
        else Settle.NOT_FOUND
        for i in ids
    ]


def counts(
    by_state: Sequence[tuple[str, int, int]], oldest_due_age_s: float | None
) -> Counts:
    """A :class:`Counts` from ``(state, count, count with attempts > 0)`` rows."""
    totals = dict.fromkeys(CallState, 0)
    retrying = 0
    for state, number, failed_before in by_state:
        totals[CallState(state)] = int(number)
        if state == CallState.PENDING:
            retrying = int(failed_before)
    age = None if oldest_due_age_s is None else max(0.0, float(oldest_due_age_s))
    return Counts(by_state=totals, retrying=retrying, oldest_due_age_s=age)


def decide(action: OperatorAction, call_id: str, current: StoredCall | None) -> Move:
    """The move for an operator action on a call read under lock, or the error."""
    if current is None:
        raise CallNotFound(call_id)
    move = operator_transition(action, current.state)
    if move is None:
        raise StateConflict(call_id, current.state, str(action))
    return move
