"""One long-poll session: a ``genapi.direct`` channel for a :class:`Connection` whose
frames wait in a bounded buffer until the client's next poll takes them.

The gateway's connection logic (joins, calls, pushes, relay, drain) is the WebSocket's:
the session only moves frames. A poll takes everything buffered, or waits up to the
window for something to arrive; a newer poll answers an older one at once (empty). The
buffer is bounded like a socket's outgoing queue: a client that stops polling while
frames pile up is dropped (and rejoins with a new session).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

from ..settings import CLOSE_POLICY

__all__ = ["LongPollSession", "SessionConsumer"]

logger = logging.getLogger("genapi.gateway")


class SessionConsumer(Protocol):
    """The connection a session feeds (what ``genapi.direct`` gives it)."""

    def feed(self, data: str | bytes) -> None:
        """Process one incoming message."""

    def disconnected(self) -> None:
        """The client went away."""

    def close(self, code: int, *, flush: bool = True, reason: str = "") -> None:
        """Close the connection."""


class LongPollSession:
    """The server side of one long-poll client (see the module docs)."""

    writable = True

    def __init__(self, session: str, token: str, *, max_messages: int, max_bytes: int) -> None:
        self.session = session
        self.token = token
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.consumer: SessionConsumer | None = None
        self.closed: int | None = None  # the close code once the connection ended
        self.last_poll = time.monotonic()
        self.polling = 0
        self._frames: list[str] = []
        self._bytes = 0
        self._waiter: asyncio.Future[None] | None = None

    # -- the genapi.direct channel (what the Connection calls) ---------------------------

    def attach(self, consumer: SessionConsumer) -> None:
        """The connection to feed."""
        self.consumer = consumer

    def write(self, frames: list[str | bytes]) -> None:
        """Buffer frames for the next poll (binary frames cannot travel over long poll)."""
        for frame in frames:
            if isinstance(frame, bytes):
                logger.warning("a binary frame cannot be sent over long poll; dropped")
                continue
            self._frames.append(frame)
            self._bytes += len(frame)
        if len(self._frames) > self.max_messages or self._bytes > self.max_bytes:
            logger.warning("closing a long-poll session that stopped polling "
                           "(%d frames, %d bytes waiting)", len(self._frames), self._bytes)
            self._frames.clear()
            self._bytes = 0
            if self.consumer is not None:
                self.consumer.close(CLOSE_POLICY, flush=False)
        self._wake()

    def close(self, code: int, reason: str = "") -> None:
        """The connection ended (the gateway closed it, or it drains): polls get 410."""
        self.closed = code
        self._wake()

    # -- the client's requests -----------------------------------------------------------

    async def poll(self, window: float) -> list[str] | None:
        """What the client gets: the buffered frames (possibly none after ``window``), or
        None when the session is gone."""
        self.polling += 1
        try:
            if not self._frames and self.closed is None:
                if self._waiter is not None and not self._waiter.done():
                    self._waiter.set_result(None)  # a newer poll answers the older one
                waiter = self._waiter = asyncio.get_running_loop().create_future()
                try:
                    async with asyncio.timeout(window):
                        await waiter
                except TimeoutError:
                    pass
                if waiter is not self._waiter:  # superseded: answer empty, keep the frames
                    return []
            if self.closed is not None and not self._frames:
                return None
            frames, self._frames, self._bytes = self._frames, [], 0
            return frames
        finally:
            self.polling -= 1
            self.last_poll = time.monotonic()

    def publish(self, messages: list[str]) -> None:
        """Hand the client's messages to the connection, in order."""
        consumer = self.consumer
        if consumer is None:
            return
        for message in messages:
            consumer.feed(message)

    def expire(self) -> None:
        """The client stopped polling: its connection ends like a closed socket's."""
        if self.consumer is not None and self.closed is None:
            self.consumer.disconnected()
        self.closed = self.closed or 1001
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
