"""The memory store: synchronous decisions, expiry of idle buckets, the bucket cap."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pytest
from rl_helpers import FakeClock, req

from genapi.errors import RateLimited
from genapi.ratelimit import (
    BucketCheck,
    MemoryStore,
    RateLimit,
    RateLimitConfig,
    RateLimiter,
    Rejection,
)
from genapi.telemetry.events import Telemetry


def limiter_on(store: MemoryStore, *limits: RateLimit) -> RateLimiter:
    return RateLimiter(RateLimitConfig(global_limits=limits), store=store)


def test_memory_checks_answer_synchronously(clock: FakeClock) -> None:
    """An allowed check returns None and a rejected one raises, with no coroutine made."""
    limiter = limiter_on(MemoryStore(clock=clock), RateLimit("user_id", 1, 1_000))
    assert limiter.check(req()) is None
    with pytest.raises(RateLimited):
        limiter.check(req())


def test_no_applicable_limit_returns_none() -> None:
    """Disabled, limitless or key-less checks return None at once."""
    assert RateLimiter().check(req()) is None
    disabled = RateLimiter(
        RateLimitConfig(global_limits=(RateLimit("user_id", 1, 10),), enabled=False)
    )
    assert [disabled.check(req()) for _ in range(3)] == [None, None, None]
    keyless = RateLimiter(RateLimitConfig(global_limits=(RateLimit("user_id", 1, 10),)))
    assert [keyless.check(req(None)) for _ in range(3)] == [None, None, None]


def test_acquire_reports_the_worst_bucket(clock: FakeClock) -> None:
    """When several buckets are full, the one with the longest wait is reported."""
    store = MemoryStore(clock=clock)
    short, long = BucketCheck("a", 1, 100), BucketCheck("b", 1, 1_000)
    assert store.acquire([short, long]) is None
    clock.advance(10)
    assert store.acquire([short, long]) == Rejection(1, 1, 990)


def test_idle_buckets_expire(clock: FakeClock) -> None:
    """After their window passes, the buckets of many distinct keys are dropped."""
    telemetry = Telemetry()
    cleanups: list[Mapping[str, Any]] = []
    telemetry.attach("t", "rate_limiter.cleanup", lambda e, m, md: cleanups.append(m))
    store = MemoryStore(clock=clock, sweep_interval_ms=500, telemetry=telemetry)
    limiter = limiter_on(store, RateLimit("user_id", 5, 1_000))
    for n in range(1_000):
        limiter.check(req(f"user-{n}"))
    assert store.bucket_count == 1_000
    clock.advance(1_000)
    limiter.check(req("late"))
    assert store.bucket_count == 1
    assert cleanups[-1]["cleaned_entries"] == 1_000


def test_sweep_keeps_recently_hit_buckets(clock: FakeClock) -> None:
    """A sweep removes only buckets with nothing left in their window."""
    store = MemoryStore(clock=clock)
    assert store.acquire([BucketCheck("a", 5, 1_000)]) is None
    clock.advance(500)
    assert store.acquire([BucketCheck("b", 5, 1_000)]) is None
    clock.advance(100)
    assert store.acquire([BucketCheck("a", 5, 1_000), BucketCheck("c", 5, 60_000)]) is None
    clock.advance(950)
    assert store.sweep() == 1  # b (hit 1,050 ms ago) went; a (hit 950 ms ago) stays
    clock.advance(100)
    assert store.sweep() == 1  # now a as well; c, on a one-minute window, stays
    assert store.bucket_count == 1


def test_bucket_cap_evicts_least_recently_hit(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Past max_buckets the least recently hit bucket goes, and evictions are logged."""
    store = MemoryStore(clock=clock, max_buckets=10)
    limiter = limiter_on(store, RateLimit("user_id", 1, 60_000))
    for n in range(20):
        limiter.check(req(f"user-{n}"))
        clock.advance(1)
    assert store.bucket_count == 10
    with pytest.raises(RateLimited):
        limiter.check(req("user-19"))  # recent: still counted
    assert limiter.check(req("user-0")) is None  # evicted: counted afresh
    with caplog.at_level(logging.WARNING, logger="genapi.ratelimit"):
        store.sweep()
        store.sweep()
    assert len(caplog.records) == 1
    assert "evicted 11 live buckets" in caplog.text


def test_bucket_made_while_at_the_cap_is_still_counted(clock: FakeClock) -> None:
    """Making room may drop a whole window group; the new bucket still lands in the store."""
    store = MemoryStore(clock=clock, max_buckets=1)
    assert store.acquire([BucketCheck("a", 1, 100)]) is None
    clock.advance(200)
    assert store.acquire([BucketCheck("b", 1, 100)]) is None
    assert store.acquire([BucketCheck("b", 1, 100)]) == Rejection(0, 1, 100)
    assert store.bucket_count == 1


async def test_usage_and_reset_touch_only_their_buckets(clock: FakeClock) -> None:
    """usage counts without recording; reset forgets the named buckets only."""
    store = MemoryStore(clock=clock)
    checks = [BucketCheck("a", 5, 1_000), BucketCheck("b", 5, 1_000)]
    store.acquire(checks)
    store.acquire(checks[:1])
    assert await store.usage(checks) == [2, 1]
    assert await store.usage(checks) == [2, 1]
    await store.reset(checks[:1])
    assert await store.usage(checks) == [0, 1]
    assert store.bucket_count == 1


@pytest.mark.parametrize("options", [{"max_buckets": 0}, {"sweep_interval_ms": 0}])
def test_memory_store_options_must_be_positive(options: dict[str, int]) -> None:
    """A zero cap or sweep interval is refused."""
    with pytest.raises(ValueError, match="positive"):
        MemoryStore(**options)
