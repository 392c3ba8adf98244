"""Fixtures for the rate-limiter tests: a fake clock, one store per backend, a redis-server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from rl_helpers import FakeClock

from genapi.ratelimit import MemoryStore, RateLimitStore, RedisStore


@pytest.fixture
def clock() -> FakeClock:
    """A clock at 1,000,000 ms that moves only on ``advance``."""
    return FakeClock()


@pytest.fixture
async def make_redis_store(redis_url: str) -> AsyncIterator[Callable[..., RedisStore]]:
    """Build RedisStores on the session's server (closed after the test).

    Stores made in one test share a fresh key prefix, as gateways of one cluster would.
    """
    prefix = f"test:{uuid.uuid4().hex}:"
    made: list[RedisStore] = []

    def make(url: str = redis_url, **options: Any) -> RedisStore:
        options.setdefault("prefix", prefix)
        made.append(RedisStore(url, **options))
        return made[-1]

    yield make
    for one in made:
        await one.aclose()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
async def store(request: pytest.FixtureRequest, clock: FakeClock) -> AsyncIterator[RateLimitStore]:
    """Each backend in turn, both on the fake clock."""
    made: RateLimitStore
    if request.param == "memory":
        made = MemoryStore(clock=clock)
    else:
        url = request.getfixturevalue("redis_url")
        made = RedisStore(url, prefix=f"test:{uuid.uuid4().hex}:", clock=clock)
    yield made
    await made.aclose()
