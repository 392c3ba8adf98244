"""Retry policy: growing backoff with jitter, attempt plans, and which errors are retried."""

from __future__ import annotations

import random
from typing import Any

import pytest

from genapi.errors import (
    ApiError,
    ArgumentError,
    CallTimeout,
    ConfigError,
    NoResponders,
    PermissionDenied,
    RetryExhausted,
    ServiceUnavailable,
    TransportError,
)
from genapi.execution.retry import (
    EXECUTOR_RETRY,
    EXECUTOR_RETRY_EXHAUSTED,
    Attempt,
    Backoff,
    RetryMode,
    RetryPolicy,
    backoff_ms,
    is_retryable,
    should_fall_back,
)
from genapi.telemetry.events import list_events

NO_JITTER = Backoff(jitter=0.0)

# -- backoff ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [(1, 100.0), (2, 200.0), (3, 400.0), (4, 800.0), (6, 3200.0), (7, 5000.0), (10_000, 5000.0)],
)
def test_backoff_grows_then_caps_without_jitter(attempt: int, expected: float) -> None:
    """Without jitter the delay doubles from 100 ms per retry and stops at the 5 s cap."""
    assert backoff_ms(attempt) == expected
    assert backoff_ms(attempt, random.Random(1), jitter=0.0) == expected
    assert NO_JITTER.delay_ms(attempt, random.Random(1)) == expected


@pytest.mark.parametrize("seed", range(20))
def test_backoff_sequence_grows_within_the_jitter_bound(seed: int) -> None:
    """With ±50 % jitter retries 1, 2, 3 wait 100, 200, 400 ms each within [0.5x, 1.5x]."""
    rng = random.Random(seed)
    for attempt, nominal in ((1, 100.0), (2, 200.0), (3, 400.0), (8, 5000.0)):
        delay = backoff_ms(attempt, rng)
        assert nominal * 0.5 <= delay <= nominal * 1.5


def test_backoff_jitter_is_reproducible_from_the_rng() -> None:
    """The same seed gives the same delays; jitter really varies them."""
    first = [backoff_ms(1, random.Random(4)) for _ in range(3)]
    assert first == [backoff_ms(1, random.Random(4)) for _ in range(3)]
    rng = random.Random(4)
    assert len({backoff_ms(1, rng) for _ in range(10)}) > 1


def test_backoff_custom_base_and_cap() -> None:
    """Base and cap are settings; jitter applies around the capped value."""
    assert [backoff_ms(n, base_ms=10, cap_ms=50) for n in (1, 2, 3, 4)] == [10, 20, 40, 50]
    rng = random.Random(0)
    assert all(25 <= backoff_ms(9, rng, base_ms=10, cap_ms=50) <= 75 for _ in range(50))


@pytest.mark.parametrize("attempt", [0, -1])
def test_backoff_attempt_starts_at_one(attempt: int) -> None:
    """Attempt numbers are 1-based."""
    with pytest.raises(ValueError, match="attempt"):
        backoff_ms(attempt)


@pytest.mark.parametrize(
    "kwargs", [{"base_ms": -1}, {"base_ms": 100, "cap_ms": 50}, {"jitter": 1.5}, {"jitter": -0.1}]
)
def test_backoff_settings_are_validated(kwargs: dict[str, Any]) -> None:
    """Negative base, cap below base, or jitter outside [0, 1] are ConfigErrors."""
    with pytest.raises(ConfigError):
        Backoff(**kwargs)


# -- policy from config ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retry", "mode", "retries"),
    [
        (None, None, 0),
        (3, RetryMode.ALL_NODES, 3),
        (2.9, RetryMode.ALL_NODES, 2),
        (("same_node", 1), RetryMode.SAME_NODE, 1),
        (("same_node", 2.5), RetryMode.SAME_NODE, 2),
        (("all_nodes", 4), RetryMode.ALL_NODES, 4),
        (["all_nodes", 1], RetryMode.ALL_NODES, 1),
    ],
)
def test_policy_from_config(retry: Any, mode: RetryMode | None, retries: int) -> None:
    """FunConfig.retry forms map to a mode and a truncated retry count."""
    policy = RetryPolicy.from_config(retry)
    assert (policy.mode, policy.retries, policy.attempts) == (mode, retries, retries + 1)


@pytest.mark.parametrize("retry", [True, ("sometimes", 2), ("same_node",), "3x", -1])
def test_policy_from_invalid_config_raises(retry: Any) -> None:
    """Unknown modes, malformed tuples, booleans and negative counts are ConfigErrors."""
    with pytest.raises(ConfigError):
        RetryPolicy.from_config(retry)


def test_policy_needs_a_mode_for_retries() -> None:
    """A retry count without a mode is refused."""
    with pytest.raises(ConfigError, match="mode"):
        RetryPolicy(retries=2)


# -- planner ----------------------------------------------------------------------------------


def plan(policy: RetryPolicy, nodes: list[str], **kw: Any) -> list[Attempt]:
    return list(policy.plan(nodes, rng=random.Random(0), **kw))


def test_plan_without_retry_is_one_attempt_over_every_node() -> None:
    """retry=None still falls back across all nodes, once, with no delay."""
    assert plan(RetryPolicy.from_config(None), ["a", "b", "c"]) == [Attempt(0, ("a", "b", "c"), 0)]


def test_plan_same_node_repeats_the_ordered_list() -> None:
    """same_node retries re-run the first ordered list after growing delays."""
    policy = RetryPolicy.from_config(("same_node", 3), backoff=NO_JITTER)
    resolved: list[int] = []

    def resolve() -> list[str]:
        resolved.append(1)
        return ["z"]

    attempts = plan(policy, ["b", "a"], resolve=resolve)
    assert attempts == [
        Attempt(0, ("b", "a"), 0.0),
        Attempt(1, ("b", "a"), 100.0),
        Attempt(2, ("b", "a"), 200.0),
        Attempt(3, ("b", "a"), 400.0),
    ]
    assert resolved == []


def test_plan_all_nodes_re_resolves_before_each_retry() -> None:
    """all_nodes retries ask for a fresh ordered list each time."""
    fresh = iter([["c", "a"], ["a", "c"]])
    policy = RetryPolicy.from_config(2, backoff=NO_JITTER)
    attempts = plan(policy, ["a", "b", "c"], resolve=lambda: next(fresh))
    assert attempts == [
        Attempt(0, ("a", "b", "c"), 0.0),
        Attempt(1, ("c", "a"), 100.0),
        Attempt(2, ("a", "c"), 200.0),
    ]


def test_plan_all_nodes_without_resolver_reuses_the_list() -> None:
    """Without a resolver all_nodes reuses the first list."""
    attempts = plan(RetryPolicy.from_config(1, backoff=NO_JITTER), ["a"])
    assert [a.nodes for a in attempts] == [("a",), ("a",)]


def test_plan_is_lazy() -> None:
    """Nodes are re-resolved only when a retry is actually reached."""
    calls: list[int] = []

    def resolve() -> list[str]:
        calls.append(1)
        return ["x"]

    attempts = RetryPolicy.from_config(5).plan(["a"], rng=random.Random(0), resolve=resolve)
    next(attempts)
    assert calls == []
    next(attempts)
    assert calls == [1]


def test_plan_delays_are_jittered_around_the_growing_sequence() -> None:
    """Planned delays follow 100, 200, 400 ms within the jitter bound."""
    attempts = plan(RetryPolicy.from_config(3), ["a"])
    for attempt, nominal in zip(attempts[1:], (100, 200, 400), strict=True):
        assert nominal * 0.5 <= attempt.delay_ms <= nominal * 1.5


# -- classification ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "retryable", "fall_back"),
    [
        (TransportError("connection lost"), True, True),
        (NoResponders("no node"), True, True),
        (CallTimeout(5000), True, False),
        (ApiError("User not found"), False, False),
        (ArgumentError("Missing required argument: user_id"), False, False),
        (PermissionDenied(), False, False),
        (ServiceUnavailable(), False, False),
        (RetryExhausted(), False, False),
        (TimeoutError(), False, False),
        (ValueError("bug"), False, False),
        (KeyboardInterrupt(), False, False),
    ],
)
def test_classification(exc: BaseException, retryable: bool, fall_back: bool) -> None:
    """Transport failures and call timeouts are retried; only transport failures fall back."""
    assert is_retryable(exc) is retryable
    assert should_fall_back(exc) is fall_back


def test_retry_events_are_catalogued() -> None:
    """executor.retry and executor.retry.exhausted are in the telemetry catalogue."""
    specs = {spec.name: spec for spec in list_events()}
    assert specs[EXECUTOR_RETRY].measurements == ("attempt", "backoff_ms")
    assert specs[EXECUTOR_RETRY].metadata == ("request_id", "mode", "nodes")
    assert specs[EXECUTOR_RETRY_EXHAUSTED].metadata == ("request_id", "mode", "last_error")


# -- exact messages and the edges of each setting (mutation testing found them unchecked) ----


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"base_ms": -1}, "invalid Backoff: base_ms must be >= 0"),
    ({"base_ms": 100, "cap_ms": 50}, "invalid Backoff: cap_ms must be >= base_ms"),
    ({"jitter": 1.5}, "invalid Backoff: jitter must be between 0 and 1"),
    ({"base_ms": -1, "cap_ms": -2, "jitter": 2}, "invalid Backoff: base_ms must be >= 0; "
     "cap_ms must be >= base_ms; jitter must be between 0 and 1"),
])
def test_backoff_refusals_name_every_problem(kwargs: dict[str, Any], message: str) -> None:
    """The ConfigError lists what is wrong, in the settings' words."""
    with pytest.raises(ConfigError) as info:
        Backoff(**kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize("kwargs", [{"base_ms": 0, "cap_ms": 0}, {"base_ms": 50, "cap_ms": 50},
                                    {"jitter": 1.0}, {"jitter": 0.0}])
def test_backoff_edges_are_accepted(kwargs: dict[str, Any]) -> None:
    """Zero base, a cap equal to the base and jitter of exactly 0 or 1 are valid."""
    Backoff(**kwargs)


def test_backoff_delay_uses_its_rng_jitter_and_cap() -> None:
    """Backoff.delay_ms passes its own rng, jitter and cap to the formula."""
    policy = Backoff(base_ms=100, cap_ms=300, jitter=0.5)
    expected = [backoff_ms(n, random.Random(3), base_ms=100, cap_ms=300, jitter=0.5)
                for n in (1, 2, 3, 4)]
    got = [policy.delay_ms(n, random.Random(3)) for n in (1, 2, 3, 4)]
    assert got == expected
    assert expected[3] != 800  # capped before jitter
    assert Backoff(jitter=0.0).delay_ms(2, random.Random(3)) == 200.0


def test_backoff_attempt_message() -> None:
    """The refusal of attempt 0 says what an attempt is."""
    with pytest.raises(ConfigError) as info:
        backoff_ms(0)
    assert str(info.value) == "attempt must be >= 1"


def test_plan_jitter_comes_from_the_given_rng() -> None:
    """The planner draws each retry's delay from the rng it is given, in order."""
    policy = RetryPolicy.from_config(3)
    delays = [a.delay_ms for a in policy.plan(["a"], rng=random.Random(11))][1:]
    rng = random.Random(11)
    assert delays == [policy.backoff.delay_ms(n, rng) for n in (1, 2, 3)]


@pytest.mark.parametrize(("retry", "message"), [
    (True, "invalid RetryPolicy: invalid retry: True"),
    (("sometimes", 2), "invalid RetryPolicy: unknown retry mode: 'sometimes'"),
    (("same_node",), "invalid RetryPolicy: invalid retry: ('same_node',)"),
    ("3x", "invalid RetryPolicy: invalid retry: '3x'"),
    (-1, "invalid RetryPolicy: retries must be >= 0"),
])
def test_policy_refusals_say_what_is_wrong(retry: Any, message: str) -> None:
    """Each malformed retry setting is named in the error."""
    with pytest.raises(ConfigError) as info:
        RetryPolicy.from_config(retry)
    assert str(info.value) == message


def test_policy_without_mode_message() -> None:
    """A count without a mode says so."""
    with pytest.raises(ConfigError) as info:
        RetryPolicy(retries=2)
    assert str(info.value) == "invalid RetryPolicy: retries need a mode"
