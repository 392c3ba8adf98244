"""Presence diffs: a group's joins and leaves, batched per interval into one notice.

Sending every member a notice for every join makes a group of N members cost
N(N+1)/2 frames to set up (500,500 for 1,000 members). As Phoenix Presence does with
``presence_diff``, a hub instead collects the joins and leaves of each group and, at most
once per ``interval``, delivers one notice to the group's members::

    {"group_id": "room", "presence": "diff",
     "joins": {"bob": {"status": "active", "role": "member"}},
     "leaves": {"carol": {"status": null, "role": "member"}}}

Setting up a group of N members then costs N frames per interval the joins take, not N².

Only the latest change of a user within an interval is kept, so a user is in ``joins``
or in ``leaves``, never both: a client applies a diff to the presence it has (remove the
leaves, add or update the joins) and, whatever snapshot (``presence`` call) it started
from, ends with the group's presence — the same as applying every single notice. A diff
goes to every receiving member, the joiners included (who may find themselves in it).

Order: any other notice or message of a group first flushes the group's pending diff, so
what a member receives stays in the order the events happened (a join is seen before
the joiner's first message).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

__all__ = ["PresenceDiffs"]


class PresenceDiffs:
    """Pending presence changes per group; ``deliver(group_id, notice)`` sends a diff."""

    __slots__ = ("_deliver", "_interval", "_pending", "_timers")

    def __init__(self, deliver: Callable[[str, dict[str, Any]], None],
                 interval: float) -> None:
        self._deliver = deliver
        self._interval = interval
        #: group → user → (joined, meta): the latest change of each user
        self._pending: dict[str, dict[str, tuple[bool, dict[str, Any]]]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def __len__(self) -> int:
        """How many groups have a diff waiting."""
        return len(self._pending)

    def add(self, group_id: str, user_id: str, joined: bool, meta: dict[str, Any]) -> None:
        """Record that ``user_id`` joined (``joined``) or left the group."""
        pending = self._pending.get(group_id)
        if pending is None:
            pending = self._pending[group_id] = {}
            self._timers[group_id] = asyncio.get_running_loop().call_later(
                self._interval, self.flush, group_id)
        pending.pop(user_id, None)  # re-inserted: the diff lists users by latest change
        pending[user_id] = (joined, meta)

    def flush(self, group_id: str) -> None:
        """Deliver the group's pending diff now (nothing when there is none)."""
        pending = self._pending.pop(group_id, None)
        timer = self._timers.pop(group_id, None)
        if timer is not None:
            timer.cancel()
        if not pending:
            return
        joins = {user: meta for user, (joined, meta) in pending.items() if joined}
        leaves = {user: meta for user, (joined, meta) in pending.items() if not joined}
        self._deliver(group_id, {"group_id": group_id, "presence": "diff",
                                 "joins": joins, "leaves": leaves})

    def flush_all(self) -> None:
        """Deliver every pending diff now."""
        for group_id in list(self._pending):
            self.flush(group_id)

    def drop(self, group_id: str) -> None:
        """Forget the group's pending diff (the group is gone)."""
        self._pending.pop(group_id, None)
        timer = self._timers.pop(group_id, None)
        if timer is not None:
            timer.cancel()

    def close(self) -> None:
        """Forget everything pending; no timer stays scheduled."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._pending.clear()
