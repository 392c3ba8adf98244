"""The calls one connection has running: each under its own key, found by request id.

A client may reuse a request id while a call with that id still runs (by mistake or on
purpose); every call is still tracked, counted against the connection's cap, waited for
on drain and cancelled when the connection goes. Cancelling *by request id* ends every
running call with that id, sync and async alike (see :meth:`genapi.Executor.cancel`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ..errors import ApiError

__all__ = ["InflightCalls", "UserInflight"]


class InflightCalls:
    """Running sync calls of a connection (async and stream work is the executor's jobs)."""

    __slots__ = ("_account", "_by_id", "_ending", "_next", "_tasks", "limit")

    def __init__(self, limit: int, account: Callable[[int], None] | None = None) -> None:
        self.limit = limit
        self._account = account  # told +1 / -1 as calls start and end (the user's count)
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
        if self._account is not None:
            self._account(1)

    def discard(self, key: int, request_id: str) -> None:
        """The call ended."""
        if self._tasks.pop(key, None) is not None and self._account is not None:
            self._account(-1)
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


class UserInflight:
    """Calls in flight per user across a gateway's connections: sync calls and the acked
    async and stream work they started. Anonymous callers (``None``) are not counted here:
    each of their connections has its own cap."""

    __slots__ = ("_counts", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._counts: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._counts)

    def count(self, user: str | None) -> int:
        """The calls ``user`` has in flight."""
        return 0 if user is None else self._counts.get(user, 0)

    def full(self, user: str | None) -> bool:
        """True when another call of ``user`` would pass the cap."""
        return user is not None and self._counts.get(user, 0) >= self.limit

    def add(self, user: str | None, delta: int) -> None:
        """A call of ``user`` started (+1) or ended (-1); users at zero are forgotten."""
        if user is None:
            return
        count = self._counts.get(user, 0) + delta
        if count > 0:
            self._counts[user] = count
        else:
            self._counts.pop(user, None)
