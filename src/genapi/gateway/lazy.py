"""Per-connection asyncio primitives that cost nothing until someone waits.

An idle WebSocket holds several events and a queue that are rarely awaited. Each
``asyncio.Event`` allocates a ``deque`` of waiters (~740 bytes with its block) and an
``asyncio.Queue`` four of them, about 6 KB per connection before anything happens.
:class:`Flag` and :class:`Inbox` allocate their waiter (one future) only when a coroutine
actually waits, and drop it afterwards.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Flag", "Inbox"]

T = TypeVar("T")


class Flag:
    """``asyncio.Event``'s ``set``/``clear``/``is_set``/``wait``, waiters made on demand."""

    __slots__ = ("_set", "_waiters", "on_set")

    def __init__(self, value: bool = False) -> None:
        self._set = value
        self._waiters: list[asyncio.Future[None]] | None = None
        #: Called once, by the next :meth:`set` (instead of a task waiting for it).
        self.on_set: Callable[[], None] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        if self._set:
            return
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)
        callback, self.on_set = self.on_set, None  # once; and no cycle through it after
        if callback is not None:
            callback()

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        if self._set:
            return True
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            waiters = self._waiters
            if waiters is not None and waiter in waiters:  # cancelled before set()
                waiters.remove(waiter)
                if not waiters:
                    self._waiters = None
        return True


class Inbox(Generic[T]):
    """The part of ``asyncio.Queue`` (unbounded) uvicorn's WebSocket protocol uses, for one
    consumer at a time: ``put_nowait``, ``get``, ``get_nowait``, ``empty``, ``qsize``. The
    item deque exists only while items wait."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: deque[T] | None = None
        self._waiter: asyncio.Future[None] | None = None

    def qsize(self) -> int:
        return len(self._items) if self._items else 0

    def empty(self) -> bool:
        return not self._items

    def put_nowait(self, item: T) -> None:
        if self._items is None:
            self._items = deque()
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def get_nowait(self) -> T:
        items = self._items
        if not items:
            raise asyncio.QueueEmpty
        item = items.popleft()
        if not items:
            self._items = None
        return item

    async def get(self) -> T:
        while not self._items:
            self._waiter = waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        return self.get_nowait()
