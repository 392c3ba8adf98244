"""One WebSocket connection: the asyncio glue around the sans-I/O protocol core.

A reader task feeds frames to :class:`~genapi.protocol.phoenix.ServerConnection`, starts
one task per ``api`` push and answers joins; a writer task drains the bounded
:class:`~genapi.gateway.outbox.Outbox`. The connection owns its call tasks: they are
cancelled when the socket goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from ..errors import DecodeError, InvalidRequest, ServiceUnavailable
from ..messages import Request, Response, decode_request
from ..protocol.phoenix import (
    ChannelClosed,
    CloseRequested,
    ConnectionState,
    Event,
    JoinRequested,
    MessageReceived,
    Serializer,
    ServerConnection,
)
from .auth import Identity
from .outbox import Frame, Outbox, OutboxOverflow
from .settings import CLOSE_GOING_AWAY, CLOSE_POLICY, CLOSE_TOO_BIG

if TYPE_CHECKING:
    from .app import Gateway

__all__ = ["Connection"]

logger = logging.getLogger("genapi.gateway")

ASGISend = Callable[[dict[str, Any]], Awaitable[None]]
ASGIReceive = Callable[[], Awaitable[dict[str, Any]]]


class _RequestId(msgspec.Struct):
    request_id: str | None = None


_request_id_decoder = msgspec.json.Decoder(_RequestId)


def _peek_request_id(raw: bytes) -> str:
    try:
        return _request_id_decoder.decode(raw).request_id or "unknown"
    except (msgspec.DecodeError, UnicodeDecodeError):
        return "unknown"


class Connection:
    """A client connection of a :class:`~genapi.Gateway`."""

    def __init__(
        self,
        gateway: Gateway,
        send: ASGISend,
        identity: Identity,
        serializer: Serializer,
        ip_address: str | None,
    ) -> None:
        limits = gateway.limits
        self.gateway = gateway
        self.identity = identity
        self.ip_address = ip_address
        self.core = ServerConnection(
            serializer,
            topics=gateway.topic_router,
            max_channels=limits.max_channels,
            idle_timeout=limits.heartbeat_timeout,
        )
        self.outbox = Outbox(limits.max_queue_messages, limits.max_queue_bytes)
        self.calls: dict[str, asyncio.Task[None]] = {}
        self._send = send
        self._reader: asyncio.Task[None] | None = None
        self._close_code: int | None = None
        self._flush_on_close = True
        self._peer_gone = False
        self.finished = asyncio.Event()

    # -- lifecycle ----------------------------------------------------------------------

    async def serve(self, receive: ASGIReceive) -> None:
        """Run until the client disconnects or the gateway closes the connection."""
        writer = asyncio.create_task(self.outbox.run(self._write), name="genapi-writer")
        self._reader = asyncio.create_task(self._read(receive), name="genapi-reader")
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        finally:
            try:
                await self._teardown(writer)
            finally:
                self.finished.set()

    def close(self, code: int, *, flush: bool = True) -> None:
        """Close the connection with ``code`` (queued frames are written first if ``flush``)."""
        if self._close_code is not None:
            return
        self._close_code = code
        self._flush_on_close = flush
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()

    @property
    def closing(self) -> bool:
        """True once a close was decided."""
        return self._close_code is not None or self._peer_gone

    async def _teardown(self, writer: asyncio.Task[None]) -> None:
        for task in list(self.calls.values()):
            task.cancel()
        if self.core.state is not ConnectionState.CLOSED:
            for event in self.core.connection_lost():
                if isinstance(event, ChannelClosed):
                    self._on_channel_closed(event)
        self.outbox.close()
        if self._peer_gone or not self._flush_on_close:
            writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            async with asyncio.timeout(2.0):
                await writer
        writer.cancel()
        if not self._peer_gone:
            with contextlib.suppress(Exception):
                await self._send({"type": "websocket.close", "code": self._close_code or 1001})
        if self.calls:
            await asyncio.gather(*self.calls.values(), return_exceptions=True)

    # -- reading ------------------------------------------------------------------------

    async def _read(self, receive: ASGIReceive) -> None:
        max_frame = self.gateway.limits.max_frame_bytes
        core = self.core
        stats = self.gateway.stats
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "websocket.disconnect":
                self._peer_gone = True
                return
            if kind != "websocket.receive":
                continue
            data = message.get("text")
            if data is None:
                data = message.get("bytes") or b""
            if len(data) > max_frame:
                stats.oversize_frames += 1
                self.close(CLOSE_TOO_BIG, flush=False)
                return
            for event in core.receive(data):
                await self._dispatch(event)
            self.flush()
            if core.state is not ConnectionState.OPEN:
                if self._close_code is None:
                    stats.malformed_frames += 1
                    self._close_code = core.close_code or 1011
                return

    async def _dispatch(self, event: Event) -> None:
        if isinstance(event, MessageReceived):
            self._on_message(event)
        elif isinstance(event, JoinRequested):
            await self._on_join(event)
        elif isinstance(event, ChannelClosed):
            self._on_channel_closed(event)
        elif isinstance(event, CloseRequested):
            logger.info("closing a connection from %s: %s", self.ip_address, event.reason)

    async def _on_join(self, event: JoinRequested) -> None:
        authorize = self.gateway.join_authorizer
        if authorize is None:
            self.core.accept_join(event)
            return
        try:
            verdict = authorize(event.topic, event.payload, self.identity)
            if inspect.isawaitable(verdict):
                verdict = await verdict
        except Exception:
            logger.exception("join authorizer failed for topic %r", event.topic)
            self.core.join_crashed(event)
            return
        if verdict is None or verdict is True:
            self.core.accept_join(event)
        elif isinstance(verdict, Mapping):
            self.core.reject_join(event, dict(verdict))
        else:
            self.core.reject_join(event, {"reason": "unauthorized"})

    def _on_channel_closed(self, event: ChannelClosed) -> None:
        """Hook for channel cleanup (relay memberships, streams)."""

    def _on_message(self, event: MessageReceived) -> None:
        if event.event != self.gateway.event:
            self.core.reply(event, "error", {"reason": f"unknown event: {event.event}"})
            return
        raw = event.payload_raw
        if raw is None:
            self._answer(event, None, InvalidRequest("payloads must be JSON objects"), "unknown")
            return
        identity = self.identity
        try:
            request = decode_request(
                raw,
                max_bytes=self.gateway.executor.limits.max_payload_bytes,
                user_id=identity.user_id,
                user_roles=identity.roles,
                device_id=identity.device_id,
                ip_address=self.ip_address,
            )
        except DecodeError as exc:
            request_id = exc.request_id or _peek_request_id(raw)
            self._answer(event, None, InvalidRequest(exc.message), request_id)
            return
        if self.gateway.draining or len(self.calls) >= self.gateway.limits.max_inflight:
            self.gateway.stats.calls_refused_inflight += 1
            self._answer(event, request, ServiceUnavailable(), request.request_id)
            return
        task = asyncio.create_task(self._call(event, request))
        key = request.request_id
        if key in self.calls:  # a reused id still running: keep both owned
            key = f"{key}#{id(task)}"
        self.calls[key] = task
        task.add_done_callback(functools.partial(self._call_done, key))

    def _call_done(self, key: str, task: asyncio.Task[None]) -> None:
        self.calls.pop(key, None)

    # -- calls --------------------------------------------------------------------------

    async def _call(self, event: MessageReceived, request: Request) -> None:
        topic = event.topic

        async def sink(response: Response) -> None:
            self.push(topic, response)

        response, error = await self.gateway.executor.run(request, sink)
        if response is not None:
            self.core.push(topic, self.gateway.event, response)
        self._reply(event, request, response, error)
        self.flush()

    def _answer(
        self, event: MessageReceived, request: Request | None, error: Exception, request_id: str
    ) -> None:
        """Answer a push that never reached the executor."""
        message = getattr(error, "message", str(error))
        can_retry = bool(getattr(error, "can_retry", False))
        response = Response.fail(request_id, message, can_retry=can_retry)
        self.core.push(event.topic, self.gateway.event, response)
        self.core.reply(event, "error", {"reason": message})

    def _reply(
        self,
        event: MessageReceived,
        request: Request,
        response: Response | None,
        error: Any,
    ) -> None:
        if response is None or response.success:
            self.core.reply(event, "ok", {"request_type": request.request_type})
            return
        details = getattr(error, "details", None) or {}
        self.core.reply(event, "error", {"reason": response.error, **details})

    # -- writing ------------------------------------------------------------------------

    def push(self, topic: str, response: Response) -> None:
        """Push a Response on the api event of ``topic`` (used for later responses)."""
        if self.core.push(topic, self.gateway.event, response):
            self.flush()

    def flush(self) -> None:
        """Move frames from the protocol core to the bounded outbox."""
        frames = self.core.data_to_send()
        if not frames or self._close_code is not None:
            return
        try:
            for frame in frames:
                self.outbox.put(frame)
        except OutboxOverflow:
            self.gateway.stats.slow_consumers_closed += 1
            logger.warning("closing a slow consumer from %s (outgoing queue full)",
                           self.ip_address)
            self.close(CLOSE_POLICY, flush=False)

    async def _write(self, frame: Frame) -> None:
        if self._peer_gone:
            return
        message = (
            {"type": "websocket.send", "text": frame}
            if isinstance(frame, str)
            else {"type": "websocket.send", "bytes": frame}
        )
        try:
            await self._send(message)
        except Exception:  # the server's way of saying the client is gone (varies by server)
            self._peer_gone = True
            self.close(CLOSE_GOING_AWAY, flush=False)
