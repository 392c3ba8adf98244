"""A group's recent messages: a bounded ring with increasing offsets, for recovery.

A member that comes back with the offset of the last message it saw asks
:meth:`History.since` for what followed. When the ring still holds everything after that
offset the answer is ``recovered=True``; when messages were evicted (by count or age)
it is ``recovered=False`` with what is left, so the client knows it has a gap.

The clock is injected (seconds); nothing here sleeps or reads the time itself.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from ..errors import ConfigError

__all__ = ["History", "Recovery", "RelayMessage", "iso_timestamp"]


def iso_timestamp(seconds: float) -> str:
    """ISO-8601 UTC with microseconds, as the reference sends: ``2025-01-15T10:30:00.123456Z``."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class RelayMessage(msgspec.Struct, frozen=True, kw_only=True, tag="message"):
    """One message sent to a group.

    ``offset`` is 0 until the bus assigns it. ``request_id`` is the sender's request id
    (members receive the message as a Response with that id); ``origin`` names the
    sending connection, which gets the call's answer instead of a copy.
    """

    group_id: str
    from_user_id: str
    message: Any
    timestamp: str
    sent_at: float
    request_id: str = "relay"
    origin: str | None = None
    offset: int = 0

    def payload(self) -> dict[str, Any]:
        """The result members receive: group_id, from_user_id, message, timestamp, offset."""
        return {
            "group_id": self.group_id,
            "from_user_id": self.from_user_id,
            "message": self.message,
            "timestamp": self.timestamp,
            "offset": self.offset,
        }


@dataclass(frozen=True, slots=True)
class Recovery:
    """Messages after an offset; ``recovered`` is False when some were no longer kept.

    ``offset`` is the group's latest offset (0 before the first message).
    """

    messages: list[RelayMessage]
    recovered: bool
    offset: int


class History:
    """The last ``max_messages`` messages of one group, none older than ``max_age`` s."""

    __slots__ = ("_clock", "_items", "evicted_through", "last_offset", "max_age", "max_messages")

    def __init__(
        self, *, max_messages: int, max_age: float | None, clock: Callable[[], float]
    ) -> None:
        if max_messages < 0:
            raise ConfigError("max_messages must not be negative")
        if max_age is not None and max_age <= 0:
            raise ConfigError("max_age must be positive (or None for no age limit)")
        self.max_messages = max_messages
        self.max_age = max_age
        self._clock = clock
        self._items: deque[RelayMessage] = deque()
        self.last_offset = 0
        self.evicted_through = 0  # every offset up to this one is gone

    def __len__(self) -> int:
        return len(self._items)

    def append(self, message: RelayMessage) -> RelayMessage:
        """Record ``message`` under the next offset; returns it with the offset set."""
        self.last_offset += 1
        stored = msgspec.structs.replace(message, offset=self.last_offset)
        self._items.append(stored)
        while len(self._items) > self.max_messages:
            self.evicted_through = self._items.popleft().offset
        if self.max_messages == 0:
            self.evicted_through = self.last_offset
        self._expire()
        return stored

    def since(self, offset: int | None) -> Recovery:
        """Messages after ``offset`` (None: none, just the latest offset).

        An offset beyond the latest one (say, from before the group was recreated) is
        not covered: ``recovered=False`` and no messages.
        """
        self._expire()
        if offset is None:
            return Recovery([], True, self.last_offset)
        if offset > self.last_offset:
            return Recovery([], False, self.last_offset)
        items = self._items
        # offsets in the ring are consecutive, so the first wanted one is found by index
        start = max(0, offset + 1 - items[0].offset) if items else 0
        messages = list(itertools.islice(items, start, None))
        return Recovery(messages, offset >= self.evicted_through, self.last_offset)

    def _expire(self) -> None:
        if self.max_age is None:
            return
        horizon = self._clock() - self.max_age
        items = self._items
        while items and items[0].sent_at < horizon:
            self.evicted_through = items.popleft().offset
