"""The lifecycle of a durable call: its states and who may move it where.

::

                 claim                      complete
    PENDING ───────────────▶ RUNNING ─────────────────▶ SUCCEEDED
      ▲  ▲   ◀── fail(retry_at) ─┘ │ │
      │  │   ◀── lease expired ────┘ │ fail(None), or lease expired on the last attempt
      │  │       (claimed again)     ▼
      │  └──────── retry ─────────  DEAD
      │                             CANCELLED ◀── cancel (pending; running: at its end)
      └──────────── retry ──────────┘

A call *failed and waiting to be retried* is ``PENDING`` with ``attempts > 0`` (see
:attr:`~genapi.durable.StoredCall.retrying`). ``SUCCEEDED``, ``DEAD`` and ``CANCELLED``
are *terminal*: a call reaches exactly one of them once (until an operator retries it),
and only terminal calls are delivered and purged.

The worker moves (claim, complete, fail, lease expiry) are single SQL statements in each
backend whose ``WHERE`` clauses encode the arrows above. The operator moves (retry,
cancel) go through :func:`operator_transition`, the one owner of those decisions.
"""

from __future__ import annotations

import enum

__all__ = ["TERMINAL", "CallState", "OperatorAction", "operator_transition"]


class CallState(enum.StrEnum):
    """Where a durable call is in its lifecycle (the value is what the database stores)."""

    PENDING = "pending"  # waiting until due (new, or failed and waiting to be retried)
    RUNNING = "running"  # claimed by a worker holding a lease
    SUCCEEDED = "succeeded"  # result recorded
    DEAD = "dead"  # failed on its last attempt; kept for inspection and manual retry
    CANCELLED = "cancelled"  # cancelled by an operator or the caller before it finished

    @property
    def terminal(self) -> bool:
        """True for the states a call ends in."""
        return self in TERMINAL


#: The states a call ends in; only these are delivered to the caller and purged.
TERMINAL = frozenset({CallState.SUCCEEDED, CallState.DEAD, CallState.CANCELLED})


class OperatorAction(enum.StrEnum):
    """What an operator (or the caller, for cancel) may ask of a stored call."""

    RETRY = "retry"
    CANCEL = "cancel"


class Move(enum.Enum):
    """What the store does for an operator action, decided by :func:`operator_transition`."""

    TO_PENDING = "to_pending"  # due now, attempts reset, result and error cleared
    TO_CANCELLED = "to_cancelled"  # terminal at once
    REQUEST_CANCEL = "request_cancel"  # running: flag it; it ends CANCELLED unless it succeeds
    NOTHING = "nothing"  # already where the action leads (cancelling a cancelled call)


_TABLE: dict[tuple[OperatorAction, CallState], Move] = {
    (OperatorAction.RETRY, CallState.DEAD): Move.TO_PENDING,
    (OperatorAction.RETRY, CallState.CANCELLED): Move.TO_PENDING,
    (OperatorAction.CANCEL, CallState.PENDING): Move.TO_CANCELLED,
    (OperatorAction.CANCEL, CallState.RUNNING): Move.REQUEST_CANCEL,
    (OperatorAction.CANCEL, CallState.CANCELLED): Move.NOTHING,
}


def operator_transition(action: OperatorAction, state: CallState) -> Move | None:
    """The move ``action`` makes from ``state``, or None when the state forbids it.

    Retrying a pending, running or succeeded call is refused (it would run a second time
    for nothing, or twice at once); so is cancelling a finished one.
    """
    return _TABLE.get((action, state))
