"""A connection's bounded outgoing queue.

Frames are queued by whoever produces them (replies, pushes, relay fan-out) and written by
one writer task per connection, so a slow socket never blocks the producers. The queue is
bounded by a message count and a byte total; a client that stops reading fills it and is
disconnected, never allowed to grow the gateway's memory.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Sequence

from ..errors import OutboxOverflow
from .lazy import Flag

__all__ = ["Outbox", "OutboxOverflow"]

Frame = str | bytes


class Outbox:
    """FIFO of frames with message and byte limits, drained by :meth:`run`.

    An idle connection's outbox is empty nearly always: its deque and its wake-up flag
    are made when first needed (a deque costs ~740 bytes even empty).
    """

    __slots__ = ("_closed", "_frames", "_wakeup", "bytes", "max_bytes", "max_messages")

    def __init__(self, max_messages: int, max_bytes: int) -> None:
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.bytes = 0
        self._frames: deque[Frame] | None = None
        self._wakeup = Flag()
        self._closed = False

    @property
    def frames(self) -> Sequence[Frame]:
        """The queued frames, oldest first (read-only)."""
        return self._frames if self._frames is not None else ()

    def __len__(self) -> int:
        return len(self._frames) if self._frames is not None else 0

    def put(self, frame: Frame) -> None:
        """Queue a frame; raise :class:`OutboxOverflow` if a limit would be exceeded."""
        if self._closed:
            return
        size = len(frame)
        frames = self._frames
        if frames is None:
            frames = self._frames = deque()
        if len(frames) >= self.max_messages or self.bytes + size > self.max_bytes:
            raise OutboxOverflow(
                f"outgoing queue full ({len(frames)} messages, {self.bytes} bytes)"
            )
        frames.append(frame)
        self.bytes += size
        self._wakeup.set()

    def take_all(self) -> list[Frame]:
        """Remove and return every queued frame (for writers that batch)."""
        frames = list(self._frames or ())
        self._frames = None
        self.bytes = 0
        return frames

    def close(self) -> None:
        """Stop accepting frames and let :meth:`run` finish what is queued."""
        self._closed = True
        self._wakeup.set()

    async def run(self, write: Callable[[Frame], Awaitable[None]]) -> None:
        """Write queued frames in order until closed and empty."""
        while True:
            while self._frames:
                frame = self._frames.popleft()
                self.bytes -= len(frame)
                await write(frame)
            self._frames = None
            if self._closed:
                return
            self._wakeup.clear()
            await self._wakeup.wait()
