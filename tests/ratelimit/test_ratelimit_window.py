"""The pure sliding-window arithmetic, as tables."""

from __future__ import annotations

from collections import deque

import pytest

from genapi.ratelimit.window import Rejection, retry_after_ms, trim, worse


@pytest.mark.parametrize(
    ("log", "now", "window", "kept"),
    [
        ([], 1_000, 100, []),
        ([900, 901, 950], 1_000, 100, [901, 950]),
        ([900, 901, 950], 1_001, 100, [950]),
        ([900, 901, 950], 1_050, 100, []),
        ([1_000, 1_000], 1_000, 1, [1_000, 1_000]),
        ([999, 1_000], 1_000, 1, [1_000]),
    ],
)
def test_trim_drops_expired_timestamps_from_the_left(
    log: list[int], now: int, window: int, kept: list[int]
) -> None:
    """trim keeps exactly the timestamps newer than now - window and returns their count."""
    entries = deque(log)
    assert trim(entries, now, window) == len(kept)
    assert list(entries) == kept


@pytest.mark.parametrize(
    ("log", "max_requests", "now", "window", "expected"),
    [
        ([1_000, 1_001, 1_002], 3, 1_002, 10_000, 9_998),
        ([1_000], 1, 1_000, 100, 100),
        ([1_000], 1, 1_099, 100, 1),
        # Over the limit (it was lowered): the third-newest must leave before one more fits.
        ([10, 20, 30, 40], 2, 50, 100, 80),
        ([10, 20, 30, 40], 4, 50, 100, 60),
        # An untrimmed log never yields a negative wait.
        ([10], 1, 500, 100, 0),
    ],
)
def test_retry_after_is_when_a_slot_frees(
    log: list[int], max_requests: int, now: int, window: int, expected: int
) -> None:
    """retry_after_ms is the time until the count drops below max_requests."""
    assert retry_after_ms(log, max_requests, now, window) == expected


@pytest.mark.parametrize(
    ("current", "candidate", "expected"),
    [
        (None, Rejection(1, 5, 100), Rejection(1, 5, 100)),
        (Rejection(0, 5, 100), Rejection(1, 3, 200), Rejection(1, 3, 200)),
        (Rejection(0, 5, 300), Rejection(1, 3, 200), Rejection(0, 5, 300)),
        (Rejection(0, 5, 200), Rejection(1, 3, 200), Rejection(0, 5, 200)),
    ],
)
def test_worse_keeps_the_longest_wait(
    current: Rejection | None, candidate: Rejection, expected: Rejection
) -> None:
    """Among rejecting buckets the longest wait is reported; ties keep the first."""
    assert worse(current, candidate) == expected
