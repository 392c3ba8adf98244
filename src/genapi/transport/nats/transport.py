"""The gateway side of remote calls over NATS (a :class:`~genapi.transport.Transport`).

Calls are NATS request/reply on ``<prefix>.call.<node>`` under the function's timeout; "no
responders" is reported at once so the executor falls back to the next node. Streams start
with a request/reply handshake (so a missing node is detected the same way), then the node
sends ordered chunks to a private inbox; the gateway acknowledges each chunk once it has
handed it on, and the node pauses when ``window`` chunks are unacknowledged. Abandoned calls
and streams (timeout, cancellation, client gone) are cancelled on the node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec

from ...errors import CallTimeout, NoResponders, TransportError, error_from_wire
from ...messages import Request
from .link import Link, Msg, is_no_responders, is_timeout
from .subjects import Subjects
from .wire import AckMessage, CallMessage, CancelMessage, ChunkMessage, ReplyMessage, encode

__all__ = ["NatsTransport"]

logger = logging.getLogger("genapi.cluster")

_NO_LIMIT = 24 * 3600.0  # "no timeout" still needs a number for a NATS request
_reply_decoder = msgspec.json.Decoder(ReplyMessage)
_chunk_decoder = msgspec.json.Decoder(ChunkMessage)


class NatsTransport:
    """Calls functions on service nodes over a :class:`Link`.

    ``node_alive(name)`` (from the gateway's node directory) lets a stream notice that its
    node is gone; ``stream_window`` is how many chunks a node may send ahead.
    """

    def __init__(
        self,
        link: Link,
        *,
        subjects: Subjects | None = None,
        stream_window: int = 16,
        node_alive: Callable[[str], bool] | None = None,
        idle_check: float = 5.0,
    ) -> None:
        self.link = link
        self.subjects = subjects or Subjects()
        self.stream_window = stream_window
        self.node_alive = node_alive
        self.idle_check = idle_check

    async def call(self, node: str, request: Request, *, timeout: float | None) -> Any:
        """Run ``request`` on ``node``; see :class:`~genapi.transport.Transport`."""
        nc = self.link.client()
        call_id = uuid.uuid4().hex
        message = CallMessage(call_id=call_id, request=request,
                              timeout_ms=None if timeout is None else int(timeout * 1000))
        try:
            reply = await nc.request(self.subjects.call(node), encode(message),
                                     timeout=timeout if timeout is not None else _NO_LIMIT)
        except asyncio.CancelledError:
            await self._cancel(node, call_id)
            raise
        except Exception as exc:
            raise await self._translate(exc, node, call_id, timeout) from exc
        return self._result(reply.data)

    async def _translate(
        self, exc: Exception, node: str, call_id: str, timeout: float | None
    ) -> Exception:
        if is_no_responders(exc):
            return NoResponders(f"no responders for node {node}")
        if is_timeout(exc):
            await self._cancel(node, call_id)
            return CallTimeout(int((timeout or _NO_LIMIT) * 1000))
        return TransportError(f"call to node {node} failed: {exc!r}")

    @staticmethod
    def _result(data: bytes) -> Any:
        try:
            reply = _reply_decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise TransportError(f"malformed reply from node: {exc}") from exc
        if reply.ok:
            return reply.result
        raise error_from_wire(reply.error or "Internal Server Error", can_retry=reply.can_retry)

    async def _cancel(self, node: str, call_id: str) -> None:
        with contextlib.suppress(TransportError):
            await self.link.publish(self.subjects.cancel(node),
                                    encode(CancelMessage(call_id=call_id)))

    async def stream(self, node: str, request: Request, *, timeout: float | None
                     ) -> AsyncIterator[Any]:
        """Run a stream function on ``node``; yield its chunks in order."""
        nc = self.link.client()
        call_id = uuid.uuid4().hex
        inbox = nc.new_inbox()
        chunks: asyncio.Queue[Msg] = asyncio.Queue()

        async def on_chunk(msg: Msg) -> None:
            chunks.put_nowait(msg)  # bounded by the node's window

        subscription = await self.link.subscribe(inbox, on_chunk)
        message = CallMessage(call_id=call_id, request=request, stream=True, inbox=inbox,
                              window=self.stream_window,
                              timeout_ms=None if timeout is None else int(timeout * 1000))
        finished = False
        try:
            try:
                # the handshake: chunks go to ``inbox`` (the reply carries only "started")
                started = await nc.request(self.subjects.call(node), encode(message),
                                           timeout=5.0)
            except Exception as exc:
                raise await self._translate(exc, node, call_id, 5.0) from exc
            self._result(started.data)
            expected = 1
            while True:
                msg = await self._next(chunks, node)
                chunk = _chunk_decoder.decode(msg.data)
                if chunk.seq != expected:
                    raise TransportError(f"stream from {node} lost chunk {expected}")
                expected += 1
                if chunk.kind == "error":
                    finished = True
                    raise error_from_wire(chunk.error or "Internal Server Error",
                                          can_retry=chunk.can_retry)
                if chunk.kind == "end":
                    finished = True
                    return
                yield chunk.data
                if chunk.kind == "last":
                    finished = True
                    return
                with contextlib.suppress(TransportError):
                    await self.link.publish(self.subjects.ack(node),
                                            encode(AckMessage(call_id=call_id, seq=chunk.seq)))
        finally:
            if not finished:
                await self._cancel(node, call_id)
            await self.link.unsubscribe(subscription)

    async def _next(self, chunks: asyncio.Queue[Msg], node: str) -> Msg:
        while True:
            try:
                async with asyncio.timeout(self.idle_check):
                    return await chunks.get()
            except TimeoutError:
                if self.node_alive is not None and not self.node_alive(node):
                    raise NoResponders(f"node {node} went away during a stream") from None
