"""The facade: admin gate, runtime config, telemetry, and backend failures."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from rl_helpers import FakeClock, check, count_passing, passes, req

from genapi import Executor, Registry, Service
from genapi.errors import ConfigError, RateLimiterUnavailable
from genapi.ratelimit import (
    GLOBAL,
    BucketCheck,
    MemoryStore,
    RateLimit,
    RateLimitConfig,
    RateLimiter,
    Rejection,
)
from genapi.security import AdminActionDenied, AdminGate
from genapi.telemetry.events import Telemetry, list_events

USER_5 = RateLimit("user_id", 5, 10_000)
FAST_2 = RateLimit("user_id", 2, 10_000, service="svc", request_type="fast")


class RaisingStore:
    """A backend that fails every call, the way a lost connection would."""

    def __init__(self, synchronously: bool = False) -> None:
        self.synchronously = synchronously

    def acquire(self, checks: Sequence[BucketCheck]) -> Any:
        if self.synchronously:
            raise ConnectionResetError("backend gone")
        return self._fail()

    async def _fail(self) -> Rejection | None:
        raise ConnectionResetError("backend gone")

    async def usage(self, checks: Sequence[BucketCheck]) -> list[int]:
        raise ConnectionResetError("backend gone")

    async def reset(self, checks: Sequence[BucketCheck]) -> None:
        raise ConnectionResetError("backend gone")

    async def aclose(self) -> None:
        return None


class HangingStore(RaisingStore):
    """A backend that never answers."""

    async def _fail(self) -> Rejection | None:
        await asyncio.Event().wait()
        return None


def limiter_with(store: Any, *, fail_open: bool, timeout_ms: int = 1_000) -> RateLimiter:
    config = RateLimitConfig(global_limits=(USER_5,), fail_open=fail_open)
    return RateLimiter(config, store=store, timeout_ms=timeout_ms)


@pytest.fixture
def telemetry() -> Telemetry:
    return Telemetry()


@pytest.fixture
def events(telemetry: Telemetry) -> list[tuple[str, Mapping[str, Any], Mapping[str, Any]]]:
    seen: list[tuple[str, Mapping[str, Any], Mapping[str, Any]]] = []
    telemetry.attach("t", "rate_limiter.*", lambda e, m, md: seen.append((e, m, md)))
    return seen


# -- backend failures ------------------------------------------------------------------


@pytest.mark.parametrize(
    "store",
    [RaisingStore(), RaisingStore(synchronously=True), HangingStore()],
    ids=["raises", "raises-synchronously", "hangs"],
)
async def test_fail_open_allows_on_any_backend_failure(
    store: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """With fail_open every failure, a timeout included, lets the request through and logs."""
    limiter = limiter_with(store, fail_open=True, timeout_ms=20)
    with caplog.at_level(logging.WARNING, logger="genapi.ratelimit"):
        assert await count_passing(limiter, req(), 10) == 10
    assert [r.name for r in caplog.records] == ["genapi.ratelimit"]
    assert "allowing" in caplog.text


@pytest.mark.parametrize(
    "store",
    [RaisingStore(), RaisingStore(synchronously=True), HangingStore()],
    ids=["raises", "raises-synchronously", "hangs"],
)
async def test_fail_closed_rejects_on_any_backend_failure(store: Any) -> None:
    """With fail_open off every failure answers Rate limit service unavailable."""
    limiter = limiter_with(store, fail_open=False, timeout_ms=20)
    with pytest.raises(RateLimiterUnavailable) as info:
        await check(limiter, req())
    assert info.value.message == "Rate limit service unavailable"
    assert info.value.can_retry is True


async def test_admin_calls_on_a_broken_backend_raise_unavailable() -> None:
    """status and reset report a failing backend as RateLimiterUnavailable."""
    limiter = limiter_with(RaisingStore(), fail_open=True)
    with pytest.raises(RateLimiterUnavailable):
        await limiter.status("alice")
    with pytest.raises(RateLimiterUnavailable):
        await limiter.reset("alice")


async def test_failure_telemetry_says_what_was_decided(
    telemetry: Telemetry, events: list[Any]
) -> None:
    """A backend failure is a check with result fail_open or unavailable."""
    for fail_open, result in ((True, "fail_open"), (False, "unavailable")):
        config = RateLimitConfig(global_limits=(USER_5,), fail_open=fail_open)
        limiter = RateLimiter(config, store=RaisingStore(), telemetry=telemetry)
        try:
            await check(limiter, req())
        except RateLimiterUnavailable:
            pass
        assert events[-1][0] == "rate_limiter.check"
        assert events[-1][2]["result"] == result


# -- the admin gate and runtime configuration ---------------------------------------------


async def test_mutations_need_the_gate() -> None:
    """Every change, reset included, is refused by a gate that lacks the action."""
    limiter = RateLimiter(RateLimitConfig(global_limits=(USER_5,)), gate=AdminGate())
    with pytest.raises(AdminActionDenied):
        limiter.add_global_limit(RateLimit("device_id", 1, 10))
    with pytest.raises(AdminActionDenied):
        limiter.add_api_limit(FAST_2)
    with pytest.raises(AdminActionDenied):
        limiter.remove_global_limit("user_id")
    with pytest.raises(AdminActionDenied):
        limiter.remove_api_limit("svc", "fast", "user_id")
    with pytest.raises(AdminActionDenied):
        limiter.update_config(enabled=False)
    with pytest.raises(AdminActionDenied):
        await limiter.reset("alice")
    assert limiter.config.global_limits == (USER_5,)
    assert limiter.enabled
    assert await limiter.status("alice")


async def test_allowing_gate_permits_changes() -> None:
    """A gate that allows update_rate_limit_config lets every change through."""
    limiter = RateLimiter(gate=AdminGate({"update_rate_limit_config"}))
    limiter.add_global_limit(USER_5)
    limiter.add_api_limit(FAST_2)
    await limiter.reset("alice")
    assert limiter.config.limits == (USER_5, FAST_2)


async def test_add_and_remove_limits_at_runtime() -> None:
    """Added limits apply to the next request; removing them lifts the limit."""
    limiter = RateLimiter()
    limiter.add_global_limit(RateLimit("user_id", 3, 10_000))
    limiter.add_api_limit(FAST_2)
    assert await count_passing(limiter, req(request_type="fast"), 5) == 2
    assert limiter.remove_api_limit("svc", "fast", "user_id")
    assert not limiter.remove_api_limit("svc", "fast", "user_id")
    assert await count_passing(limiter, req(request_type="fast"), 5) == 1
    assert limiter.remove_global_limit("user_id", window_ms=10_000)
    assert await count_passing(limiter, req(request_type="fast"), 5) == 5


def test_limits_must_be_added_to_their_own_list() -> None:
    """A scoped limit is not a global one, and the reverse."""
    limiter = RateLimiter()
    with pytest.raises(ConfigError, match="global limit has no service"):
        limiter.add_global_limit(FAST_2)
    with pytest.raises(ConfigError, match="needs service"):
        limiter.add_api_limit(USER_5)


async def test_update_config_switches_and_validates() -> None:
    """enabled and fail_open can be switched; an invalid update changes nothing."""
    limiter = RateLimiter(RateLimitConfig(global_limits=(RateLimit("user_id", 1, 10_000),)))
    limiter.update_config(enabled=False)
    assert not limiter.enabled
    assert await count_passing(limiter, req(), 3) == 3
    config = limiter.update_config(enabled=True, fail_open=False)
    assert config.enabled
    assert not config.fail_open
    assert config is limiter.config
    with pytest.raises(ConfigError):
        limiter.update_config(global_limits=[FAST_2])
    assert limiter.config is config


def test_constructor_rejects_a_non_positive_timeout() -> None:
    """timeout_ms must be positive."""
    with pytest.raises(ValueError, match="timeout_ms"):
        RateLimiter(timeout_ms=0)


# -- telemetry ---------------------------------------------------------------------------


def test_rate_limiter_events_are_catalogued() -> None:
    """The four rate-limiter events are in the telemetry catalogue."""
    names = {spec.name for spec in list_events()}
    assert {
        "rate_limiter.check", "rate_limiter.exceeded", "rate_limiter.reset",
        "rate_limiter.cleanup",
    } <= names


async def test_check_exceeded_and_reset_events(
    telemetry: Telemetry, events: list[Any], clock: FakeClock
) -> None:
    """Checks, rejections and resets are reported with their measurements and metadata."""
    limiter = RateLimiter(
        RateLimitConfig(global_limits=(RateLimit("user_id", 1, 10_000),)),
        store=MemoryStore(clock=clock),
        telemetry=telemetry,
    )
    assert await passes(limiter, req(request_id="r1"))
    assert not await passes(limiter, req(request_id="r2"))
    await limiter.reset("alice", key="user_id")
    names = [name for name, _, _ in events]
    assert names == [
        "rate_limiter.check", "rate_limiter.exceeded", "rate_limiter.check", "rate_limiter.reset",
    ]
    _, measurements, metadata = events[0]
    assert measurements["duration_us"] >= 0
    assert metadata == {
        "request_id": "r1", "user_id": "alice", "service": "svc", "request_type": "op",
        "result": "ok",
    }
    _, measurements, metadata = events[1]
    assert measurements == {"retry_after_ms": 10_000}
    assert metadata == {
        "key": "g:user_id:10000:alice", "key_type": "user_id", "scope": GLOBAL,
        "max_requests": 1, "current_requests": 1, "window_ms": 10_000, "request_id": "r2",
        "user_id": "alice",
    }
    assert events[2][2]["result"] == "rate_limited"
    assert events[3][2] == {"key": "alice", "scope": GLOBAL, "rate_limit_key": "user_id"}


# -- in the executor ---------------------------------------------------------------------


async def test_executor_answers_rate_limited_requests() -> None:
    """Through the executor a rejected call gets the reference's message and can_retry."""
    svc = Service("svc")

    @svc.function()
    async def op() -> str:
        return "done"

    registry = Registry()
    registry.add_service(svc)
    limiter = RateLimiter(RateLimitConfig(global_limits=(RateLimit("user_id", 1, 60_000),)))
    executor = Executor(registry, rate_limiter=limiter)
    try:
        first = await executor.execute(req())
        second = await executor.execute(req())
    finally:
        await executor.aclose()
    assert first is not None
    assert first.result == "done"
    assert second is not None
    assert (second.success, second.can_retry) == (False, True)
    assert second.error == "Rate limit exceeded. Please retry after 60 seconds."
