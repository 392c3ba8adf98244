"""The calls one connection has running: each under its own key, found by request id.

A client may reuse a request id while a call with that id still runs (by mistake or on
purpose); every call is still tracked, counted against the connection's cap, waited for
on drain and cancelled when the connection goes. Cancelling *by request id* ends every
running call with that id, sync and async alike (see :meth:`genapi.Executor.cancel`).
"""

from __future__ import annotations

import asyncio

from ..errors import ApiError

__all__ = ["InflightCalls"]


class InflightCalls:
    """Running sync calls of a connection (async and stream work is the executor's jobs)."""

    __slots__ = ("_by_id", "_ending", "_next", "_tasks", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._next = 0
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._by_id: dict[str, set[int]] = {}
        self._ending: dict[int, ApiError] = {}

    def __len__(self) -> int:
        return len(self._tasks)

    @property
    def full(self) -> bool:
        """True when another call would pass the connection's cap."""
        return len(self._tasks) >= self.limit

    def new_key(self) -> int:
        """A key no other call of this connection has."""
        self._next += 1
        return self._next

    def add(self, key: int, request_id: str, task: asyncio.Task[None]) -> None:
        """Track a call that is still running (one that finished at once is not added)."""
        self._tasks[key] = task
        self._by_id.setdefault(request_id, set()).add(key)

    def discard(self, key: int, request_id: str) -> None:
        """The call ended."""
        self._tasks.pop(key, None)
        self._ending.pop(key, None)
        keys = self._by_id.get(request_id)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_id[request_id]

    def tasks(self) -> list[asyncio.Task[None]]:
        """The running calls' tasks."""
        return list(self._tasks.values())

    def end(self, request_id: str, error: ApiError) -> int:
        """End every running call with ``request_id``, answering ``error``; how many."""
        ended = 0
        for key in list(self._by_id.get(request_id, ())):
            ended += self._end_key(key, error)
        return ended

    def end_all(self, error: ApiError) -> int:
        """End every running call, answering ``error``; how many."""
        return sum(self._end_key(key, error) for key in list(self._tasks))

    def ending(self, key: int) -> ApiError | None:
        """The error to answer for a call ended on purpose (None: it was not)."""
        return self._ending.get(key)

    def _end_key(self, key: int, error: ApiError) -> int:
        task = self._tasks.get(key)
        if task is None or task.done() or key in self._ending:
            return 0
        self._ending[key] = error
        task.cancel()
        return 1
