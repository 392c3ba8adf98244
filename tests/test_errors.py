"""Wire messages back to typed errors (what clients use)."""

from __future__ import annotations

import pytest

from genapi import (
    ApiError,
    ArgumentError,
    AuthenticationFailed,
    AuthenticationRequired,
    CallTimeout,
    FunctionNotFound,
    error_from_wire,
)


@pytest.mark.parametrize(("message", "kind"), [
    ("Unknown service: x (known: a, b)", FunctionNotFound),
    ("Unknown function y in service x (did you mean z?)", FunctionNotFound),
    ("Unknown function y version 2.0 in service x (known versions: 1.0)", FunctionNotFound),
    ("unsupported function: y version latest", FunctionNotFound),
    ("Unknown argument: city", ArgumentError),
    ("Invalid argument user.age: expected int, got float", ArgumentError),
    ("Authentication failed: token expired", AuthenticationFailed),
    ("Authentication required", AuthenticationRequired),
    ("Request timed out after 5000ms", CallTimeout),
    ("User not found", ApiError),
])
def test_messages_map_to_their_error(message: str, kind: type[ApiError]) -> None:
    """Each wire message becomes its typed error, message and details kept."""
    error = error_from_wire(message, details={"errors": []})
    assert type(error) is kind
    assert error.message == message
    assert error.details == {"errors": []}


def test_fields_are_rebuilt_from_the_message() -> None:
    """Errors with fields of their own get them back from the wire message."""
    failed = error_from_wire("Authentication failed: token expired")
    assert isinstance(failed, AuthenticationFailed) and failed.reason == "token expired"
    assert isinstance(failed, AuthenticationRequired)  # callers catching the parent see it
    timeout = error_from_wire("Request timed out after 250ms")
    assert isinstance(timeout, CallTimeout) and timeout.timeout_ms == 250
