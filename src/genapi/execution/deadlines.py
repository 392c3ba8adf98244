"""Coarse deadlines for calls: a cheaper ``asyncio.timeout`` for the hot path.

``asyncio.timeout`` (pure Python in 3.11) schedules and cancels a timer handle for every
call. :class:`Deadlines` groups deadlines into buckets of ``resolution`` seconds and runs
one ticker while any deadline is armed, so arming and disarming are a set insert and a
set removal. A deadline fires at most ``resolution`` late, which is immaterial for
function timeouts (at least 100 ms).
"""

from __future__ import annotations

import asyncio

from ..errors import UsageError

__all__ = ["Deadline", "Deadlines"]


class Deadline:
    """One armed deadline: the task it cancels, and whether it fired."""

    __slots__ = ("bucket", "expired", "task")

    def __init__(self, task: asyncio.Task[object], bucket: int) -> None:
        self.task = task
        self.bucket = bucket
        self.expired = False

    def consume(self) -> bool:
        """If this deadline fired, undo its cancellation request and return True."""
        if self.expired:
            self.task.uncancel()
            return True
        return False


class Deadlines:
    """Deadlines of tasks running on one event loop."""

    def __init__(self, resolution: float = 0.005) -> None:
        self.resolution = resolution
        self._per_second = 1.0 / resolution
        self._buckets: dict[int, set[Deadline]] = {}
        self._ticker: asyncio.TimerHandle | None = None
        # On Python 3.11 asyncio.get_running_loop() makes a getpid() system call (its fork
        # check), one per call if asked each time: ask only when the loop changed.
        self._loop: asyncio.AbstractEventLoop | None = None

    def __len__(self) -> int:
        return sum(len(b) for b in self._buckets.values())

    def arm(self, seconds: float) -> Deadline:
        """Cancel the current task ``seconds`` from now unless disarmed first."""
        loop = self._loop
        task = asyncio.current_task(loop) if loop is not None else None
        if task is None or loop is None:  # first use, or another loop runs now
            loop = self._loop = asyncio.get_running_loop()
            task = asyncio.current_task(loop)
            if task is None:
                raise UsageError("deadlines apply to tasks")
        bucket = int((loop.time() + seconds) * self._per_second) + 1
        deadline = Deadline(task, bucket)
        entries = self._buckets.get(bucket)
        if entries is None:
            entries = self._buckets[bucket] = set()
        entries.add(deadline)
        if self._ticker is None:
            self._ticker = loop.call_later(self.resolution, self._tick, loop)
        return deadline

    def disarm(self, deadline: Deadline) -> None:
        """Forget a deadline (whether or not it fired)."""
        entries = self._buckets.get(deadline.bucket)
        if entries is not None:
            entries.discard(deadline)
            if not entries:
                del self._buckets[deadline.bucket]

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        now_bucket = int(loop.time() / self.resolution)
        for bucket in [b for b in self._buckets if b <= now_bucket]:
            for deadline in self._buckets.pop(bucket):
                if not deadline.task.done():
                    deadline.expired = True
                    deadline.task.cancel()
        self._ticker = (
            loop.call_later(self.resolution, self._tick, loop) if self._buckets else None
        )
