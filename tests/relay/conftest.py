"""Relay test fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["direct", "asgi"])
def driver(request: pytest.FixtureRequest) -> str:
    """Both ways the gateway moves bytes: genapi's protocol and plain ASGI messages."""
    return str(request.param)
