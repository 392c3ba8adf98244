"""The retry-delay policy: pure functions, table-tested, and their properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from genapi.durable import Backoff, Jitter, delay_s, retry_at, seeded_random

FIXED = Backoff(base_s=1.0, max_s=30.0, jitter=Jitter.NONE)


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 16.0), (6, 30.0), (7, 30.0), (10_000, 30.0)],
)
def test_no_jitter_doubles_up_to_the_cap(attempt: int, expected: float) -> None:
    """Without jitter the delay is base * 2^(attempt-1), capped."""
    assert delay_s(FIXED, attempt, lambda: 0.99) == expected


@pytest.mark.parametrize(
    ("attempt", "rand", "expected"),
    [(1, 0.0, 0.0), (1, 0.5, 0.5), (3, 0.5, 2.0), (3, 0.25, 1.0), (9, 0.5, 15.0)],
)
def test_full_jitter_is_uniform_below_the_ceiling(
    attempt: int, rand: float, expected: float
) -> None:
    """Full jitter scales the capped ceiling by the random draw."""
    policy = Backoff(base_s=1.0, max_s=30.0, jitter=Jitter.FULL)
    assert delay_s(policy, attempt, lambda: rand) == expected


@pytest.mark.parametrize(
    ("attempt", "rand", "expected"),
    [(1, 0.0, 1.0), (1, 0.5, 2.0), (2, 0.5, 3.5), (3, 0.5, 5.75), (1, 0.999999, 3.0)],
)
def test_decorrelated_jitter_grows_from_the_previous_delay(
    attempt: int, rand: float, expected: float
) -> None:
    """Decorrelated jitter draws in [base, 3 * previous), replayed from attempt 1."""
    policy = Backoff(base_s=1.0, max_s=30.0, jitter=Jitter.DECORRELATED)
    assert delay_s(policy, attempt, lambda: rand) == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize(
    ("attempts", "max_attempts", "expected"),
    [(1, 3, 101.0), (2, 3, 102.0), (3, 3, None), (4, 3, None), (1, 1, None)],
)
def test_retry_at_gives_none_after_the_last_attempt(
    attempts: int, max_attempts: int, expected: float | None
) -> None:
    """retry_at is now + delay until max_attempts runs were made, then None (dead)."""
    got = retry_at(FIXED, attempts=attempts, max_attempts=max_attempts, now=100.0,
                   rand=lambda: 0.5)
    assert got == expected


def test_invalid_policies_and_attempts_are_refused() -> None:
    """A non-positive base, a cap below the base and attempt 0 raise ValueError."""
    with pytest.raises(ValueError, match="base_s"):
        Backoff(base_s=0.0)
    with pytest.raises(ValueError, match="base_s"):
        Backoff(base_s=5.0, max_s=1.0)
    with pytest.raises(ValueError, match="attempt"):
        delay_s(FIXED, 0, lambda: 0.5)


def test_seeded_random_replays_the_same_sequence() -> None:
    """The same seed gives the same draws, so every worker computes the same delay."""
    policy = Backoff(base_s=1.0, max_s=600.0, jitter=Jitter.DECORRELATED)
    first = [delay_s(policy, n, seeded_random("call-1")) for n in range(1, 8)]
    again = [delay_s(policy, n, seeded_random("call-1")) for n in range(1, 8)]
    other = [delay_s(policy, n, seeded_random("call-2")) for n in range(1, 8)]
    assert first == again != other


policies = st.builds(
    lambda base, factor, jitter: Backoff(base_s=base, max_s=base * factor, jitter=jitter),
    st.floats(min_value=0.001, max_value=1_000.0),
    st.floats(min_value=1.0, max_value=10_000.0),
    st.sampled_from(list(Jitter)),
)
draws = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)


@given(policies, st.integers(min_value=1, max_value=5_000), draws)
def test_delay_is_always_within_zero_and_the_cap(
    policy: Backoff, attempt: int, rand: float
) -> None:
    """Every delay lies in [0, max_s]; without full jitter it is at least base_s."""
    delay = delay_s(policy, attempt, lambda: rand)
    assert 0.0 <= delay <= policy.max_s
    if policy.jitter is not Jitter.FULL:
        assert delay >= policy.base_s * (1 - 1e-12)


@given(policies, st.integers(min_value=1, max_value=200))
def test_ceiling_never_shrinks_with_more_attempts(policy: Backoff, attempt: int) -> None:
    """With the same draw, a later attempt never waits less (no jitter and full jitter)."""
    if policy.jitter is Jitter.DECORRELATED:
        policy = Backoff(base_s=policy.base_s, max_s=policy.max_s, jitter=Jitter.FULL)
    assert delay_s(policy, attempt + 1, lambda: 0.7) >= delay_s(policy, attempt, lambda: 0.7)


@given(policies, st.integers(min_value=1, max_value=50), st.integers(min_value=1, max_value=50),
       st.floats(min_value=0, max_value=2e9))
def test_retry_at_is_after_now_or_dead(
    policy: Backoff, attempts: int, max_attempts: int, now: float
) -> None:
    """retry_at is None exactly when attempts reached max_attempts, else in [now, now+cap]."""
    got = retry_at(policy, attempts=attempts, max_attempts=max_attempts, now=now,
                   rand=lambda: 0.3)
    if attempts >= max_attempts:
        assert got is None
    else:
        assert got is not None and now <= got <= now + policy.max_s
