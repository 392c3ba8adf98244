"""The limiter's admin side on each backend: check a value (counting it), clear every
count; both gated like the other changes."""

from __future__ import annotations

import uuid

import pytest
from rl_helpers import FakeClock, passes, req

from genapi import AdminActionDenied, AdminGate, RateLimited
from genapi.ratelimit import RateLimit, RateLimitConfig, RateLimiter, RateLimitStore, RedisStore

GLOBAL_USER = RateLimit("user_id", 2, 60_000)
GLOBAL_DEVICE = RateLimit("device_id", 3, 60_000)
API_USER = RateLimit("user_id", 1, 60_000, service="svc", request_type="fn")


def limiter(store: RateLimitStore, gate: AdminGate | None = None) -> RateLimiter:
    return RateLimiter(RateLimitConfig(global_limits=[GLOBAL_USER, GLOBAL_DEVICE],
                                       api_limits=[API_USER]), store=store, gate=gate)


async def test_check_value_counts_until_full(store: RateLimitStore) -> None:
    """Each check counts one request of the value under every limit of the scope; a full
    limit raises RateLimited and counts nothing (not even under the others)."""
    rl = limiter(store)
    first = await rl.check_value("alice")
    assert [(s.key, s.current_requests, s.remaining) for s in first] == [
        ("user_id", 1, 1), ("device_id", 1, 2)]
    await rl.check_value("alice")
    with pytest.raises(RateLimited) as raised:
        await rl.check_value("alice")
    assert raised.value.details["key"] == "user_id"
    assert raised.value.retry_after_ms > 0
    status = await rl.status("alice")
    assert [s.current_requests for s in status] == [2, 2]
    # the same buckets as requests: a request of alice is now refused too
    assert not await passes(rl, req("alice"))


async def test_check_value_by_key_and_function(store: RateLimitStore) -> None:
    """key= picks the limits on that key; a (service, request_type) scope its limits."""
    rl = limiter(store)
    [device] = await rl.check_value("d1", key="device_id")
    assert device.key == "device_id" and device.current_requests == 1
    [api] = await rl.check_value("alice", scope=("svc", "fn"))
    assert api.current_requests == 1
    with pytest.raises(RateLimited):
        await rl.check_value("alice", scope=("svc", "fn"))
    assert await rl.check_value("alice", scope=("svc", "other")) == []


async def test_clear_forgets_every_count_and_keeps_the_limits(store: RateLimitStore) -> None:
    rl = limiter(store)
    await rl.check_value("alice")
    await rl.check_value("bob")
    await rl.check_value("alice", scope=("svc", "fn"))
    cleared = await rl.clear()
    assert cleared == 5  # alice and bob under both globals, alice under the API limit
    assert [s.current_requests for s in await rl.status("alice")] == [0, 0]
    assert rl.config.global_limits == (GLOBAL_USER, GLOBAL_DEVICE)
    assert await rl.clear() == 0


@pytest.mark.integration
async def test_redis_clear_keeps_to_its_prefix(redis_url: str, clock: FakeClock) -> None:
    """Another store's keys (another prefix, glob characters in it) survive a clear."""
    mine = RedisStore(redis_url, prefix=f"test:{uuid.uuid4().hex}:[x]*", clock=clock)
    other = RedisStore(redis_url, prefix=f"test:{uuid.uuid4().hex}:", clock=clock)
    try:
        await limiter(mine).check_value("alice")
        await limiter(other).check_value("alice")
        assert await limiter(mine).clear() == 2
        assert [s.current_requests for s in await limiter(other).status("alice")] == [1, 1]
    finally:
        await mine.aclose()
        await other.aclose()


async def test_both_are_gated(store: RateLimitStore) -> None:
    """With a gate, both need update_rate_limit_config."""
    rl = limiter(store, AdminGate())
    with pytest.raises(AdminActionDenied, match="update_rate_limit_config"):
        await rl.check_value("alice")
    with pytest.raises(AdminActionDenied, match="update_rate_limit_config"):
        await rl.clear()
    allowed = limiter(store, AdminGate({"update_rate_limit_config"}))
    assert await allowed.check_value("alice")
    assert await allowed.clear() == 2
