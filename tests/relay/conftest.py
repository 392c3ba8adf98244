"""Relay test fixtures."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.relay.backends import Backend, Clock


@pytest.fixture(params=["direct", "asgi"])
def driver(request: pytest.FixtureRequest) -> str:
    """Both ways the gateway moves bytes: genapi's protocol and plain ASGI messages."""
    return str(request.param)


@pytest.fixture
def clock() -> Clock:
    """A wall clock the test moves."""
    return Clock()


@pytest.fixture(params=["memory", "nats"])
async def backend(request: pytest.FixtureRequest, clock: Clock) -> AsyncIterator[Backend]:
    """Each relay backend in turn: in-process, and NATS with a real nats-server."""
    url = request.getfixturevalue("nats_url") if request.param == "nats" else None
    made = Backend(str(request.param), url, clock)
    try:
        yield made
    finally:
        await made.aclose()
