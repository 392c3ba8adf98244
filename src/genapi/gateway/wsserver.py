"""A uvicorn WebSocket protocol with genapi's ``genapi.direct`` ASGI extension.

uvicorn's own WebSocket protocols hand every message to the application through an ASGI
queue, pause and resume reading around each message, and write every frame with its own
system call. For a gateway answering each push with two frames (the ``api`` push and the
``phx_reply``) that overhead dominates. This protocol keeps uvicorn's handshake (and its
scope), then, when the application attaches to the ``genapi.direct`` extension offered in
the scope, parses frames itself and calls the application synchronously, and writes each
batch of outgoing frames with one ``transport.write``. Applications that ignore the
extension get standard ASGI messages.

Per-message compression is not negotiated (Phoenix does not use it either) and the
server sends no keepalive pings: the Phoenix protocol has its own heartbeats.

``genapi serve`` uses this protocol; with plain ``uvicorn`` pass
``--ws genapi.gateway.wsserver:GenapiWebSocketProtocol`` to get it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.server import ServerProtocol

_apply_mask: Callable[[bytes, bytes], bytes] | None
try:  # websockets' C helper; the fallback is correct, only slower
    from websockets.speedups import apply_mask as _apply_mask
except ImportError:  # pragma: no cover - depends on the platform's wheel
    _apply_mask = None

if TYPE_CHECKING:
    from .connection import Connection

__all__ = ["GenapiWebSocketProtocol"]

_OP_CONT, _OP_TEXT, _OP_BINARY, _OP_CLOSE, _OP_PING, _OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_CLOSE_PROTOCOL_ERROR = 1002
_CLOSE_INVALID_DATA = 1007
_CLOSE_TOO_BIG = 1009


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


class _Direct:
    """The ``genapi.direct`` extension object handed to the application."""

    __slots__ = ("_protocol", "connection", "writable")

    def __init__(self, protocol: GenapiWebSocketProtocol) -> None:
        self._protocol = protocol
        self.connection: Connection | None = None
        self.writable = True

    def attach(self, connection: Connection) -> None:
        self.connection = connection
        self._protocol.direct_attached()

    def write(self, frames: list[str | bytes]) -> None:
        transport = self._protocol.transport
        if not transport.is_closing():
            transport.write(_frames(frames))

    def close(self, code: int) -> None:
        self._protocol.direct_close(code)


class GenapiWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol plus the ``genapi.direct`` fast path."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # no permessage-deflate: frames after the handshake are parsed here, uncompressed
        self.conn = ServerProtocol(extensions=[], max_size=self.config.ws_max_size,
                                   logger=self.logger)
        self._direct = _Direct(self)
        self._buffer = b""
        self._fragments: list[bytes] = []
        self._fragment_opcode = 0
        self._closing = False

    # -- handshake: uvicorn builds the scope; we add the extension ----------------------

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"]["genapi.direct"] = self._direct

    def start_keepalive(self) -> None:
        """No WebSocket pings: Phoenix clients send heartbeats (and would not be counted)."""

    def direct_attached(self) -> None:
        if self.read_paused:  # uvicorn pauses reading until the app receives a message
            self.read_paused = False
            self.transport.resume_reading()

    # -- frames ---------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        connection = self._direct.connection
        if connection is None:
            super().data_received(data)
            return
        buffer = self._buffer + data if self._buffer else data
        pos, size = 0, len(buffer)
        max_size = self.config.ws_max_size
        while size - pos >= 2 and not self._closing:
            b0, b1 = buffer[pos], buffer[pos + 1]
            length = b1 & 0x7F
            head = pos + 2
            if length == 126:
                if size - head < 2:
                    break
                length = struct.unpack_from("!H", buffer, head)[0]
                head += 2
            elif length == 127:
                if size - head < 8:
                    break
                length = struct.unpack_from("!Q", buffer, head)[0]
                head += 8
            if not b1 & 0x80 or b0 & 0x70:  # clients must mask; no extensions negotiated
                self._fail(_CLOSE_PROTOCOL_ERROR)
                return
            if length > max_size:
                self._fail(_CLOSE_TOO_BIG)
                return
            end = head + 4 + length
            if size < end:
                break
            payload = _unmask(buffer[head + 4:end], buffer[head:head + 4])
            pos = end
            if b0 == 0x80 | _OP_TEXT and not self._fragments:  # the usual frame: a whole text
                self._feed_text(connection, payload)
            else:
                self._on_frame(connection, b0 & 0x80, b0 & 0x0F, payload)
        self._buffer = buffer[pos:] if pos < size else b""

    def _on_frame(self, connection: Connection, fin: int, opcode: int, payload: bytes) -> None:
        if opcode >= _OP_CLOSE:
            if not fin or len(payload) > 125:
                self._fail(_CLOSE_PROTOCOL_ERROR)
            elif opcode == _OP_PING:
                self.transport.write(_header(_OP_PONG, len(payload)) + payload)
            elif opcode == _OP_CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                self._closing = True
                if not self.close_sent:
                    self._write_close(code if code not in (1005, 1006) else 1000)
                self.transport.close()
            return
        if opcode == _OP_CONT:
            if not self._fragments:
                self._fail(_CLOSE_PROTOCOL_ERROR)
                return
            self._fragments.append(payload)
            if not fin:
                return
            payload = b"".join(self._fragments)
            opcode, self._fragments = self._fragment_opcode, []
        elif self._fragments:
            self._fail(_CLOSE_PROTOCOL_ERROR)
            return
        elif not fin:
            self._fragments, self._fragment_opcode = [payload], opcode
            return
        if opcode == _OP_TEXT:
            self._feed_text(connection, payload)
        elif opcode == _OP_BINARY:
            connection.feed(payload)
        else:
            self._fail(_CLOSE_PROTOCOL_ERROR)

    def _feed_text(self, connection: Connection, payload: bytes) -> None:
        try:
            text = payload.decode()
        except UnicodeDecodeError:
            self._fail(_CLOSE_INVALID_DATA)
            return
        connection.feed(text)

    # -- closing and flow control ---------------------------------------------------------

    def _write_close(self, code: int) -> None:
        self.close_sent = True
        payload = struct.pack("!H", code)
        self.transport.write(_header(_OP_CLOSE, 2) + payload)

    def _fail(self, code: int) -> None:
        self._closing = True
        if not self.close_sent and not self.transport.is_closing():
            self._write_close(code)
        self.transport.close()

    def direct_close(self, code: int) -> None:
        if self.transport.is_closing():
            return
        if not self.close_sent:
            self._write_close(code)
        # wait briefly for the client's close frame, then drop the connection
        self.close_timer = self.loop.call_later(2.0, self.transport.close)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        connection = self._direct.connection
        if connection is not None:
            connection.disconnected()

    def pause_writing(self) -> None:
        super().pause_writing()
        self._direct.writable = False

    def resume_writing(self) -> None:
        super().resume_writing()
        self._direct.writable = True
        connection = self._direct.connection
        if connection is not None:
            connection.drain_outbox()
