"""Circuit breaker: the state machine over an injected clock, its telemetry, and BreakerSet."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from genapi.errors import ConfigError
from genapi.execution.breaker import (
    BREAKER_CLOSE,
    BREAKER_HALF_OPEN,
    BREAKER_OPEN,
    BreakerSet,
    BreakerSettings,
    BreakerSnapshot,
    BreakerState,
    CircuitBreaker,
)
from genapi.telemetry.events import Telemetry, list_events

CLOSED, OPEN, HALF = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Recorder:
    """Collects telemetry events."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        telemetry.attach("rec", "worker_pool.circuit_breaker.*", self)

    def __call__(self, event: str, _m: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        self.events.append((event, dict(meta)))


def make(
    threshold: int = 3, reset: float = 10.0, trials: int = 1
) -> tuple[CircuitBreaker, FakeClock, Recorder]:
    clock, telemetry = FakeClock(), Telemetry()
    recorder = Recorder(telemetry)
    settings = BreakerSettings(
        failure_threshold=threshold, reset_timeout=reset, half_open_max_calls=trials
    )
    return CircuitBreaker("n1", settings, clock=clock, telemetry=telemetry), clock, recorder


# Steps: "ok"/"fail" record an outcome, "admit"/"release" a trial, ("t", s) sets the clock;
# each row ends with the expected state and allow() answer after its steps.
@pytest.mark.parametrize(
    ("steps", "state", "allowed"),
    [
        ([], CLOSED, True),
        (["fail", "fail"], CLOSED, True),
        (["fail", "fail", "fail"], OPEN, False),
        (["fail", "fail", "ok", "fail", "fail"], CLOSED, True),
        (["fail"] * 3 + [("t", 9.999)], OPEN, False),
        (["fail"] * 3 + [("t", 10.0)], HALF, True),
        (["fail"] * 3 + [("t", 10.0), "admit"], HALF, False),
        (["fail"] * 3 + [("t", 10.0), "admit", "release"], HALF, True),
        (["fail"] * 3 + [("t", 10.0), "admit", "ok"], CLOSED, True),
        (["fail"] * 3 + [("t", 10.0), "admit", "fail"], OPEN, False),
        (["fail"] * 3 + [("t", 10.0), "admit", "fail", ("t", 19.9)], OPEN, False),
        (["fail"] * 3 + [("t", 10.0), "admit", "fail", ("t", 20.0)], HALF, True),
        (["fail"] * 3 + ["ok", "fail", ("t", 5.0)], OPEN, False),
    ],
)
def test_transitions(steps: list[Any], state: BreakerState, allowed: bool) -> None:
    """Threshold opens, the timeout half-opens, a trial closes or re-opens (timer restarts)."""
    breaker, clock, _ = make()
    for step in steps:
        if isinstance(step, tuple):
            clock.now = step[1]
        elif step == "ok":
            breaker.record_success()
        elif step == "fail":
            breaker.record_failure()
        elif step == "admit":
            assert breaker.admit()
        else:
            breaker.release()
    assert breaker.allow() is allowed
    assert breaker.state is state


def test_half_open_admits_the_configured_number_of_trials() -> None:
    """HALF_OPEN admits half_open_max_calls trials at a time; allow() never reserves."""
    breaker, clock, _ = make(threshold=1, reset=1.0, trials=2)
    breaker.record_failure()
    clock.now = 1.0
    assert breaker.allow()
    assert breaker.allow()
    assert [breaker.admit() for _ in range(3)] == [True, True, False]
    breaker.release()
    assert breaker.admit()


def test_allow_only_transitions_when_the_timeout_elapsed() -> None:
    """allow() leaves an OPEN breaker OPEN before the timeout and CLOSED ones untouched."""
    breaker, clock, recorder = make(threshold=1)
    assert breaker.allow()
    assert breaker.state is CLOSED
    breaker.record_failure()
    clock.now = 5.0
    assert not breaker.allow()
    assert breaker.state is OPEN
    assert [e for e, _ in recorder.events] == [BREAKER_OPEN]


def test_zero_reset_timeout_half_opens_at_once() -> None:
    """With reset_timeout 0 an open breaker admits a trial immediately."""
    breaker, _, _ = make(threshold=1, reset=0.0)
    breaker.record_failure()
    assert breaker.state is OPEN
    assert breaker.admit()
    assert breaker.state is HALF


def test_outcomes_while_open_are_ignored() -> None:
    """Late outcomes of calls admitted before opening neither close nor extend the breaker."""
    breaker, clock, _ = make(threshold=1)
    breaker.record_failure()
    clock.now = 6.0
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state is OPEN
    clock.now = 10.0
    assert breaker.allow()


def test_transitions_emit_telemetry() -> None:
    """open, half_open and close are emitted with the breaker's name, once per transition."""
    breaker, clock, recorder = make(threshold=2)
    breaker.record_failure()
    breaker.record_failure()
    clock.now = 10.0
    breaker.allow()
    breaker.allow()
    breaker.admit()
    breaker.record_success()
    assert recorder.events == [
        (BREAKER_OPEN, {"name": "n1", "consecutive_failures": 2}),
        (BREAKER_HALF_OPEN, {"name": "n1"}),
        (BREAKER_CLOSE, {"name": "n1"}),
    ]


def test_success_without_opening_emits_nothing() -> None:
    """Resetting the failure count of a closed breaker is not a transition."""
    breaker, _, recorder = make()
    breaker.record_failure()
    breaker.record_success()
    assert breaker.consecutive_failures == 0
    assert recorder.events == []


def test_snapshot() -> None:
    """snapshot() reports state, failures, threshold, trials in flight and time until trials."""
    breaker, clock, _ = make(threshold=2, reset=10.0)
    breaker.record_failure()
    assert breaker.snapshot() == BreakerSnapshot(
        name="n1",
        state=CLOSED,
        consecutive_failures=1,
        failure_threshold=2,
        trials_in_flight=0,
        retry_in=0.0,
    )
    breaker.record_failure()
    clock.now = 4.0
    snap = breaker.snapshot()
    assert (snap.state, snap.retry_in) == (OPEN, 6.0)
    clock.now = 10.0
    breaker.admit()
    assert breaker.snapshot().trials_in_flight == 1
    with pytest.raises(AttributeError):
        snap.state = CLOSED  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs",
    [{"failure_threshold": 0}, {"reset_timeout": -1.0}, {"half_open_max_calls": 0}],
)
def test_settings_are_validated(kwargs: dict[str, Any]) -> None:
    """A zero threshold, negative timeout or zero trials is a ConfigError."""
    with pytest.raises(ConfigError):
        BreakerSettings(**kwargs)


def test_breaker_set_creates_lazily_with_shared_settings() -> None:
    """BreakerSet makes one breaker per name on first use; unknown names are available."""
    clock, telemetry = FakeClock(), Telemetry()
    recorder = Recorder(telemetry)
    breakers = BreakerSet(BreakerSettings(failure_threshold=1), clock=clock, telemetry=telemetry)
    assert breakers.available("n1")
    assert len(breakers) == 0
    breakers.get("n1").record_failure()
    assert breakers.get("n1") is breakers.get("n1")
    assert not breakers.available("n1")
    assert breakers.available("n2")
    assert "n1" in breakers
    assert list(breakers) == ["n1"]
    assert breakers.snapshot()["n1"].state is OPEN
    assert recorder.events == [(BREAKER_OPEN, {"name": "n1", "consecutive_failures": 1})]
    breakers.remove("n1")
    assert breakers.available("n1")
    assert len(breakers) == 0


def test_breaker_events_are_catalogued() -> None:
    """The three breaker events are in the telemetry catalogue with a name field."""
    specs = {spec.name: spec for spec in list_events()}
    for event in (BREAKER_OPEN, BREAKER_HALF_OPEN, BREAKER_CLOSE):
        assert "name" in specs[event].metadata


def test_reset_closes_an_open_breaker_at_once_and_says_so() -> None:
    """What a breaker guards proved alive another way: closed now, failures forgotten."""
    breaker, _clock, recorder = make()
    for _ in range(3):
        breaker.record_failure()
    assert breaker.state is OPEN
    breaker.reset()
    assert (breaker.state, breaker.consecutive_failures, breaker.allow()) == (CLOSED, 0, True)
    assert recorder.events[-1] == ("worker_pool.circuit_breaker.close", {"name": "n1"})
    breaker.record_failure()
    breaker.reset()  # a closed one just forgets its count, with no event
    assert breaker.consecutive_failures == 0
    assert len(recorder.events) == 2


def test_a_breaker_set_resets_by_name() -> None:
    """Resetting an unknown name does nothing; a known one closes."""
    breakers = BreakerSet(BreakerSettings(failure_threshold=1), telemetry=Telemetry())
    breakers.reset("never-seen")
    breakers.get("n1").record_failure()
    assert not breakers.available("n1")
    breakers.reset("n1")
    assert breakers.available("n1")
