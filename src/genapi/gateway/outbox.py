"""A connection's bounded outgoing queue.

Frames are queued by whoever produces them (replies, pushes, relay fan-out) and written by
one writer task per connection, so a slow socket never blocks the producers. The queue is
bounded by a message count and a byte total; a client that stops reading fills it and is
disconnected, never allowed to grow the gateway's memory.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

from ..errors import OutboxOverflow

__all__ = ["Outbox", "OutboxOverflow"]

Frame = str | bytes


class Outbox:
    """FIFO of frames with message and byte limits, drained by :meth:`run`."""

    __slots__ = ("_closed", "_wakeup", "bytes", "frames", "max_bytes", "max_messages")

    def __init__(self, max_messages: int, max_bytes: int) -> None:
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.bytes = 0
        #: The queued frames, oldest first (read-only for others).
        self.frames: deque[Frame] = deque()
        self._wakeup = asyncio.Event()
        self._closed = False

    def __len__(self) -> int:
        return len(self.frames)

    def put(self, frame: Frame) -> None:
        """Queue a frame; raise :class:`OutboxOverflow` if a limit would be exceeded."""
        if self._closed:
            return
        size = len(frame)
        if len(self.frames) >= self.max_messages or self.bytes + size > self.max_bytes:
            raise OutboxOverflow(
                f"outgoing queue full ({len(self.frames)} messages, {self.bytes} bytes)"
            )
        self.frames.append(frame)
        self.bytes += size
        self._wakeup.set()

    def take_all(self) -> list[Frame]:
        """Remove and return every queued frame (for writers that batch)."""
        frames = list(self.frames)
        self.frames.clear()
        self.bytes = 0
        return frames

    def close(self) -> None:
        """Stop accepting frames and let :meth:`run` finish what is queued."""
        self._closed = True
        self._wakeup.set()

    async def run(self, write: Callable[[Frame], Awaitable[None]]) -> None:
        """Write queued frames in order until closed and empty."""
        frames = self.frames
        while True:
            while frames:
                frame = frames.popleft()
                self.bytes -= len(frame)
                await write(frame)
            if self._closed:
                return
            self._wakeup.clear()
            await self._wakeup.wait()
