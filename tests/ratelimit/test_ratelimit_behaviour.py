"""The limiter's behaviour, run once per backend (memory and Redis, both on a fake clock)."""

from __future__ import annotations

import asyncio

import pytest
from rl_helpers import FakeClock, check, count_passing, passes, req

from genapi.errors import RateLimited
from genapi.ratelimit import (
    GLOBAL,
    LimitStatus,
    RateLimit,
    RateLimitConfig,
    RateLimiter,
    RateLimitStore,
)


def make(
    store: RateLimitStore,
    global_limits: tuple[RateLimit, ...] = (),
    api_limits: tuple[RateLimit, ...] = (),
) -> RateLimiter:
    config = RateLimitConfig(global_limits=global_limits, api_limits=api_limits)
    return RateLimiter(config, store=store)


def api(key: str, max_requests: int, window_ms: int, request_type: str = "fast") -> RateLimit:
    return RateLimit(key, max_requests, window_ms, service="svc", request_type=request_type)  # type: ignore[arg-type]


async def test_limit_of_five_admits_five_then_rejects(store: RateLimitStore) -> None:
    """Five requests pass, the sixth is rejected with details and a positive retry time."""
    limiter = make(store, (RateLimit("user_id", 5, 10_000),))
    assert await count_passing(limiter, req(), 5) == 5
    with pytest.raises(RateLimited) as info:
        await check(limiter, req())
    error = info.value
    assert error.retry_after_ms > 0
    assert error.can_retry is True
    assert error.message == "Rate limit exceeded. Please retry after 10 seconds."
    assert error.details == {
        "retry_after_ms": 10_000,
        "key": "user_id",
        "scope": GLOBAL,
        "max_requests": 5,
        "current_requests": 5,
        "window_ms": 10_000,
    }


async def test_window_slides_with_exact_retry_time(
    store: RateLimitStore, clock: FakeClock
) -> None:
    """A slot frees exactly when the oldest counted request leaves the window."""
    limiter = make(store, (RateLimit("user_id", 3, 10_000),))
    for _ in range(3):
        assert await passes(limiter, req())
        clock.advance(1)
    with pytest.raises(RateLimited) as info:
        await check(limiter, req())
    assert info.value.retry_after_ms == 9_997
    clock.advance(9_996)
    assert not await passes(limiter, req())
    clock.advance(1)
    assert await passes(limiter, req())
    assert not await passes(limiter, req())


@pytest.mark.parametrize("user_id", [None, ""])
async def test_missing_key_value_is_not_limited(store: RateLimitStore, user_id: str | None) -> None:
    """A request without the limit's key value is never counted."""
    limiter = make(store, (RateLimit("user_id", 1, 10_000),))
    assert await count_passing(limiter, req(user_id), 20) == 20


async def test_api_limit_applies_only_to_its_function(store: RateLimitStore) -> None:
    """An API limit counts only its own service and request type."""
    limiter = make(store, api_limits=(api("user_id", 2, 10_000),))
    assert await count_passing(limiter, req(request_type="fast"), 3) == 2
    assert await count_passing(limiter, req(request_type="slow"), 10) == 10
    assert await count_passing(limiter, req(service="other", request_type="fast"), 10) == 10


async def test_api_limit_rejects_before_global(store: RateLimitStore) -> None:
    """With global 10 and API 3, the fourth call fails on the API limit's scope."""
    limiter = make(store, (RateLimit("user_id", 10, 10_000),), (api("user_id", 3, 10_000),))
    assert await count_passing(limiter, req(request_type="fast"), 3) == 3
    with pytest.raises(RateLimited) as info:
        await check(limiter, req(request_type="fast"))
    assert info.value.details["scope"] == ("svc", "fast")
    assert info.value.details["max_requests"] == 3


async def test_rejected_request_spends_no_budget(store: RateLimitStore) -> None:
    """Requests rejected by the API limit do not use up the global limit checked before it."""
    limiter = make(store, (RateLimit("user_id", 5, 10_000),), (api("user_id", 2, 10_000),))
    assert await count_passing(limiter, req(request_type="fast"), 10) == 2
    [status] = await limiter.status("alice")
    assert status.current_requests == 2
    assert await count_passing(limiter, req(request_type="other"), 10) == 3


async def test_key_types_never_share_a_bucket(store: RateLimitStore) -> None:
    """user_id "x" and device_id "x" are counted apart."""
    limiter = make(store, (RateLimit("user_id", 2, 10_000), RateLimit("device_id", 2, 10_000)))
    assert await count_passing(limiter, req("x"), 3) == 2
    assert await count_passing(limiter, req(None, device_id="x"), 3) == 2


async def test_two_windows_of_one_key_count_apart(
    store: RateLimitStore, clock: FakeClock
) -> None:
    """A per-10 s and a per-minute limit on user_id each keep their own log."""
    limiter = make(store, (RateLimit("user_id", 2, 10_000), RateLimit("user_id", 3, 60_000)))
    assert await count_passing(limiter, req(), 3) == 2
    clock.advance(10_000)
    assert await passes(limiter, req())
    clock.advance(10_000)
    with pytest.raises(RateLimited) as info:
        await check(limiter, req())
    assert info.value.details["window_ms"] == 60_000
    assert info.value.retry_after_ms == 40_000


async def test_reset_readmits_a_key(store: RateLimitStore) -> None:
    """Resetting a value's buckets lets it through again; other values keep their count."""
    limiter = make(store, (RateLimit("user_id", 2, 10_000),), (api("user_id", 1, 10_000),))
    assert await count_passing(limiter, req("alice", request_type="fast"), 2) == 1
    assert await count_passing(limiter, req("bob"), 3) == 2
    await limiter.reset("alice", scope=("svc", "fast"), key="user_id")
    assert await passes(limiter, req("alice", request_type="fast"))
    await limiter.reset("bob")
    assert await count_passing(limiter, req("bob"), 3) == 2


async def test_status_reports_each_applicable_limit(store: RateLimitStore) -> None:
    """Status lists current, max, remaining and window per limit of the scope."""
    limiter = make(store, (RateLimit("user_id", 10, 10_000), RateLimit("device_id", 4, 5_000)))
    assert await count_passing(limiter, req(), 3) == 3
    assert await limiter.status("alice", key="user_id") == [
        LimitStatus(
            key="user_id", scope=GLOBAL, max_requests=10, current_requests=3, remaining=7,
            window_ms=10_000,
        )
    ]
    statuses = await limiter.status("alice")
    assert [(s.key, s.current_requests, s.remaining) for s in statuses] == [
        ("user_id", 3, 7),
        ("device_id", 0, 4),
    ]


async def test_update_config_replaces_the_limits(store: RateLimitStore) -> None:
    """update_config swaps the given lists; empty lists let everything through."""
    limiter = make(store, (RateLimit("user_id", 2, 10_000),))
    limiter.update_config(
        global_limits=[RateLimit("user_id", 20, 30_000)], api_limits=[api("user_id", 4, 10_000)]
    )
    assert limiter.config.global_limits == (RateLimit("user_id", 20, 30_000),)
    assert await count_passing(limiter, req(request_type="fast"), 5) == 4
    assert await count_passing(limiter, req(request_type="other"), 20) == 16
    limiter.update_config(global_limits=[], api_limits=[])
    assert await count_passing(limiter, req(request_type="fast"), 100) == 100


async def test_concurrent_checks_never_overshoot(store: RateLimitStore) -> None:
    """100 concurrent checks against a limit of 50 admit exactly 50."""
    limiter = make(store, (RateLimit("user_id", 50, 60_000),))
    results = await asyncio.gather(*(passes(limiter, req()) for _ in range(100)))
    assert results.count(True) == 50
