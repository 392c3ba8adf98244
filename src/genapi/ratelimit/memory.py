"""The in-memory store: exact sliding-window logs in one process (the default backend).

Each bucket is a deque of millisecond timestamps, trimmed from the left as they leave the
window, so a check is amortised O(1) per bucket. Decisions are synchronous: ``acquire``
returns its answer directly and never creates a coroutine.

Memory stays bounded two ways:

* **Expiry.** Buckets are grouped by window and kept in least-recently-hit order inside
  each group, so the idle ones gather at the front. Every ``sweep_interval_ms`` the
  store pops, from the front of each group, the buckets whose newest timestamp has left
  the window, and stops at the first live one. The sweep touches only what it removes.
* **A cap.** Past ``max_buckets`` the least recently hit bucket is evicted (after a
  sweep). An evicted key value starts afresh, so the cap trades exactness under a flood
  of distinct keys for bounded memory; evictions are logged.

Not thread-safe: use it from one event loop.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, deque

from ..errors import ConfigError
from ..telemetry.events import Telemetry, default_telemetry
from .events import CLEANUP
from .store import Checks
from .window import Clock, Rejection, monotonic_ms, retry_after_ms, trim, worse

__all__ = ["MemoryStore"]

logger = logging.getLogger("genapi.ratelimit")


class MemoryStore:
    """Bucket logs in a dict of deques; see the module docstring.

    ``clock`` returns integer milliseconds (inject a fake one in tests).
    """

    def __init__(
        self,
        *,
        clock: Clock = monotonic_ms,
        max_buckets: int = 100_000,
        sweep_interval_ms: int = 1_000,
        telemetry: Telemetry | None = None,
    ) -> None:
        if max_buckets < 1 or sweep_interval_ms < 1:
            raise ConfigError("max_buckets and sweep_interval_ms must be positive")
        self._clock = clock
        self._max_buckets = max_buckets
        self._sweep_interval_ms = sweep_interval_ms
        self._telemetry = telemetry if telemetry is not None else default_telemetry
        # window_ms -> bucket -> log; each OrderedDict is in least-recently-hit order.
        self._groups: dict[int, OrderedDict[str, deque[int]]] = {}
        self._size = 0
        self._evicted = 0
        self._next_sweep = clock() + sweep_interval_ms

    @property
    def bucket_count(self) -> int:
        """How many buckets are held now."""
        return self._size

    def acquire(self, checks: Checks) -> Rejection | None:
        """Record a hit in every bucket if none is full; else the worst rejection."""
        now = self._clock()
        if now >= self._next_sweep:
            self.sweep(now)
        groups = self._groups
        rejection: Rejection | None = None
        for index, (bucket, max_requests, window_ms) in enumerate(checks):
            group = groups.get(window_ms)
            log = group.get(bucket) if group is not None else None
            # An absent bucket counts 0, below any limit.
            if log is not None and trim(log, now, window_ms) >= max_requests:
                wait = retry_after_ms(log, max_requests, now, window_ms)
                rejection = worse(rejection, Rejection(index, len(log), wait))
        if rejection is not None:
            return rejection
        for bucket, _, window_ms in checks:
            group = groups.get(window_ms)
            log = group.get(bucket) if group is not None else None
            if log is None or group is None:
                self._add_bucket(window_ms, bucket, now)
            else:
                group.move_to_end(bucket)
                log.append(now)
        return None

    def _add_bucket(self, window_ms: int, bucket: str, now: int) -> None:
        if self._size >= self._max_buckets:
            self._make_room(now)
        # Fetched after making room: a sweep drops groups it empties.
        group = self._groups.get(window_ms)
        if group is None:
            group = self._groups[window_ms] = OrderedDict()
        group[bucket] = deque((now,))
        self._size += 1

    def _make_room(self, now: int) -> None:
        self._drop_expired(now)
        if self._size < self._max_buckets:
            return
        # The group whose front bucket was hit longest ago holds the global LRU bucket.
        victim = min(
            (group for group in self._groups.values() if group),
            key=lambda group: _newest(next(iter(group.values()))),
        )
        victim.popitem(last=False)
        self._size -= 1
        self._evicted += 1

    def sweep(self, now: int | None = None) -> int:
        """Drop every bucket with nothing left in its window; return how many went.

        Runs by itself every ``sweep_interval_ms`` during checks, and reports (once per
        run, so a flood cannot flood the log) the live buckets the cap evicted meanwhile.
        """
        now = self._clock() if now is None else now
        self._next_sweep = now + self._sweep_interval_ms
        if self._evicted:
            logger.warning(
                "rate-limit memory store full (%d buckets): evicted %d live buckets; "
                "their key values were un-counted",
                self._max_buckets, self._evicted,
            )
            self._evicted = 0
        return self._drop_expired(now)

    def _drop_expired(self, now: int) -> int:
        started = time.perf_counter_ns()
        removed = 0
        for window_ms, group in list(self._groups.items()):
            edge = now - window_ms
            while group:
                log = next(iter(group.values()))
                if log and log[-1] > edge:
                    break  # this one is live, and everything behind it was hit later
                group.popitem(last=False)
                removed += 1
            if not group:
                del self._groups[window_ms]
        self._size -= removed
        if removed and self._telemetry.has_handlers(CLEANUP):
            self._telemetry.emit(
                CLEANUP,
                {
                    "duration_us": (time.perf_counter_ns() - started) // 1000,
                    "cleaned_entries": removed,
                },
                {"buckets": self._size},
            )
        return removed

    async def usage(self, checks: Checks) -> list[int]:
        """How many requests each bucket counts now."""
        now = self._clock()
        counts = []
        for bucket, _, window_ms in checks:
            group = self._groups.get(window_ms)
            log = group.get(bucket) if group is not None else None
            counts.append(0 if log is None else trim(log, now, window_ms))
        return counts

    async def reset(self, checks: Checks) -> None:
        """Forget the buckets."""
        for bucket, _, window_ms in checks:
            group = self._groups.get(window_ms)
            if group is not None and group.pop(bucket, None) is not None:
                self._size -= 1

    async def clear(self) -> int:
        """Forget every bucket; how many there were."""
        count = self._size
        self._groups.clear()
        self._size = 0
        return count

    async def aclose(self) -> None:
        """Nothing to release."""


def _newest(log: deque[int]) -> int:
    # An emptied log has nothing worth keeping: it sorts first.
    return log[-1] if log else -1
