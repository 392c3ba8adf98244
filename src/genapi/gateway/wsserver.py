"""genapi's WebSocket driver: a uvicorn protocol with its own frame layer and ``genapi.direct``.

uvicorn's own WebSocket protocols hand every message to the application through an ASGI
queue, pause and resume reading around each message, and write every frame with its own
system call. For a gateway answering each push with two frames (the ``api`` push and the
``phx_reply``) that overhead dominates. This protocol keeps uvicorn's handshake (and its
scope); once the application accepts, frames are parsed by :class:`ServerFrames` (sans-I/O,
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

``genapi serve`` uses this protocol; with plain ``uvicorn`` pass
``--ws genapi.gateway.wsserver:GenapiWebSocketProtocol`` to get it.

uvicorn's ``WebSocketsSansIOProtocol`` (uvicorn >= 0.35) has no public subclassing API; the
members used here are listed in :data:`UVICORN_MEMBERS` (a test checks them).
"""

from __future__ import annotations

import asyncio
import codecs
import enum
import logging
import struct
from collections.abc import Callable
from typing import Any, Protocol

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.server import ServerProtocol

_apply_mask: Callable[[bytes, bytes], bytes] | None
try:  # websockets' C helper; the fallback is correct, only slower
    from websockets.speedups import apply_mask as _apply_mask
except ImportError:  # pragma: no cover - depends on the platform's wheel
    _apply_mask = None

__all__ = ["UVICORN_MEMBERS", "DirectConsumer", "FrameState", "GenapiWebSocketProtocol",
           "ServerFrames", "valid_close_code"]

logger = logging.getLogger("genapi.gateway")

_OP_CONT, _OP_TEXT, _OP_BINARY, _OP_CLOSE, _OP_PING, _OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_KNOWN_OPCODES = 0x0707  # bit n set for opcode n: 0x0-0x2 and 0x8-0xA; the rest are reserved
_CLOSE_PROTOCOL_ERROR = 1002
_CLOSE_INVALID_DATA = 1007
_CLOSE_TOO_BIG = 1009
_CLOSE_RESTART = 1012
_NO_STATUS = 1005  # what a close frame without a code means; never sent

_utf8_decoder = codecs.getincrementaldecoder("utf-8")

#: What genapi relies on in uvicorn's ``WebSocketsSansIOProtocol``: (methods, instance
#: attributes). ``tests/gateway/test_wsframes.py`` fails if one disappears.
UVICORN_MEMBERS: tuple[frozenset[str], frozenset[str]] = (
    frozenset({"data_received", "handle_connect", "send", "receive", "run_asgi", "shutdown",
               "connection_lost", "pause_writing", "resume_writing"}),
    frozenset({"config", "conn", "logger", "loop", "transport", "queue", "read_paused",
               "writable", "close_sent", "handshake_complete", "initial_response", "client"}),
)


def _unmask(payload: bytes, mask: bytes) -> bytes:
    if _apply_mask is not None:
        return _apply_mask(payload, mask)
    n = len(payload)
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big")


def _header(opcode: int, length: int) -> bytes:
    if length < 126:
        return bytes((0x80 | opcode, length))
    if length < 65536:
        return struct.pack("!BBH", 0x80 | opcode, 126, length)
    return struct.pack("!BBQ", 0x80 | opcode, 127, length)


def _frames(frames: list[str | bytes]) -> bytes:
    """Server frames (unmasked, final) for ``frames``: text for ``str``, binary for ``bytes``."""
    parts: list[bytes] = []
    for data in frames:  # one loop, no call per frame: this runs for every answer
        if isinstance(data, str):
            payload, first = data.encode(), 0x80 | _OP_TEXT
        else:
            payload, first = bytes(data), 0x80 | _OP_BINARY
        n = len(payload)
        if n < 126:
            parts.append(bytes((first, n)))
        elif n < 65536:
            parts.append(struct.pack("!BBH", first, 126, n))
        else:
            parts.append(struct.pack("!BBQ", first, 127, n))
        parts.append(payload)
    return b"".join(parts)


def valid_close_code(code: int) -> bool:
    """Whether ``code`` may appear in a close frame (RFC 6455 7.4 and IANA's registry):
    1000-1003, 1007-1014, 3000-4999; never 1005, 1006 or 1015, which only describe."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def _close_frame(code: int | None, reason: str = "") -> bytes:
    if code is None:
        return _header(_OP_CLOSE, 0)
    # at most 123 bytes of reason, cut at a character boundary (the peer checks UTF-8)
    payload = struct.pack("!H", code) + reason.encode()[:123].decode(errors="ignore").encode()
    return _header(_OP_CLOSE, len(payload)) + payload


def _ignore(message: str | bytes) -> None:
    """Where messages go once nobody listens."""


def _drop(data: bytes) -> None:
    """Where writes go once the connection is gone."""


class FrameState(enum.Enum):
    """Where the closing handshake is. Only :class:`ServerFrames` moves it."""

    OPEN = "open"  # messages flow both ways
    CLOSING = "closing"  # we sent a close frame and wait for the peer's
    CLOSED = "closed"  # close frames exchanged, or the connection failed: end the TCP connection


_OPEN, _CLOSING, _CLOSED = FrameState.OPEN, FrameState.CLOSING, FrameState.CLOSED
_MOVES = {
    FrameState.OPEN: frozenset({FrameState.CLOSING, FrameState.CLOSED}),
    FrameState.CLOSING: frozenset({FrameState.CLOSED}),
    FrameState.CLOSED: frozenset(),
}


class _Failure(Exception):
    """The peer broke the protocol: fail the connection with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class ServerFrames:
    """The server side of RFC 6455 after the handshake, without I/O.

    Bytes from the client go in through :meth:`receive_data`; each complete message (``str``
    for text, ``bytes`` for binary) is passed to ``deliver`` at once. What must be written
    back (pongs, close frames) is taken with :meth:`data_to_send`. Errors are not raised:
    the connection *fails* — a close frame with 1002 (protocol), 1007 (invalid UTF-8) or
    1009 (a message over ``max_message_bytes``, across all its fragments) is queued and
    :attr:`state` becomes ``CLOSED``; from then on input is ignored and the owner should
    write what is left and close the TCP connection.

    Partial frames are not buffered whole: a data frame's payload is unmasked and appended
    to its message as it arrives (text is validated as it arrives too, so invalid UTF-8
    fails fast), and only an incomplete header or control frame (at most 131 bytes) waits
    for the next call.
    """

    __slots__ = ("_close_frame", "_decoder", "_fin", "_held", "_left", "_mask", "_msg_opcode",
                 "_msg_size", "_offset", "_parts", "_rest", "close_rcvd", "close_reason",
                 "close_sent", "coalesce_pongs", "deliver", "failure", "flush",
                 "max_message_bytes", "pongs", "state")

    def __init__(self, deliver: Callable[[str | bytes], None], *, max_message_bytes: int,
                 flush: Callable[[], None] | None = None) -> None:
        self.deliver = deliver
        #: Called before a message is delivered while pongs wait, so that a driver whose
        #: application answers at once keeps the pongs ahead of the answer.
        self.flush = flush
        self.max_message_bytes = max_message_bytes
        self.state = FrameState.OPEN
        #: While True only the latest ping waiting for its pong is answered (RFC 6455 5.5.3
        #: allows it); the driver sets it while the socket does not drain.
        self.coalesce_pongs = False
        #: The code of the close frame sent (None before; 1005 for an empty echo).
        self.close_sent: int | None = None
        #: The code and reason of the peer's close frame (1005 when it had no code).
        self.close_rcvd: int | None = None
        self.close_reason = ""
        #: Why the connection failed (None unless it did).
        self.failure: str | None = None
        self._rest = b""  # an incomplete header or control frame
        self._left = 0  # payload bytes of the current data frame still to come
        self._mask = b""
        self._offset = 0  # payload bytes of the current data frame already consumed
        self._fin = False
        self._msg_opcode = 0  # opcode of the message in progress (0: none)
        self._msg_size = 0  # its size so far, counting each frame's whole declared length
        self._held = 0  # its bytes received so far
        self._parts: list[Any] = []  # str (text) or bytes (binary) pieces
        self._decoder: codecs.IncrementalDecoder | None = None
        #: Pong frames waiting for :meth:`data_to_send` (read-only for others).
        self.pongs: list[bytes] = []
        self._close_frame: bytes | None = None

    # -- input -------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Parse ``data``: deliver the messages it completes, queue pongs and close frames."""
        if self.state is _CLOSED:
            return
        try:  # one function, no call per frame: this runs for every message
            if self._rest:  # at most 131 bytes: copying data behind it once stays linear
                data = self._rest + data
                self._rest = b""
            size = len(data)
            pos = 0
            if self._left:
                pos = self._stream(data, 0)
                if self._left:
                    return
            max_size = self.max_message_bytes
            while size - pos >= 2:
                b0, b1 = data[pos], data[pos + 1]
                if b0 == 0x81 and b1 & 0x80 and not self._msg_opcode:
                    # The usual frame, a whole masked text message under 64 KiB, checked in
                    # fewer steps; anything else about it (incomplete, too big) goes below.
                    length, head = b1 & 0x7F, pos + 2
                    if length == 126:
                        if size - pos >= 4:
                            length, head = data[head] << 8 | data[head + 1], head + 2
                        else:
                            length = -1
                    elif length == 127:
                        length = -1
                    end = head + 4 + length
                    if 0 <= length <= max_size and end <= size:
                        try:
                            text = _unmask(data[head + 4:end], data[head:head + 4]).decode()
                        except UnicodeDecodeError:
                            raise _Failure(_CLOSE_INVALID_DATA, "invalid UTF-8") from None
                        pos = end
                        if self.state is _OPEN:  # after our close frame, data is discarded
                            if self.pongs and self.flush is not None:  # earlier pings first
                                self.flush()
                            self.deliver(text)
                        continue
                opcode = b0 & 0x0F
                if not (1 << opcode) & _KNOWN_OPCODES:
                    raise _Failure(_CLOSE_PROTOCOL_ERROR, "reserved opcode")
                if not b1 & 0x80:
                    raise _Failure(_CLOSE_PROTOCOL_ERROR, "unmasked frame")
                length = b1 & 0x7F
                head = pos + 2
                if length == 126:
                    if size - head < 2:
                        break
                    length = struct.unpack_from("!H", data, head)[0]
                    head += 2
                elif length == 127:
                    if size - head < 8:
                        break
                    length = struct.unpack_from("!Q", data, head)[0]
                    head += 8
                if opcode >= _OP_CLOSE:
                    if length > 125:
                        raise _Failure(_CLOSE_PROTOCOL_ERROR, "control frame too long")
                elif self._msg_size + length > max_size:  # checked before the payload arrives
                    raise _Failure(_CLOSE_TOO_BIG, "message too big")
                if b0 & 0x70:
                    raise _Failure(_CLOSE_PROTOCOL_ERROR, "reserved bits set")
                if opcode >= _OP_CLOSE:
                    if not b0 & 0x80:
                        raise _Failure(_CLOSE_PROTOCOL_ERROR, "fragmented control frame")
                elif opcode == _OP_CONT:
                    if not self._msg_opcode:
                        raise _Failure(_CLOSE_PROTOCOL_ERROR, "continuation without a message")
                elif self._msg_opcode:
                    raise _Failure(_CLOSE_PROTOCOL_ERROR, "new message inside a fragmented one")
                end = head + 4 + length
                if end <= size:  # the whole frame is here
                    payload = _unmask(data[head + 4:end], data[head:head + 4])
                    pos = end
                    if opcode >= _OP_CLOSE:
                        self._on_control(opcode, payload)
                        if self.state is _CLOSED:
                            return
                    elif b0 & 0x80 and opcode:  # a whole message in one frame: the usual case
                        message: str | bytes = payload
                        if opcode == _OP_TEXT:
                            try:
                                message = payload.decode()
                            except UnicodeDecodeError:
                                raise _Failure(_CLOSE_INVALID_DATA, "invalid UTF-8") from None
                        if self.state is _OPEN:  # after our close frame, data is discarded
                            if self.pongs and self.flush is not None:  # earlier pings first
                                self.flush()
                            self.deliver(message)
                    else:
                        if opcode:
                            self._start(opcode)
                        self._msg_size += length
                        self._append(payload)
                        if b0 & 0x80:
                            self._finish()
                elif opcode >= _OP_CLOSE or size - head < 4:
                    break  # a control frame (or a mask) is incomplete: wait for the rest
                else:  # a data frame whose payload is still arriving: take what is here
                    if opcode:
                        self._start(opcode)
                    self._msg_size += length
                    self._mask = data[head:head + 4]
                    self._offset = 0
                    self._left = length
                    self._fin = bool(b0 & 0x80)
                    self._stream(data, head + 4)
                    return
            if pos < size:
                self._rest = data[pos:]
        except _Failure as failure:
            self._fail(failure.code, failure.reason)

    def _stream(self, data: bytes, pos: int) -> int:
        """Consume the current data frame's payload from ``data[pos:]``; the new position."""
        take = min(self._left, len(data) - pos)
        if take:
            mask, k = self._mask, self._offset & 3
            if k:
                mask = mask[k:] + mask[:k]
            self._offset += take
            self._left -= take
            self._append(_unmask(data[pos:pos + take], mask))
        if not self._left and self._fin:
            self._finish()
        return pos + take

    def _start(self, opcode: int) -> None:
        self._msg_opcode = opcode
        self._decoder = _utf8_decoder("strict") if opcode == _OP_TEXT else None

    def _append(self, chunk: bytes) -> None:
        self._held += len(chunk)
        decoder = self._decoder
        if decoder is None:
            self._parts.append(chunk)
            return
        try:
            self._parts.append(decoder.decode(chunk))
        except UnicodeDecodeError:
            raise _Failure(_CLOSE_INVALID_DATA, "invalid UTF-8") from None

    def _finish(self) -> None:
        decoder, parts = self._decoder, self._parts
        message: str | bytes
        if decoder is not None:
            try:
                parts.append(decoder.decode(b"", True))
            except UnicodeDecodeError:
                raise _Failure(_CLOSE_INVALID_DATA, "invalid UTF-8") from None
            message = "".join(parts)
        else:
            message = b"".join(parts)
        self._reset_message()
        self._deliver(message)

    def _reset_message(self) -> None:
        self._msg_opcode = self._msg_size = self._held = 0
        self._parts = []
        self._decoder = None

    def _deliver(self, message: str | bytes) -> None:
        if self.state is _OPEN:  # after our close frame, data is discarded
            if self.pongs and self.flush is not None:  # answer earlier pings first
                self.flush()
            self.deliver(message)

    def _on_control(self, opcode: int, payload: bytes) -> None:
        if opcode == _OP_PING:
            if self.state is _OPEN:
                pong = _header(_OP_PONG, len(payload)) + payload
                if self.coalesce_pongs:
                    self.pongs = [pong]
                else:
                    self.pongs.append(pong)
        elif opcode == _OP_CLOSE:
            self._on_close(payload)
        # a pong: we send no pings, so there is nothing to match it with

    def _on_close(self, payload: bytes) -> None:
        code: int | None = None
        reason = ""
        if len(payload) == 1:
            raise _Failure(_CLOSE_PROTOCOL_ERROR, "close frame too short")
        if payload:
            code = struct.unpack("!H", payload[:2])[0]
            try:
                reason = payload[2:].decode()
            except UnicodeDecodeError:
                raise _Failure(_CLOSE_INVALID_DATA, "invalid UTF-8 in close reason") from None
            if not valid_close_code(code):
                raise _Failure(_CLOSE_PROTOCOL_ERROR, "invalid close code")
        self.close_rcvd = _NO_STATUS if code is None else code
        self.close_reason = reason
        if self.state is _OPEN:  # echo the code (RFC 6455 5.5.1)
            self._close_frame = _close_frame(code)
            self.close_sent = self.close_rcvd
        self._move(FrameState.CLOSED)
        self._drop_input()

    def _fail(self, code: int, reason: str) -> None:
        self.failure = reason
        if self.state is _OPEN:
            self._close_frame = _close_frame(code, reason)
            self.close_sent = code
        self._move(FrameState.CLOSED)
        self._drop_input()

    def _drop_input(self) -> None:
        self._rest = b""
        self._left = 0
        self._reset_message()

    def _move(self, state: FrameState) -> None:
        if state not in _MOVES[self.state]:
            raise RuntimeError(f"WebSocket state {self.state.value} cannot become {state.value}")
        self.state = state

    # -- output ------------------------------------------------------------------------

    def send_close(self, code: int, reason: str = "") -> None:
        """Start the closing handshake with ``code`` (state ``OPEN`` -> ``CLOSING``)."""
        if not valid_close_code(code):
            raise ValueError(f"{code} is not a close code an endpoint may send")
        self._move(FrameState.CLOSING)
        self.pongs.clear()
        self._close_frame = _close_frame(code, reason)
        self.close_sent = code

    def data_to_send(self) -> bytes:
        """What must be written to the client now (pongs, then a close frame); b"" if none."""
        if not self.pongs and self._close_frame is None:
            return b""
        parts, self.pongs = self.pongs, []
        if self._close_frame is not None:
            parts.append(self._close_frame)
            self._close_frame = None
        return b"".join(parts)

    def abandon(self) -> None:
        """The connection is gone: drop every buffer and stop delivering."""
        if self.state is not _CLOSED:
            self._move(FrameState.CLOSED)
        self._drop_input()
        self.pongs = []
        self._close_frame = None
        self.deliver = _ignore  # the callbacks lead back to the driver: no cycle stays
        self.flush = None

    @property
    def buffered_bytes(self) -> int:
        """Client bytes held right now: an incomplete header plus the message in progress."""
        return len(self._rest) + self._held


class DirectConsumer(Protocol):
    """What an application attaches to the ``genapi.direct`` extension (a gateway
    :class:`~genapi.gateway.connection.Connection` is one)."""

    def feed(self, data: str | bytes) -> None:
        """One incoming message (called from the protocol's ``data_received``)."""

    def disconnected(self) -> None:
        """The WebSocket is over (closed by the client, failed, or lost)."""

    def drain_outbox(self) -> None:
        """The socket drains again (``writable`` is True): write what was held back."""


class _Direct:
    """The ``genapi.direct`` extension object handed to the application."""

    __slots__ = ("_core", "_protocol", "_write", "writable")

    def __init__(self, protocol: GenapiWebSocketProtocol) -> None:
        self._protocol: GenapiWebSocketProtocol | None = protocol
        self._core: ServerFrames | None = None  # set once the application accepted
        self._write: Callable[[bytes], None] = _drop
        #: False while the socket's write buffer is over its high-water mark.
        self.writable = True

    def attach(self, consumer: DirectConsumer) -> None:
        """Deliver messages to ``consumer.feed`` from now on (call after accepting)."""
        protocol = self._protocol
        if protocol is None:
            consumer.disconnected()
        else:
            protocol.direct_attach(consumer)

    def write(self, frames: list[str | bytes]) -> None:
        """Write ``frames`` now, in one batch (dropped once a close frame was sent)."""
        core = self._core
        if core is not None and core.state is _OPEN:
            self._write(_frames(frames))

    def close(self, code: int) -> None:
        """Close the WebSocket with ``code`` (the peer gets ``close_grace`` to answer)."""
        protocol = self._protocol
        if protocol is not None:
            protocol.direct_close(code)

    def detach(self) -> None:
        self._protocol = self._core = None
        self._write = _drop
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
        if core.state is _OPEN:
            if core.pongs and self._writing:  # pongs wait (coalesced) while paused
                self.transport.write(core.data_to_send())
        elif core.state is _CLOSED:
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
            code = (core.close_sent if failed else core.close_rcvd) or _NO_STATUS
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
        if self._lost or core.state is _CLOSED:
            self._notify_gone()

    def direct_close(self, code: int) -> None:
        core = self._core
        if core is None or self._lost:
            return
        if core.state is _OPEN:
            self._send_close(core, code)
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
        if self._app_closed:
            raise RuntimeError(f"Unexpected ASGI message '{kind}', after sending "
                               "'websocket.close'.")
        if kind == "websocket.send":
            if core.state is not _OPEN:
                raise ClientDisconnected()
            data = message.get("bytes")
            if data is None:
                data = message.get("text")
            if data is not None:
                self.transport.write(_frames([data]))
        elif kind == "websocket.close":
            self._app_closed = True
            if core.state is _OPEN:
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
        # Whatever closed it (a close frame, uvicorn without one), the connection now ends
        # within close_grace, even when the peer does not read what is left.
        self._arm_deadline()

    # -- closing and flow control ---------------------------------------------------------

    def shutdown(self) -> None:
        core = self._core
        if core is None or self._lost:
            super().shutdown()
            return
        if core.state is _OPEN:
            if self._consumer is None:
                self.queue.put_nowait({"type": "websocket.disconnect", "code": _CLOSE_RESTART})
            self._send_close(core, _CLOSE_RESTART)
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
            if core.state is _OPEN:
                out = core.data_to_send()
                if out:
                    self.transport.write(out)
        if self._consumer is not None:
            self._consumer.drain_outbox()
