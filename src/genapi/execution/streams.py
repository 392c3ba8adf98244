"""Stream functions and their helper.

A stream function sends a sequence of chunks to the caller. Write it either as an async
generator, whose yields are the chunks::

    @events.function(response_type="stream")
    async def ticks(count: int):
        for i in range(count):
            yield {"tick": i}

or with a :class:`StreamHelper` parameter (the walkthrough's style)::

    @events.function(response_type="stream")
    async def stream_events(stream: StreamHelper) -> None:
        for i in range(1, 11):
            await stream.send_result({"event": "tick", "number": i})
        await stream.send_last_result({"event": "done", "total": 10})

A plain (non-async) function receives a :class:`ThreadStreamHelper` with the same methods,
blocking instead of awaiting. Declare the chunk type — ``AsyncIterator[Tick]`` as a
generator's return type, or ``stream: StreamHelper[Tick]`` — and chunks are encoded from
it (a Struct, dataclass or pydantic model becomes JSON) and exported in the schemas.
The caller receives the ``"init"`` acknowledgement, then the
chunks (``has_more: true``) in order, then exactly one terminator: the last chunk, a stream
end, or an error — also when the stream times out, is cancelled or crashes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import ClassVar, Generic, TypeVar

from ..errors import StreamClosed
from ..messages import Response

__all__ = ["StreamClosed", "StreamHelper", "ThreadStreamHelper"]

Emit = Callable[[Response], Awaitable[None]]
T = TypeVar("T")


class StreamHelper(Generic[T]):
    """Sends the chunks of one stream (see the module docs). Injected by parameter type."""

    __genapi_inject__: ClassVar[str] = "stream"

    def __init__(self, request_id: str, emit: Emit) -> None:
        self.request_id = request_id
        self._emit = emit
        self.finished = False
        self.sent = 0

    def _check(self) -> None:
        if self.finished:
            raise StreamClosed()

    async def send_result(self, data: T) -> None:
        """Send a chunk with more to come."""
        self._check()
        self.sent += 1
        await self._emit(Response.stream_chunk(self.request_id, data))

    async def send_last_result(self, data: T) -> None:
        """Send the final chunk (with data); the stream ends."""
        self._check()
        self.finished = True
        self.sent += 1
        await self._emit(Response.stream_last(self.request_id, data))

    async def send_complete(self) -> None:
        """End the stream without data."""
        self._check()
        self.finished = True
        await self._emit(Response.stream_end(self.request_id))

    async def send_error(self, reason: str = "Internal Server Error") -> None:
        """End the stream with an error message."""
        self._check()
        self.finished = True
        await self._emit(Response.fail(self.request_id, reason))


class ThreadStreamHelper(Generic[T]):
    """The :class:`StreamHelper` of a plain function running in a worker thread.

    Its methods block the thread until the chunk is handed to the connection.
    """

    __genapi_inject__: ClassVar[str] = "stream"

    def __init__(self, helper: StreamHelper[T], loop: asyncio.AbstractEventLoop) -> None:
        self._helper = helper
        self._loop = loop

    @property
    def finished(self) -> bool:
        """True once a terminator was sent."""
        return self._helper.finished

    def _run(self, coro: Awaitable[None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result()  # type: ignore[arg-type]

    def send_result(self, data: T) -> None:
        """Send a chunk with more to come."""
        self._run(self._helper.send_result(data))

    def send_last_result(self, data: T) -> None:
        """Send the final chunk (with data); the stream ends."""
        self._run(self._helper.send_last_result(data))

    def send_complete(self) -> None:
        """End the stream without data."""
        self._run(self._helper.send_complete())

    def send_error(self, reason: str = "Internal Server Error") -> None:
        """End the stream with an error message."""
        self._run(self._helper.send_error(reason))
