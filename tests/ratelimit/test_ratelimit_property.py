"""Property: the memory store decides exactly as a naive sliding-window log would."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from rl_helpers import FakeClock

from genapi.ratelimit import BucketCheck, MemoryStore

# A few fixed limits over a few buckets; each step advances time, then checks a subset.
LIMITS = [(2, 10), (3, 25), (1, 7), (5, 40)]
BUCKETS = ["a", "b", "c"]

steps = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=15),
        st.lists(
            st.tuples(st.sampled_from(BUCKETS), st.integers(0, len(LIMITS) - 1)),
            min_size=1,
            max_size=3,
            unique=True,
        ),
    ),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(steps)
def test_memory_store_matches_naive_model(
    sequence: list[tuple[int, list[tuple[str, int]]]],
) -> None:
    """Every accept/reject equals that of a model that keeps and rescans every hit."""
    clock = FakeClock(0)
    store = MemoryStore(clock=clock, sweep_interval_ms=20, max_buckets=1_000)
    hits: dict[str, list[int]] = {}
    for advance, picks in sequence:
        clock.advance(advance)
        checks = []
        for bucket, limit in picks:
            max_requests, window = LIMITS[limit]
            checks.append(BucketCheck(f"{bucket}:{limit}", max_requests, window))
        now = clock.now
        full = [
            sum(1 for t in hits.get(c.bucket, []) if t > now - c.window_ms) >= c.max_requests
            for c in checks
        ]
        outcome = store.acquire(checks)
        assert (outcome is None) == (not any(full))
        if outcome is None:
            for c in checks:
                hits.setdefault(c.bucket, []).append(now)
        else:
            assert full[outcome.index]
            assert outcome.retry_after_ms > 0
