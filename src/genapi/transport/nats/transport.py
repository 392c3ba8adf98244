"""The gateway side of remote calls over NATS (a :class:`~genapi.transport.Transport`).

Calls are requests on ``<prefix>.call.<node>`` whose replies come back on one inbox
subscription per gateway (a future per call, no task), under the function's timeout; "no
responders" is reported at once so the executor falls back to the next node. Streams start
with the same request/reply handshake, then the node sends numbered chunks to a private
inbox; the gateway acknowledges each chunk once handed on, and the node pauses when
``window`` chunks are unacknowledged.

What ends a call early, with a retryable error:

* the node is declared dead (silent past the grace period: :meth:`NatsTransport.node_down`)
  → its calls fail with :class:`~genapi.NodeLost`, its streams with ``Stream interrupted``;
* this gateway loses its NATS connection → every call fails with
  :class:`~genapi.TransportUnavailable` (no node is to blame), every stream is interrupted;
* a stream misses a chunk (a gap in the numbers, also seen in the node's keepalives) or
  hears nothing, not even a keepalive, for ``stream_idle`` seconds → ``Stream interrupted``.

Abandoned calls and streams (timeout, cancellation, client gone) are cancelled on the node.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec

from ...errors import (
    CallTimeout,
    NodeLost,
    NoResponders,
    StreamInterrupted,
    TransportError,
    TransportUnavailable,
    error_from_wire,
)
from ...messages import Request
from .link import Link, Msg
from .subjects import Subjects
from .wire import AckMessage, CallMessage, CancelMessage, ChunkMessage, ReplyMessage, encode

__all__ = ["NatsTransport"]

logger = logging.getLogger("genapi.cluster")

_HANDSHAKE_TIMEOUT = 5.0
_reply_decoder = msgspec.json.Decoder(ReplyMessage)
_chunk_decoder = msgspec.json.Decoder(ChunkMessage)


class _Waiter:
    """One call awaiting its reply."""

    __slots__ = ("future", "node")

    def __init__(self, future: asyncio.Future[Msg], node: str) -> None:
        self.future = future
        self.node = node


class _Stream:
    """One open stream: its node and the queue its chunks (or its end) arrive on."""

    __slots__ = ("node", "queue")

    def __init__(self, node: str) -> None:
        self.node = node
        self.queue: asyncio.Queue[Msg | BaseException] = asyncio.Queue()


class NatsTransport:
    """Calls functions on service nodes over a :class:`Link` (see the module docs).

    ``stream_window`` is how many chunks a node may send ahead; ``stream_idle`` how long a
    stream may stay silent (nodes send a keepalive every third of it).
    """

    def __init__(
        self,
        link: Link,
        *,
        subjects: Subjects | None = None,
        stream_window: int = 16,
        stream_idle: float = 3.0,
    ) -> None:
        self.link = link
        self.subjects = subjects or Subjects()
        self.stream_window = stream_window
        self.stream_idle = stream_idle
        self._inbox: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the link's, once it is used
        self._mux: Any = None
        self._mux_lock = asyncio.Lock()
        self._tokens = itertools.count()
        # Call ids are unique across gateways (a node keys its in-flight work by them) and
        # cheaper than a uuid4 per call: a random prefix per transport, then a counter.
        self._call_prefix = secrets.token_hex(8) + "-"
        self._call_ids = itertools.count(1)
        self._call_subjects: dict[str, str] = {}
        self._waiting: dict[str, _Waiter] = {}
        self._streams: dict[str, _Stream] = {}
        link.on_lost(self._link_lost)

    # -- what ends calls early -----------------------------------------------------------

    def node_down(self, node: str, reason: str = "silent") -> int:
        """``node`` was declared dead: end its calls and streams now; how many.

        A node that *left* (it drains) keeps its in-flight work: only ``"silent"`` ends it.
        """
        if reason != "silent":
            return 0
        error = NodeLost(f"node {node} stopped answering with the call in flight")
        ended = _fail([w for w in self._waiting.values() if w.node == node], error)
        for stream in self._streams.values():
            if stream.node == node:
                stream.queue.put_nowait(StreamInterrupted(details={"node": node,
                                                                   "reason": "node lost"}))
                ended += 1
        if ended:
            logger.warning("node %s presumed dead: %d call(s) in flight ended", node, ended)
        return ended

    def _link_lost(self) -> None:
        error = TransportUnavailable("lost the NATS connection with the call in flight")
        ended = _fail(list(self._waiting.values()), error)
        for stream in self._streams.values():
            stream.queue.put_nowait(StreamInterrupted(details={"reason": "NATS connection lost"}))
        if ended or self._streams:
            logger.warning("NATS connection lost: %d call(s) and %d stream(s) in flight ended",
                           ended, len(self._streams))

    # -- calls ---------------------------------------------------------------------------

    async def call(self, node: str, request: Request, *, timeout: float | None) -> Any:
        """Run ``request`` on ``node``; see :class:`~genapi.transport.Transport`."""
        call_id = self._new_call_id()
        message = CallMessage(call_id=call_id, request=request,
                              timeout_ms=None if timeout is None else int(timeout * 1000))
        try:
            reply = await self._request(node, encode(message), timeout)
        except CallTimeout:
            await self._cancel(node, call_id)
            raise
        except (asyncio.CancelledError, NodeLost):
            await self._cancel(node, call_id)
            raise
        return self._result(reply.data)

    def _new_call_id(self) -> str:
        return f"{self._call_prefix}{next(self._call_ids)}"

    def _call_subject(self, node: str) -> str:
        subject = self._call_subjects.get(node)
        if subject is None:  # validated once per node, not per call
            subject = self._call_subjects[node] = self.subjects.call(node)
        return subject

    async def _request(self, node: str, payload: bytes, timeout: float | None) -> Msg:
        """Publish a call to ``node`` and await its reply on the shared inbox."""
        inbox = self._inbox or await self._reply_inbox()
        token = str(next(self._tokens))
        loop = self._loop or asyncio.get_running_loop()
        future: asyncio.Future[Msg] = loop.create_future()
        self._waiting[token] = _Waiter(future, node)
        # A timer on the future, not asyncio.timeout(): no task bookkeeping per call.
        timer = loop.call_later(timeout, _expire, future, timeout) if timeout is not None else None
        try:
            await self.link.publish(self._call_subject(node), payload, reply=inbox + token)
            reply = await future
        finally:
            self._waiting.pop(token, None)
            if timer is not None:
                timer.cancel()
        # With no subscriber the server answers at once with an empty 503 status.
        if not reply.data and reply.headers and reply.headers.get("Status") == "503":
            raise NoResponders(f"no responders for node {node}")
        return reply

    async def _reply_inbox(self) -> str:
        async with self._mux_lock:
            if self._inbox is None:
                prefix = self.link.client().new_inbox()
                self._mux = await self.link.subscribe(prefix + ".*", self._on_reply)
                self._inbox = prefix + "."
                # Asked once: on 3.11 every get_running_loop() is a getpid() system call.
                self._loop = asyncio.get_running_loop()
        return self._inbox

    async def _on_reply(self, msg: Msg) -> None:
        waiter = self._waiting.pop(msg.subject.rpartition(".")[2], None)
        if waiter is not None and not waiter.future.done():
            waiter.future.set_result(msg)

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
        with contextlib.suppress(TransportError):  # gone with the connection: nothing runs
            await self.link.publish(self.subjects.cancel(node),
                                    encode(CancelMessage(call_id=call_id)))

    # -- streams -------------------------------------------------------------------------

    async def stream(self, node: str, request: Request, *, timeout: float | None
                     ) -> AsyncIterator[Any]:
        """Run a stream function on ``node``; yield its chunks in order."""
        nc = self.link.client()
        call_id = self._new_call_id()
        inbox = nc.new_inbox()
        stream = self._streams[call_id] = _Stream(node)
        subscription = None
        finished = False
        try:
            subscription = await self.link.subscribe(inbox, self._chunk_handler(stream))
            message = CallMessage(call_id=call_id, request=request, stream=True, inbox=inbox,
                                  window=self.stream_window,
                                  keepalive_ms=int(self.stream_idle * 1000 / 3),
                                  timeout_ms=None if timeout is None else int(timeout * 1000))
            # the handshake: chunks go to ``inbox`` (the reply carries only "started")
            self._result((await self._request(node, encode(message),
                                              _HANDSHAKE_TIMEOUT)).data)
            expected = 1
            while True:
                chunk = _chunk_decoder.decode((await self._next(stream)).data)
                if chunk.kind == "keepalive":  # carries the last number the node sent
                    if chunk.seq >= expected:
                        raise _gap(node, expected)
                    continue
                if chunk.seq != expected:
                    raise _gap(node, expected)
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
                with contextlib.suppress(TransportError):  # the next ack covers this one
                    await self.link.publish(self.subjects.ack(node),
                                            encode(AckMessage(call_id=call_id, seq=chunk.seq)))
        finally:
            self._streams.pop(call_id, None)
            if not finished:
                await self._cancel(node, call_id)
            if subscription is not None:
                await self.link.unsubscribe(subscription)

    @staticmethod
    def _chunk_handler(stream: _Stream) -> Callable[[Msg], Any]:
        async def on_chunk(msg: Msg) -> None:
            stream.queue.put_nowait(msg)  # bounded by the node's window (and its keepalives)

        return on_chunk

    async def _next(self, stream: _Stream) -> Msg:
        try:
            async with asyncio.timeout(self.stream_idle):
                item = await stream.queue.get()
        except TimeoutError:
            raise StreamInterrupted(details={"node": stream.node, "reason": "silent"}) from None
        if isinstance(item, BaseException):
            raise item
        return item


def _gap(node: str, expected: int) -> StreamInterrupted:
    return StreamInterrupted(details={"node": node, "reason": f"chunk {expected} lost"})


def _expire(future: asyncio.Future[Msg], timeout: float) -> None:
    if not future.done():
        future.set_exception(CallTimeout(int(timeout * 1000)))


def _fail(waiters: list[_Waiter], error: Exception) -> int:
    failed = 0
    for waiter in waiters:
        if not waiter.future.done():
            waiter.future.set_exception(error)
            failed += 1
    return failed
