"""The lifecycle table: which operator actions each state allows."""

from __future__ import annotations

import pytest

from genapi.durable import TERMINAL, CallState
from genapi.durable.states import Move, OperatorAction, operator_transition


@pytest.mark.parametrize(
    ("action", "state", "move"),
    [
        (OperatorAction.RETRY, CallState.DEAD, Move.TO_PENDING),
        (OperatorAction.RETRY, CallState.CANCELLED, Move.TO_PENDING),
        (OperatorAction.RETRY, CallState.PENDING, None),
        (OperatorAction.RETRY, CallState.RUNNING, None),
        (OperatorAction.RETRY, CallState.SUCCEEDED, None),
        (OperatorAction.CANCEL, CallState.PENDING, Move.TO_CANCELLED),
        (OperatorAction.CANCEL, CallState.RUNNING, Move.REQUEST_CANCEL),
        (OperatorAction.CANCEL, CallState.CANCELLED, Move.NOTHING),
        (OperatorAction.CANCEL, CallState.SUCCEEDED, None),
        (OperatorAction.CANCEL, CallState.DEAD, None),
    ],
)
def test_operator_transitions(
    action: OperatorAction, state: CallState, move: Move | None
) -> None:
    """Each (action, state) pair has exactly the listed move, None meaning refused."""
    assert operator_transition(action, state) is move


def test_terminal_states() -> None:
    """Succeeded, dead and cancelled are terminal; pending and running are not."""
    assert {s for s in CallState if s.terminal} == TERMINAL == {
        CallState.SUCCEEDED, CallState.DEAD, CallState.CANCELLED,
    }
