"""Sliding-window log arithmetic: timestamps and a clock reading in, decisions out.

A bucket's log holds the millisecond timestamps of the requests it counted, oldest first.
At time ``now`` a timestamp ``t`` is still inside a window of ``w`` ms while
``t > now - w``; so a request recorded at 1,000 with a 100 ms window counts until 1,099
and no longer at 1,100.

A bucket with ``count >= max_requests`` rejects. It admits again once ``count`` has
dropped below ``max_requests``, that is when the timestamp at position
``count - max_requests`` (oldest first) leaves the window, which is what
:func:`retry_after_ms` returns.

No I/O and no clock of its own here: the memory store calls these functions, and the
Redis store's Lua script does the same arithmetic on the server.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import Callable, Sequence

__all__ = [
    "Clock",
    "Rejection",
    "monotonic_ms",
    "retry_after_ms",
    "trim",
    "worse",
]

#: A source of integer milliseconds that never goes backwards.
Clock = Callable[[], int]


def monotonic_ms() -> int:
    """Milliseconds from the monotonic clock: the memory store's default clock."""
    return time.monotonic_ns() // 1_000_000


@dataclasses.dataclass(frozen=True, slots=True)
class Rejection:
    """Why a check failed: which of the checked buckets, how full it was, when to retry.

    ``index`` is the position of the rejecting bucket in the checked sequence.
    """

    index: int
    current_requests: int
    retry_after_ms: int


def trim(log: deque[int], now_ms: int, window_ms: int) -> int:
    """Drop the timestamps that left the window from the left of ``log``; return the count.

    Amortised O(1): every timestamp is appended once and dropped at most once.
    """
    edge = now_ms - window_ms
    while log and log[0] <= edge:
        log.popleft()
    return len(log)


def retry_after_ms(log: Sequence[int], max_requests: int, now_ms: int, window_ms: int) -> int:
    """Milliseconds until a full, trimmed ``log`` admits one more request (never negative).

    ``log`` must hold at least ``max_requests`` timestamps, oldest first.
    """
    release = log[len(log) - max_requests]
    return max(release + window_ms - now_ms, 0)


def worse(current: Rejection | None, candidate: Rejection) -> Rejection:
    """The rejection to report when several buckets reject: the longest wait wins.

    Retrying before that wait is over would fail again, so it is the honest figure for
    ``Please retry after N seconds``. Ties keep the earlier bucket (globals come first).
    """
    if current is None or candidate.retry_after_ms > current.retry_after_ms:
        return candidate
    return current
