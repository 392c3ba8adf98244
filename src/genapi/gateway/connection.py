"""One WebSocket connection: the asyncio glue around the sans-I/O protocol core.

Incoming frames are fed to :class:`~genapi.protocol.phoenix.ServerConnection` with
:meth:`Connection.feed` (synchronously); each ``api`` push becomes a call task owned by the
connection; outgoing frames go through the bounded :class:`~genapi.gateway.outbox.Outbox`.

Two drivers move bytes:

* the standard ASGI driver (any ASGI server): a reader task awaits ``receive()`` and a
  writer task drains the outbox through ``send()``;
* the direct driver, when the server offers genapi's ``genapi.direct`` ASGI extension
  (``genapi serve`` does): the server calls :meth:`Connection.feed` from its protocol
  callback and frames are written in one batch per flush, with no queue hop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, Protocol

import msgspec

from ..errors import Cancelled, DecodeError, InvalidRequest, ServiceUnavailable, TooManyInflight
from ..messages import CANCEL_EVENT, Request, Response, decode_request
from ..protocol.phoenix import (
    ChannelClosed,
    CloseRequested,
    ConnectionState,
    Event,
    JoinRequested,
    LocalProtocolError,
    MessageReceived,
    Serializer,
    ServerConnection,
)
from .auth import Identity
from .events import SLOW_CONSUMER
from .host import GatewayHost
from .inflight import InflightCalls
from .lazy import Flag
from .outbox import Frame, Outbox, OutboxOverflow
from .settings import CLOSE_GOING_AWAY, CLOSE_POLICY, CLOSE_TOO_BIG
from .sink import TopicSink

__all__ = ["CANCEL_EVENT", "Connection", "DirectChannel", "count_job"]

logger = logging.getLogger("genapi.gateway")

ASGISend = Callable[[dict[str, Any]], Awaitable[None]]
ASGIReceive = Callable[[], Awaitable[dict[str, Any]]]


#: Tasks finishing connections started with Connection.start_direct.
_ending: set[asyncio.Task[None]] = set()


class DirectChannel(Protocol):
    """What a server offering the ``genapi.direct`` extension provides."""

    writable: bool

    def attach(self, connection: Connection) -> None:
        """Deliver messages to ``connection.feed`` and events to its callbacks from now on."""

    def write(self, frames: list[Frame]) -> None:
        """Write frames now, in one batch."""

    def close(self, code: int, reason: str = "") -> None:
        """Close the WebSocket with ``code`` (and ``reason``, at most 123 bytes)."""


def _task_starter(
    loop: asyncio.AbstractEventLoop,
) -> Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]]:
    """How calls start: eagerly where Python can (>= 3.12: a call that never waits
    finishes right there, without an event-loop round trip), else as a plain task."""
    if _eager_task_factory is not None:
        return functools.partial(_eager_task_factory, loop)
    return loop.create_task


#: Python >= 3.12 can start a task eagerly: no event-loop round trip before the call runs.
_eager_task_factory: Callable[..., Any] | None = getattr(asyncio, "eager_task_factory", None)


class _Coalescer:
    """Flushes, once per event-loop turn, the connections that were given shared frames.

    A relay fan-out queues one frame on each member connection; writing it right away
    costs a system call per member per message. Deferred to the end of the loop turn, the
    frames of every message fanned out in that turn go in one write per connection (with
    16 messages in flight, a sixteenth of the calls). A connection's other output still
    flushes at once, and takes the queued shared frames with it, in order.
    """

    __slots__ = ("loop", "pending")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.pending: list[Connection] = []

    def add(self, connection: Connection) -> None:
        if not self.pending:
            self.loop.call_soon(self.run)
        self.pending.append(connection)

    def run(self) -> None:
        pending, self.pending = self.pending, []
        for connection in pending:
            connection._flush_pending = False
            connection.flush()


_coalescers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Coalescer] = (
    weakref.WeakKeyDictionary())


def _coalescer(loop: asyncio.AbstractEventLoop) -> _Coalescer:
    coalescer = _coalescers.get(loop)
    if coalescer is None:
        coalescer = _coalescers[loop] = _Coalescer(loop)
    return coalescer


class _RequestId(msgspec.Struct):
    request_id: str | None = None


_request_id_decoder = msgspec.json.Decoder(_RequestId)


def count_job(owner: Any, delta: int) -> None:
    """An executor's job of ``owner`` started (+1) or ended (-1): a connection's count
    against its user's cap (see :attr:`genapi.execution.jobs.Jobs.counted`)."""
    if isinstance(owner, Connection):
        owner.gateway.user_inflight.add(owner.identity.user_id, delta)


def _reason(message: str, details: Mapping[str, Any] | None) -> dict[str, Any]:
    """An error reply's response: ``{"reason": message, **details}``; the documented
    message stays the reason, a detail of that name is renamed ``cause``."""
    if not details:
        return {"reason": message}
    extra = dict(details)
    if "reason" in extra:
        extra.setdefault("cause", extra.pop("reason"))
    return {"reason": message, **extra}


def _peek_request_id(raw: bytes) -> str:
    try:
        return _request_id_decoder.decode(raw).request_id or "unknown"
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return "unknown"


class Connection:
    """A client connection of a :class:`~genapi.Gateway`."""

    def __init__(
        self,
        gateway: GatewayHost,
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
            max_topic_length=limits.max_topic_length,
            idle_timeout=limits.heartbeat_timeout,
        )
        self.outbox = Outbox(limits.max_queue_messages, limits.max_queue_bytes)
        users = gateway.user_inflight
        user_id = identity.user_id
        self.calls = InflightCalls(
            limits.max_inflight,
            None if user_id is None else functools.partial(users.add, user_id))
        self._users = users
        self._jobs = gateway.executor.jobs
        self._tasks: set[asyncio.Task[None]] = set()  # join authorizations in progress
        self._sinks: dict[str, TopicSink] = {}
        self._max_frame = limits.max_frame_bytes
        self._event = gateway.event
        self._decode = functools.partial(
            decode_request,
            max_bytes=gateway.executor.limits.max_payload_bytes,
            user_id=identity.user_id,
            user_roles=identity.roles,
            device_id=identity.device_id,
            ip_address=ip_address,
        )
        self._send: ASGISend | None = None
        self._direct: DirectChannel | None = None
        self._reader: asyncio.Task[None] | None = None
        self._done = Flag()  # Flags: no waiter deque while nobody waits (idle memory)
        loop = asyncio.get_running_loop()
        self._start_task = _task_starter(loop)
        self._coalescer = _coalescer(loop)
        self._flush_pending = False  # shared frames wait for the coalescer's flush
        self._close_code: int | None = None
        self._close_reason = ""
        self._flush_on_close = True
        self._peer_gone = False
        self.finished = Flag()

    # -- lifecycle ----------------------------------------------------------------------

    async def serve(self, receive: ASGIReceive, send: ASGISend) -> None:
        """Run over standard ASGI messages until the client or the gateway closes."""
        self._send = send
        writer = asyncio.create_task(self.outbox.run(self._write), name="genapi-writer")
        self._reader = asyncio.create_task(self._read(receive), name="genapi-reader")
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        finally:
            try:
                await self._stop_calls()
                await self._finish_asgi(writer)
            finally:
                self.finished.set()

    async def serve_direct(self, direct: DirectChannel) -> None:
        """Run over the server's direct channel until the client or the gateway closes."""
        self._direct = direct
        direct.attach(self)
        try:
            await self._done.wait()
        finally:
            await self._finish_direct(direct)

    def start_direct(self, direct: DirectChannel, ended: Callable[[], None]) -> None:
        """Run over the server's direct channel with no task while the connection lives
        (an idle connection's task and coroutine chain cost ~5 KB): when it ends (closed,
        or the client gone) a task finishes it as :meth:`serve_direct` would, then calls
        ``ended``."""
        def end() -> None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # ended outside the loop (its teardown): nothing to await
                self.finished.set()
                ended()
                return
            task = loop.create_task(self._end_direct(direct, ended))
            _ending.add(task)  # held until done: the loop keeps only weak references
            task.add_done_callback(_ending.discard)

        self._direct = direct
        self._done.on_set = end
        direct.attach(self)

    async def _end_direct(self, direct: DirectChannel, ended: Callable[[], None]) -> None:
        try:
            await self._finish_direct(direct)
        except Exception:  # nobody awaits this task: say it here
            logger.exception("finishing a connection from %s failed", self.ip_address)
        finally:
            ended()

    async def _finish_direct(self, direct: DirectChannel) -> None:
        try:
            await self._stop_calls()
            if not self._peer_gone:
                if self._flush_on_close:
                    self.drain_outbox()
                direct.close(self._close_code or CLOSE_GOING_AWAY, self._close_reason)
        finally:
            self.finished.set()

    def close(self, code: int, *, flush: bool = True, reason: str = "") -> None:
        """Close the connection with ``code`` (queued frames are written first if ``flush``)."""
        if self._close_code is not None:
            return
        if flush and self._flush_pending:
            self.flush()  # shared frames queued this turn go before the close
        self._close_code = code
        self._close_reason = reason
        self._flush_on_close = flush
        self._done.set()
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()

    def disconnected(self) -> None:
        """The client went away (called by the driver)."""
        self._peer_gone = True
        self._done.set()
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()

    # -- what diagnostics list ----------------------------------------------------------

    @property
    def user_id(self) -> str | None:
        """The authenticated user (None: anonymous)."""
        return self.identity.user_id

    @property
    def topics(self) -> list[str]:
        """The topics joined (or joining)."""
        return list(self.core.channels)

    @property
    def inflight(self) -> int:
        """Calls in flight for this connection: sync calls running, and the acked async
        and stream work they started (what its ``max_inflight`` cap counts)."""
        return len(self.calls) + self._jobs.owned(self)

    @property
    def queued(self) -> int:
        """Frames waiting in the outgoing queue."""
        return len(self.outbox)

    @property
    def queued_bytes(self) -> int:
        """Bytes waiting in the outgoing queue."""
        return self.outbox.bytes

    @property
    def last_activity(self) -> float:
        """``time.monotonic()`` of the last frame received."""
        return self.core.last_activity

    @property
    def close_code(self) -> int | None:
        """The code the gateway closed with (None if the client went away first)."""
        return self._close_code

    @property
    def closing(self) -> bool:
        """True once a close was decided."""
        return self._close_code is not None or self._peer_gone

    async def _stop_calls(self) -> None:
        self.gateway.executor.owner_closed(self)
        pending = [*self.calls.tasks(), *self._tasks]
        for task in pending:
            task.cancel()
        if self.core.state is not ConnectionState.CLOSED:
            for event in self.core.connection_lost():
                if isinstance(event, ChannelClosed):
                    self._on_channel_closed(event)
        for topic in list(self._sinks):
            self._close_sink(topic)
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    async def _finish_asgi(self, writer: asyncio.Task[None]) -> None:
        self.outbox.close()
        if self._peer_gone or not self._flush_on_close:
            writer.cancel()
        try:
            async with asyncio.timeout(2.0):  # what is queued gets 2 s to be written
                await writer
        except (asyncio.CancelledError, TimeoutError):
            pass
        except Exception:
            logger.exception("the writer of a connection from %s failed", self.ip_address)
        writer.cancel()
        if not self._peer_gone and self._send is not None:
            try:
                await self._send({"type": "websocket.close", "code": self._close_code or 1001,
                                  "reason": self._close_reason})
            except Exception as exc:  # servers differ in how they say "already gone"
                logger.debug("close frame to %s not sent: %r", self.ip_address, exc)

    # -- reading ------------------------------------------------------------------------

    async def _read(self, receive: ASGIReceive) -> None:
        while not self._done.is_set():
            message = await receive()
            kind = message["type"]
            if kind == "websocket.disconnect":
                self._peer_gone = True
                return
            if kind == "websocket.receive":
                data = message.get("text")
                self.feed(data if data is not None else message.get("bytes") or b"")

    def feed(self, data: str | bytes) -> None:
        """Process one incoming WebSocket message."""
        if self._close_code is not None or self._peer_gone:  # closing: input is ignored
            return
        if len(data) > self._max_frame:
            self.gateway.stats.oversize_frames += 1
            self.close(CLOSE_TOO_BIG, flush=False)
            return
        core = self.core
        for event in core.receive(data):
            if type(event) is MessageReceived:
                self._on_message(event)
            else:
                self._dispatch(event)
        self.flush()
        if core.state is not ConnectionState.OPEN and self._close_code is None:
            # the core closes only for a client's malformed frame: 1007 with its reason
            self.gateway.stats.malformed_frames += 1
            self.close(core.close_code or CLOSE_GOING_AWAY, reason=core.close_reason)

    def _dispatch(self, event: Event) -> None:
        if isinstance(event, MessageReceived):
            self._on_message(event)
        elif isinstance(event, JoinRequested):
            self._on_join(event)
        elif isinstance(event, ChannelClosed):
            self._on_channel_closed(event)
        elif isinstance(event, CloseRequested):
            logger.info("closing a connection from %s: %s", self.ip_address, event.reason)

    def _on_join(self, event: JoinRequested) -> None:
        if not self.gateway.admission.join(self.ip_address):
            self.gateway.stats.joins_throttled += 1
            self.core.reject_join(event, {"reason": "too many joins"})
            return
        authorize = self.gateway.join_authorizer
        if authorize is None:
            self._accept_join(event)
            return
        try:
            verdict = authorize(event.topic, event.payload, self.identity)
        except Exception:
            logger.exception("join authorizer failed for topic %r", event.topic)
            self.core.join_crashed(event)
            return
        if inspect.isawaitable(verdict):
            task = asyncio.ensure_future(self._await_join(event, verdict))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            self._answer_join(event, verdict)

    async def _await_join(self, event: JoinRequested, verdict: Awaitable[Any]) -> None:
        try:
            self._answer_join(event, await verdict)
        except Exception:
            logger.exception("join authorizer failed for topic %r", event.topic)
            self.core.join_crashed(event)
        self.flush()

    def _accept_join(self, event: JoinRequested) -> None:
        if self.core.accept_join(event):
            self.gateway.channel_joined(self, event.topic)

    def _answer_join(self, event: JoinRequested, verdict: Any) -> None:
        if verdict is None or verdict is True:
            self._accept_join(event)
        elif isinstance(verdict, Mapping):
            self.core.reject_join(event, dict(verdict))
        else:
            self.core.reject_join(event, {"reason": "unauthorized"})

    def _on_cancel(self, event: MessageReceived) -> None:
        """``cancel`` event: ``{"request_id": id}`` ends that in-flight call with Cancelled."""
        payload = event.payload
        request_id = payload.get("request_id") if isinstance(payload, dict) else None
        if not isinstance(request_id, str) or not request_id:
            self.core.reply(event, "error", {"reason": "cancel needs a request_id"})
            return
        found = self.gateway.executor.cancel(request_id, owner=self)
        found += self.calls.end(request_id, Cancelled())
        self.core.reply(event, "ok", {"request_id": request_id, "cancelled": found > 0})

    def _on_channel_closed(self, event: ChannelClosed) -> None:
        self._close_sink(event.topic)

    def _close_sink(self, topic: str) -> None:
        sink = self._sinks.pop(topic, None)
        if sink is not None:
            sink.left = True
            self.gateway.executor.owner_closed(sink)

    def _on_message(self, event: MessageReceived) -> None:
        message = event.message
        if message.event != self._event:
            if message.event == CANCEL_EVENT:
                self._on_cancel(event)
            else:
                self.core.reply(event, "error", {"reason": f"unknown event: {message.event}"})
            return
        raw = message.payload_raw
        if raw is None:
            self._answer(event, InvalidRequest("payloads must be JSON objects"), "unknown")
            return
        try:
            request = self._decode(raw)
        except DecodeError as exc:
            request_id = exc.request_id or _peek_request_id(raw)
            self._answer(event, InvalidRequest(exc.message), request_id)
            return
        calls = self.calls
        if self.gateway.draining:
            self.gateway.stats.calls_refused_inflight += 1
            self._answer(event, ServiceUnavailable(), request.request_id)
            return
        # Acked async and stream work counts too: an ack is not the end of the work, and a
        # client must not fill the shared pools by never waiting for its results.
        if len(calls) + self._jobs.owned(self) >= calls.limit:
            self._refuse_inflight(event, request.request_id, "max_inflight", calls.limit)
            return
        users = self._users
        if users.full(self.identity.user_id):
            self._refuse_inflight(event, request.request_id, "max_inflight_per_user",
                                  users.limit)
            return
        key = calls.new_key()  # every call its own key, however the client reuses ids
        # The call removes itself when done (one never started is dropped at teardown).
        # Where available it starts eagerly: a call that never waits finishes right here.
        task = self._start_task(self._call(event, request, key))
        if not task.done():
            calls.add(key, request.request_id, task)

    # -- calls --------------------------------------------------------------------------

    def sink(self, topic: str) -> TopicSink:
        """The sink pushing later Responses on ``topic`` (one per topic, made when first
        asked for; closing once the topic is left)."""
        return self._sink(topic)

    def _sink(self, topic: str) -> TopicSink:
        sink = self._sinks.get(topic)
        if sink is None:
            sink = self._sinks[topic] = TopicSink(self, topic)
        return sink

    async def _call(self, event: MessageReceived, request: Request, key: int) -> None:
        message = event.message
        topic = message.topic
        sink = self._sinks.get(topic) or self._sink(topic)
        try:
            response, error = await self.gateway.executor.run(request, sink, self)
        except asyncio.CancelledError:
            ended = self.calls.ending(key)
            if ended is None:  # the connection is going: nobody to answer
                raise
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
            response, error = Response.fail(request.request_id, ended.message,
                                            can_retry=ended.can_retry), ended
        finally:
            self.calls.discard(key, request.request_id)
        if response is not None and not self._push_response(topic, response):
            response, error = Response.fail(request.request_id, "Internal Server Error"), None
        to = (message.join_ref, message.ref, topic)
        if response is None or response.success:
            self.core.reply(to, "ok", {"request_type": request.request_type})
        else:
            self.core.reply(to, "error", _reason(response.error or "",
                                                 getattr(error, "details", None)))
        self.flush()

    def _refuse_inflight(self, event: MessageReceived, request_id: str, limit: str,
                         most: int) -> None:
        self.gateway.stats.calls_refused_inflight += 1
        self._answer(event, TooManyInflight(details={"limit": limit, "max": most}), request_id)

    def _answer(self, event: MessageReceived, error: Exception, request_id: str) -> None:
        """Answer a push that never reached the executor."""
        message = getattr(error, "message", str(error))
        can_retry = bool(getattr(error, "can_retry", False))
        response = Response.fail(request_id, message, can_retry=can_retry)
        self.core.push(event.topic, self.gateway.event, response)
        self.core.reply(event, "error", _reason(message, getattr(error, "details", None)))

    # -- writing ------------------------------------------------------------------------

    def push(self, topic: str, response: Response) -> None:
        """Push a Response on the api event of ``topic`` (used for later responses)."""
        self._push_response(topic, response)
        self.flush()

    def push_shared(self, topic: str, response: Response, frames: dict[Any, Frame]) -> None:
        """Push ``response`` that other connections push too (a relay fan-out).

        The frame is a Phoenix broadcast (``[null, null, topic, "api", payload]``: with a
        null join_ref it is valid for every member's channel, as phoenix.js and Phoenix's
        own broadcasts agree), so it is encoded once per serializer and topic and kept in
        ``frames``, which the caller shares between the connections of one batch. The
        write waits for the end of the loop turn (:class:`_Coalescer`).
        """
        core = self.core
        key = (type(core.serializer), topic)
        frame = frames.get(key)
        if frame is None:
            try:
                frame = frames[key] = core.serializer.encode_broadcast(
                    topic, self._event, response)
            except LocalProtocolError:  # this push's own path logs and answers the error
                self.push(topic, response)
                return
        if core.send_broadcast(topic, frame) and not self._flush_pending:
            self._flush_pending = True
            self._coalescer.add(self)

    def _push_response(self, topic: str, response: Response) -> bool:
        """Push ``response``; when its result cannot be encoded push Internal Server Error
        instead (logged) and return False."""
        try:
            self.core.push(topic, self._event, response)
            return True
        except LocalProtocolError:
            logger.exception("the result of request %s cannot be encoded", response.request_id)
            self.core.push(topic, self._event,
                           Response.fail(response.request_id, "Internal Server Error"))
            return False

    def flush(self) -> None:
        """Move frames from the protocol core to the socket (direct) or the bounded outbox."""
        frames = self.core.data_to_send()
        if not frames or self._close_code is not None or self._peer_gone:
            return
        direct = self._direct
        if direct is not None and direct.writable and not self.outbox.frames:
            direct.write(frames)
            return
        try:
            for frame in frames:
                self.outbox.put(frame)
        except OutboxOverflow:
            self.gateway.stats.slow_consumers_closed += 1
            telemetry = self.gateway.executor.telemetry
            if telemetry.has_handlers(SLOW_CONSUMER):
                telemetry.emit(SLOW_CONSUMER, {"queued_bytes": self.outbox.bytes},
                               {"ip_address": self.ip_address,
                                "user_id": self.identity.user_id})
            logger.warning("closing a slow consumer from %s (outgoing queue full)",
                           self.ip_address)
            self.close(CLOSE_POLICY, flush=False)

    def drain_outbox(self) -> None:
        """Direct driver: the socket is writable again; write what queued meanwhile."""
        direct = self._direct
        if direct is not None and self.outbox and direct.writable:
            direct.write(self.outbox.take_all())

    async def _write(self, frame: Frame) -> None:
        if self._peer_gone or self._send is None:
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
