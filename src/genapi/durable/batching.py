"""Coalescing many concurrent single operations into batches (group commit).

The gateway enqueues one call per request and each worker completes one call at a time,
from many coroutines at once. A :class:`Coalescer` turns those into few multi-row
statements: an item submitted while a batch is being written waits for the next batch,
which takes everything that queued up meanwhile. No timer is involved, so a lone item
is written at once and a busy store writes large batches: latency stays one round trip
when idle and throughput grows with load.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["Coalescer"]

T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[T, R]):
    """Runs ``flush(batch) -> results`` (one result per item, in order) for queued items.

    At most ``concurrency`` flushes run at once, each of at most ``max_batch`` items. At
    most ``max_pending`` items wait: further submitters wait for room (backpressure, no
    unbounded queue). A flush that raises fails every item of its batch with that error.
    The flush tasks belong to the coalescer; :meth:`aclose` cancels them.
    """

    def __init__(
        self,
        flush: Callable[[Sequence[T]], Awaitable[Sequence[R]]],
        *,
        max_batch: int = 500,
        concurrency: int = 1,
        max_pending: int = 20_000,
    ) -> None:
        if max_batch < 1 or concurrency < 1 or max_pending < 1:
            raise ValueError("max_batch, concurrency and max_pending must be positive")
        self._flush = flush
        self._max_batch = max_batch
        self._concurrency = concurrency
        self._items: list[tuple[T, asyncio.Future[R]]] = []
        self._max_pending = max_pending
        self._in_flight = 0
        # Submitters waiting for room, woken one per finished item. (A plain counter:
        # asyncio.Semaphore costs more per acquire on this hot path.)
        self._room: collections.deque[asyncio.Future[None]] = collections.deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    async def submit(self, item: T) -> R:
        """Queue ``item`` and wait for its result."""
        if self._closed:
            raise RuntimeError("coalescer is closed")
        loop = asyncio.get_running_loop()
        while self._in_flight >= self._max_pending:
            waiter: asyncio.Future[None] = loop.create_future()
            self._room.append(waiter)
            await waiter
        self._in_flight += 1
        try:
            future: asyncio.Future[R] = loop.create_future()
            self._items.append((item, future))
            # A finished task may still be in the set (its done callback runs later).
            if sum(not task.done() for task in self._tasks) < self._concurrency:
                task = asyncio.create_task(self._drain())
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            return await future
        finally:
            self._in_flight -= 1
            while self._room:
                waiter = self._room.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    break

    async def _drain(self) -> None:
        while self._items:
            batch = self._items[: self._max_batch]
            del self._items[: self._max_batch]
            try:
                results = await self._flush([item for item, _ in batch])
            except asyncio.CancelledError:
                for _, future in batch:
                    future.cancel()
                raise
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def aclose(self) -> None:
        """Cancel the running flushes (their submitters get ``CancelledError``)."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for _, future in self._items:
            future.cancel()
        self._items.clear()
