"""genapi's WebSocket driver: a uvicorn protocol with its own frame layer and ``genapi.direct``.

uvicorn's own WebSocket protocols hand every message to the application through an ASGI
queue, pause and resume reading around each message, and write every frame with its own
system call. For a gateway answering each push with two frames (the ``api`` push and the
``phx_reply``) that overhead dominates. This protocol keeps uvicorn's handshake (and its
scope); once the application accepts, frames are parsed by
:class:`~genapi.protocol.websocket.ServerFrames` (sans-I/O,
RFC 6455, server side) and messages go either to an application attached to the
``genapi.direct`` extension offered in the scope (called synchronously; its outgoing frames
are written in one ``transport.write`` per batch) or, for applications that ignore the
extension, into standard ASGI ``websocket.receive`` events.

Per-message compression is not negotiated (Phoenix does not use it either) and the
server sends no keepalive pings: the Phoenix protocol has its own heartbeats.

Bounds: a message (all its fragments) is at most ``ws_max_size`` bytes (close 1009 as soon
as a frame header would pass it); partial frames are consumed as they arrive, never
re-copied; pings are answered one pong each while the socket drains, and only the latest
one while it does not; a peer that reads nothing for ``write_stall_grace`` seconds while the
write buffer is over its high-water mark, or does not finish a closing handshake within
``close_grace`` seconds, is aborted; on close, buffers and the references between the
protocol, the extension and the application's consumer are dropped (no cyclic GC needed).

An application attached to ``genapi.direct`` may call its ``hold()`` and return: the
WebSocket then stays open with no ASGI task behind it (an idle gateway connection costs
no coroutine chain through the middleware), until the consumer closes it or the peer goes.

``genapi serve`` uses this protocol; with uvicorn from code pass
``ws=GenapiWebSocketProtocol`` to ``uvicorn.run``/``uvicorn.Config`` (uvicorn's command
line accepts only its own protocol names).

uvicorn's ``WebSocketsSansIOProtocol`` (uvicorn >= 0.35) has no public subclassing API; the
members used here are listed in :data:`UVICORN_MEMBERS` (a test checks them).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.server import ServerProtocol

from ..protocol.websocket import (
    CLOSE_RESTART,
    NO_STATUS,
    FrameState,
    ServerFrames,
    drop,
    encode_frames,
)
from .lazy import Flag, Inbox

__all__ = ["UVICORN_MEMBERS", "DirectConsumer", "GenapiWebSocketProtocol"]

logger = logging.getLogger("genapi.gateway")

#: What genapi relies on in uvicorn's ``WebSocketsSansIOProtocol``: (methods, instance
#: attributes). ``tests/gateway/test_wsframes.py`` fails if one disappears.
UVICORN_MEMBERS: tuple[frozenset[str], frozenset[str]] = (
    frozenset({"data_received", "handle_connect", "send", "receive", "run_asgi", "shutdown",
               "connection_lost", "pause_writing", "resume_writing"}),
    frozenset({"config", "conn", "logger", "loop", "transport", "queue", "read_paused",
               "writable", "close_sent", "handshake_complete", "initial_response", "client"}),
)


class DirectConsumer(Protocol):
    """What an application attaches to the ``genapi.direct`` extension (a gateway
    :class:`~genapi.gateway.connection.Connection` is one)."""

    def feed(self, data: str | bytes) -> None:
        """One incoming message (called from the protocol's ``data_received``)."""

    def disconnected(self) -> None:
        """The WebSocket is over (closed by the client, failed, or lost)."""

    def drain_outbox(self) -> None:
        """The socket drains again (``writable`` is True): write what was held back."""


#: What ``conn`` (uvicorn's websockets ``ServerProtocol``) becomes once frames are ours.
_HANDSHAKE_DONE: Any = None


class _Hold:
    """``close_timer`` while a held application returns: uvicorn then leaves the socket
    open (it closes only when no close timer is set); cancelling it is a no-op."""

    def cancel(self) -> None:
        return None


_HOLD: Any = _Hold()


class _Direct:
    """The ``genapi.direct`` extension object handed to the application."""

    __slots__ = ("_core", "_protocol", "_write", "can_hold", "writable")

    def __init__(self, protocol: GenapiWebSocketProtocol) -> None:
        self._protocol: GenapiWebSocketProtocol | None = protocol
        self._core: ServerFrames | None = None  # set once the application accepted
        self._write: Callable[[bytes], None] = drop
        #: False while the socket's write buffer is over its high-water mark.
        self.writable = True
        #: Whether :meth:`hold` is offered: uvicorn >= 0.53 leaves closing after the
        #: application returns to ``close_timer``, which lets the socket stay open.
        self.can_hold = hasattr(protocol, "close_timer")

    def attach(self, consumer: DirectConsumer) -> None:
        """Deliver messages to ``consumer.feed`` from now on (call after accepting)."""
        protocol = self._protocol
        if protocol is None:
            consumer.disconnected()
        else:
            protocol.direct_attach(consumer)

    def hold(self) -> None:
        """Keep the WebSocket open after the application returns (call after
        :meth:`attach`): the attached consumer then lives on callbacks alone, and the
        WebSocket ends when it calls :meth:`close` or the peer goes."""
        protocol = self._protocol
        if protocol is not None and self.can_hold:
            protocol.direct_hold()

    def write(self, frames: list[str | bytes]) -> None:
        """Write ``frames`` now, in one batch (dropped once a close frame was sent)."""
        core = self._core
        if core is not None and core.state is FrameState.OPEN:
            self._write(encode_frames(frames))

    def close(self, code: int, reason: str = "") -> None:
        """Close the WebSocket with ``code`` (the peer gets ``close_grace`` to answer)."""
        protocol = self._protocol
        if protocol is not None:
            protocol.direct_close(code, reason)

    def detach(self) -> None:
        self._protocol = self._core = None
        self._write = drop
        self.writable = False


class GenapiWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol with genapi's frame layer and ``genapi.direct``."""

    #: Seconds the peer has, once a close frame was sent or received, to finish the closing
    #: handshake and read what is left; then the TCP connection is aborted.
    close_grace: float = 3.0
    #: Seconds the write buffer may stay over its high-water mark without shrinking (the
    #: peer reads nothing) before the TCP connection is aborted; a slow reader is kept.
    write_stall_grace: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # uvicorn's asyncio.Queue and Event hold five deques (~3.7 KB) per connection for
        # messages and waits that, with genapi.direct, hardly ever happen: lazy stand-ins.
        self.queue = Inbox()  # type: ignore[assignment]  # duck-typed: what uvicorn calls
        self.writable = Flag(True)  # type: ignore[assignment]
        # The handshake only (no permessage-deflate); frames are ServerFrames' after accept.
        self.conn = ServerProtocol(extensions=[], max_size=self.config.ws_max_size,
                                   logger=self.logger)
        self._direct = _Direct(self)
        self._core: ServerFrames | None = None
        self._consumer: DirectConsumer | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._stall: asyncio.TimerHandle | None = None
        self._stall_size = 0  # the write buffer's size at the last look while paused
        self._stall_since = 0.0  # when it last shrank (or writing paused)
        self._writing = True
        self._lost = False
        self._app_closed = False  # the ASGI application sent websocket.close
        self._held = False  # the application returned; its consumer keeps the socket

    # -- handshake: uvicorn builds the scope; we add the extension ----------------------

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"]["genapi.direct"] = self._direct

    def start_keepalive(self) -> None:
        """No WebSocket pings: Phoenix clients send heartbeats (and would not be counted)."""

    @property
    def buffered_bytes(self) -> int:
        """Client bytes this connection holds in its frame layer right now."""
        return 0 if self._core is None else self._core.buffered_bytes

    def _open(self) -> None:
        self._core = ServerFrames(self._deliver_asgi, max_message_bytes=self.config.ws_max_size,
                                  flush=self._write_pongs)
        self._direct._core = self._core
        self._direct._write = self.transport.write
        # The handshake's parser, request and response (headers, buffers: ~2 KB) are done
        # with: frames are ServerFrames' from here, and uvicorn reads ``conn`` only before
        # the handshake completes (keepalive pings, which this protocol never sends, aside).
        self.conn = _HANDSHAKE_DONE
        # (``request`` and ``response`` are set by uvicorn's handle_connect, the
        # handshake's; dropping them is harmless should uvicorn stop setting them.)
        self.request = self.response = None  # type: ignore[assignment]

    def _write_pongs(self) -> None:
        core = self._core
        if self._writing and core is not None:  # pongs wait (coalesced) while paused
            out = core.data_to_send()
            if out:
                self.transport.write(out)

    # -- incoming ------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        core = self._core
        if core is None:  # the handshake: uvicorn's
            super().data_received(data)
            return
        core.receive_data(data)
        if core.state is FrameState.OPEN:
            if core.pongs and self._writing:  # pongs wait (coalesced) while paused
                self.transport.write(core.data_to_send())
        elif core.state is FrameState.CLOSED:
            self._frames_closed(core)

    def _deliver_asgi(self, message: str | bytes) -> None:
        if isinstance(message, str):
            self.queue.put_nowait({"type": "websocket.receive", "text": message})
        else:
            self.queue.put_nowait({"type": "websocket.receive", "bytes": message})
        if not self.read_paused:  # as uvicorn: read on once the application took it
            self.read_paused = True
            self.transport.pause_reading()

    def _frames_closed(self, core: ServerFrames) -> None:
        """The peer's close frame arrived, or the connection failed."""
        if self.transport.is_closing():
            return
        out = core.data_to_send()
        if out:
            self.transport.write(out)
        self.close_sent = True
        if core.failure is not None:
            logger.debug("failing a WebSocket from %s with %s: %s", self.client,
                         core.close_sent, core.failure)
        if self._consumer is None and not self._app_closed:
            failed = core.failure is not None
            code = (core.close_sent if failed else core.close_rcvd) or NO_STATUS
            self.queue.put_nowait({"type": "websocket.disconnect", "code": code,
                                   "reason": core.failure if failed else core.close_reason})
        self._notify_gone()
        self.transport.close()  # a server closes the TCP connection first
        self._arm_deadline()

    # -- genapi.direct -----------------------------------------------------------------

    def direct_attach(self, consumer: DirectConsumer) -> None:
        core = self._core
        if core is None:
            raise RuntimeError("attach to genapi.direct after sending websocket.accept")
        self._consumer = consumer
        core.deliver = consumer.feed
        while not self.queue.empty():  # anything queued before the application attached
            message = self.queue.get_nowait()
            if message["type"] == "websocket.receive":
                text = message.get("text")
                consumer.feed(text if text is not None else message.get("bytes") or b"")
        if self.read_paused:  # uvicorn pauses reading until the app receives a message
            self.read_paused = False
            self.transport.resume_reading()
        if self._lost or core.state is FrameState.CLOSED:
            self._notify_gone()

    def direct_hold(self) -> None:
        self._held = True
        if self.close_timer is None:  # uvicorn closes on return unless a timer is set
            self.close_timer = _HOLD

    def direct_close(self, code: int, reason: str = "") -> None:
        core = self._core
        if core is None or self._lost:
            return
        if core.state is FrameState.OPEN:
            self._send_close(core, code, reason)
        self._arm_deadline()

    def _send_close(self, core: ServerFrames, code: int, reason: str = "") -> None:
        core.send_close(code, reason)
        self.transport.write(core.data_to_send())  # even while paused: a close frame is small
        self.close_sent = True
        if self.read_paused:  # the peer's close frame must be read
            self.read_paused = False
            self.transport.resume_reading()
        self._arm_deadline()

    def _notify_gone(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            consumer.disconnected()

    # -- ASGI messages after the handshake -----------------------------------------------

    async def send(self, message: Any) -> None:
        core = self._core
        if core is None:
            await super().send(message)
            if (message["type"] == "websocket.accept" and self.handshake_complete
                    and not self.close_sent and self.initial_response is None
                    and not self.transport.is_closing()):
                self._open()
            return
        await self.writable.wait()
        kind = message["type"]
        if self._lost:
            raise ClientDisconnected()
        if self._held and kind == "websocket.close" and self._consumer is not None:
            # A middleware closing "its" socket after the held application returned: the
            # consumer owns the connection now and closes it itself.
            return
        if self._app_closed:
            raise RuntimeError(f"Unexpected ASGI message '{kind}', after sending "
                               "'websocket.close'.")
        if kind == "websocket.send":
            if core.state is not FrameState.OPEN:
                raise ClientDisconnected()
            data = message.get("bytes")
            if data is None:
                data = message.get("text")
            if data is not None:
                self.transport.write(encode_frames([data]))
        elif kind == "websocket.close":
            self._app_closed = True
            if core.state is FrameState.OPEN:
                code = message.get("code") or 1000
                reason = message.get("reason") or ""
                self.queue.put_nowait({"type": "websocket.disconnect", "code": code,
                                       "reason": reason})
                self._send_close(core, code, reason)
        else:
            raise RuntimeError(f"Expected ASGI message 'websocket.send' or 'websocket.close', "
                               f"but got '{kind}'.")

    async def run_asgi(self) -> None:
        await super().run_asgi()
        if self._held:  # the consumer holds the socket open; it closes it or the peer does
            if self.close_timer is _HOLD:
                self.close_timer = None
            if not self._lost and self._consumer is not None:
                return
        # Whatever closed it (a close frame, uvicorn without one), the connection now ends
        # within close_grace, even when the peer does not read what is left.
        self._arm_deadline()

    # -- closing and flow control ---------------------------------------------------------

    def shutdown(self) -> None:
        core = self._core
        if core is None or self._lost:
            super().shutdown()
            return
        if core.state is FrameState.OPEN:
            if self._consumer is None:
                self.queue.put_nowait({"type": "websocket.disconnect", "code": CLOSE_RESTART})
            self._send_close(core, CLOSE_RESTART)
        self.transport.close()
        self._arm_deadline()

    def _arm_deadline(self) -> None:
        if self._deadline is None and not self._lost:
            self._deadline = self.loop.call_later(self.close_grace, self._abort,
                                                  "closing handshake not finished")
            self.close_timer = self._deadline  # uvicorn >= 0.53: run_asgi leaves closing to us

    def _abort(self, why: str) -> None:
        self._cancel_timers()
        if self._lost:
            return
        logger.info("aborting a WebSocket from %s: %s", self.client, why)
        if self._core is not None:
            self._core.abandon()
        self.transport.abort()

    def _cancel_timers(self) -> None:
        for timer in (self._deadline, self._stall):
            if timer is not None:
                timer.cancel()
        self._deadline = self._stall = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        super().connection_lost(exc)
        self.writable.set()  # uvicorn < 0.53 does not: unblock ASGI senders
        self._cancel_timers()
        self._notify_gone()
        # Break the cycles protocol -> extension -> protocol and protocol -> core ->
        # consumer -> extension, and drop buffers: memory returns without the cyclic GC.
        self._direct.detach()
        if self._core is not None:
            self._core.abandon()

    def pause_writing(self) -> None:
        super().pause_writing()
        self.writable.clear()  # uvicorn < 0.53 does not
        self._writing = self._direct.writable = False
        if self._core is not None:
            self._core.coalesce_pongs = True
        if self._stall is None and not self._lost:
            self._arm_stall()

    def _arm_stall(self) -> None:
        self._stall_size = self.transport.get_write_buffer_size()
        self._stall_since = self.loop.time()
        self._stall = self.loop.call_later(self.write_stall_grace / 4, self._check_stall)

    def _check_stall(self) -> None:
        """While paused, a look every quarter grace: has the write buffer shrunk since the
        last look (the peer reads, maybe slowly)? If not for a whole grace, abort."""
        self._stall = None
        if self._writing or self._lost:
            return
        size, now = self.transport.get_write_buffer_size(), self.loop.time()
        if size < self._stall_size:
            self._stall_since = now
        elif now - self._stall_since >= self.write_stall_grace:
            self._abort(f"the peer read nothing for {self.write_stall_grace:g} s")
            return
        self._stall_size = size
        self._stall = self.loop.call_later(self.write_stall_grace / 4, self._check_stall)

    def resume_writing(self) -> None:
        super().resume_writing()
        self.writable.set()
        self._writing = True
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None
        if self._lost:
            return
        self._direct.writable = True
        core = self._core
        if core is not None:
            core.coalesce_pongs = False
            if core.state is FrameState.OPEN:
                out = core.data_to_send()
                if out:
                    self.transport.write(out)
        if self._consumer is not None:
            self._consumer.drain_outbox()
