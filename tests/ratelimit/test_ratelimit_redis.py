"""The Redis store against a real redis-server: shared state, server time, failures."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest
import redis.asyncio
from rl_helpers import check, count_passing, passes, req
from tests.support.servers import free_port

from genapi.errors import RateLimited, RateLimiterUnavailable
from genapi.ratelimit import BucketCheck, RateLimit, RateLimitConfig, RateLimiter, RedisStore

pytestmark = pytest.mark.integration

MakeStore = Callable[..., RedisStore]


def gateway(store: RedisStore, *limits: RateLimit, fail_open: bool = True) -> RateLimiter:
    config = RateLimitConfig(global_limits=limits, fail_open=fail_open)
    return RateLimiter(config, store=store)


async def test_two_gateways_share_one_budget(make_redis_store: MakeStore) -> None:
    """Two limiters on one Redis admit exactly 100 of 150 interleaved calls."""
    limit = RateLimit("user_id", 100, 60_000)
    a = gateway(make_redis_store(), limit)
    b = gateway(make_redis_store(), limit)
    results = await asyncio.gather(
        *(passes(a if n % 2 else b, req(request_id=f"r{n}")) for n in range(150))
    )
    assert results.count(True) == 100


async def test_server_time_window_expires(make_redis_store: MakeStore) -> None:
    """Without a client clock the server's time drives the window."""
    limiter = gateway(make_redis_store(), RateLimit("user_id", 2, 150))
    assert await count_passing(limiter, req(), 3) == 2
    await asyncio.sleep(0.2)
    assert await count_passing(limiter, req(), 3) == 2


async def test_buckets_are_sorted_sets_with_a_ttl(
    make_redis_store: MakeStore, redis_url: str
) -> None:
    """Each bucket is a sorted set under the prefix that expires with its window."""
    store = make_redis_store()
    limiter = gateway(store, RateLimit("user_id", 5, 30_000))
    await check(limiter, req())
    await check(limiter, req())
    raw = redis.asyncio.Redis.from_url(redis_url)
    try:
        key = f"{store.prefix}g:user_id:30000:alice"
        assert await raw.zcard(key) == 2
        assert 0 < await raw.pttl(key) <= 30_000
    finally:
        await raw.aclose()


async def test_script_is_reloaded_after_a_flush(
    make_redis_store: MakeStore, redis_url: str
) -> None:
    """A server that lost its scripts (restart, SCRIPT FLUSH) gets them sent again."""
    limiter = gateway(make_redis_store(), RateLimit("user_id", 3, 60_000))
    assert await passes(limiter, req())
    raw = redis.asyncio.Redis.from_url(redis_url)
    try:
        await raw.script_flush()
    finally:
        await raw.aclose()
    assert await count_passing(limiter, req(), 3) == 2
    [status] = await limiter.status("alice")
    assert status.current_requests == 3


async def test_rejection_details_from_redis(make_redis_store: MakeStore) -> None:
    """Rejections computed by the Lua script carry the same details as the memory store's."""
    limiter = gateway(make_redis_store(), RateLimit("device_id", 1, 60_000))
    await check(limiter, req(None, device_id="d1"))
    with pytest.raises(RateLimited) as info:
        await check(limiter, req(None, device_id="d1"))
    assert 59_000 < info.value.retry_after_ms <= 60_000
    assert info.value.details["key"] == "device_id"
    assert info.value.details["current_requests"] == 1


@pytest.fixture
def closed_url() -> str:
    """A loopback port nothing listens on."""
    return f"redis://127.0.0.1:{free_port()}/0"


async def test_unreachable_redis_fails_open(
    make_redis_store: MakeStore, closed_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """fail_open lets requests through when Redis cannot be reached, and logs it."""
    limiter = gateway(make_redis_store(closed_url), RateLimit("user_id", 1, 60_000))
    with caplog.at_level(logging.WARNING, logger="genapi.ratelimit"):
        assert await count_passing(limiter, req(), 3) == 3
    assert "rate-limit backend failed" in caplog.text


async def test_unreachable_redis_fails_closed(
    make_redis_store: MakeStore, closed_url: str
) -> None:
    """fail_open off answers Rate limit service unavailable when Redis is down."""
    limiter = gateway(
        make_redis_store(closed_url), RateLimit("user_id", 1, 60_000), fail_open=False
    )
    with pytest.raises(RateLimiterUnavailable):
        await check(limiter, req())


async def test_store_errors_are_ours(make_redis_store: MakeStore, closed_url: str) -> None:
    """The store raises RateLimiterUnavailable, never a redis exception."""
    store = make_redis_store(closed_url)
    checks = [BucketCheck("b", 1, 1_000)]
    with pytest.raises(RateLimiterUnavailable) as info:
        await store.acquire(checks)
    assert info.value.__cause__ is not None
    with pytest.raises(RateLimiterUnavailable):
        await store.usage(checks)
    with pytest.raises(RateLimiterUnavailable):
        await store.reset(checks)


async def test_empty_check_lists_need_no_server(
    make_redis_store: MakeStore, closed_url: str
) -> None:
    """Nothing to check means nothing to send."""
    store = make_redis_store(closed_url)
    assert await store.acquire([]) is None
    assert await store.usage([]) == []
    await store.reset([])
