"""RFC 6455 WebSocket frames, server side, after the handshake — sans I/O.

:class:`ServerFrames` takes bytes in (:meth:`ServerFrames.receive_data`), hands each
complete message to a callback and produces what to write (:meth:`ServerFrames.data_to_send`:
pongs, the close frame). It fails the connection with the RFC's codes: 1002 for protocol
violations (reserved opcodes or bits, unmasked frames, oversized or fragmented control
frames, stray continuations, bad close frames, invalid close codes, never echoed), 1007 for
invalid UTF-8 (checked as the bytes arrive), 1009 as soon as a frame header would take a
message past ``max_message_bytes``. Partial frames are consumed as they arrive, never
re-copied; pings are answered one pong each, or only the latest while the writer is paused.
Its lifecycle is :class:`FrameState` with one owner of the transitions.

The driver that moves the bytes is :mod:`genapi.gateway.wsserver`; a differential test
checks this class against websockets' own ``ServerProtocol``.
"""

from __future__ import annotations

import codecs
import enum
import struct
from collections.abc import Callable
from typing import Any

from ..errors import FrameViolation

_apply_mask: Callable[[bytes, bytes], bytes] | None
try:  # websockets' C helper; the fallback is correct, only slower
    from websockets.speedups import apply_mask as _apply_mask
except ImportError:  # pragma: no cover - depends on the platform's wheel
    _apply_mask = None

__all__ = ["CLOSE_RESTART", "NO_STATUS", "FrameState", "ServerFrames", "drop",
           "encode_frames", "valid_close_code"]

_OP_CONT, _OP_TEXT, _OP_BINARY, _OP_CLOSE, _OP_PING, _OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_KNOWN_OPCODES = 0x0707  # bit n set for opcode n: 0x0-0x2 and 0x8-0xA; the rest are reserved
_CLOSE_PROTOCOL_ERROR = 1002
_CLOSE_INVALID_DATA = 1007
_CLOSE_TOO_BIG = 1009
CLOSE_RESTART = 1012
NO_STATUS = 1005  # what a close frame without a code means; never sent

_utf8_decoder = codecs.getincrementaldecoder("utf-8")

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


def encode_frames(frames: list[str | bytes]) -> bytes:
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


def drop(data: bytes) -> None:
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
                            raise FrameViolation(_CLOSE_INVALID_DATA, "invalid UTF-8") from None
                        pos = end
                        if self.state is _OPEN:  # after our close frame, data is discarded
                            if self.pongs and self.flush is not None:  # earlier pings first
                                self.flush()
                            self.deliver(text)
                        continue
                opcode = b0 & 0x0F
                if not (1 << opcode) & _KNOWN_OPCODES:
                    raise FrameViolation(_CLOSE_PROTOCOL_ERROR, "reserved opcode")
                if not b1 & 0x80:
                    raise FrameViolation(_CLOSE_PROTOCOL_ERROR, "unmasked frame")
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
                        raise FrameViolation(_CLOSE_PROTOCOL_ERROR, "control frame too long")
                elif self._msg_size + length > max_size:  # checked before the payload arrives
                    raise FrameViolation(_CLOSE_TOO_BIG, "message too big")
                if b0 & 0x70:
                    raise FrameViolation(_CLOSE_PROTOCOL_ERROR, "reserved bits set")
                if opcode >= _OP_CLOSE:
                    if not b0 & 0x80:
                        raise FrameViolation(_CLOSE_PROTOCOL_ERROR, "fragmented control frame")
                elif opcode == _OP_CONT:
                    if not self._msg_opcode:
                        raise FrameViolation(_CLOSE_PROTOCOL_ERROR,
                                             "continuation without a message")
                elif self._msg_opcode:
                    raise FrameViolation(_CLOSE_PROTOCOL_ERROR,
                                         "new message inside a fragmented one")
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
                                raise FrameViolation(_CLOSE_INVALID_DATA, "invalid UTF-8") from None
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
        except FrameViolation as failure:
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
            raise FrameViolation(_CLOSE_INVALID_DATA, "invalid UTF-8") from None

    def _finish(self) -> None:
        decoder, parts = self._decoder, self._parts
        message: str | bytes
        if decoder is not None:
            try:
                parts.append(decoder.decode(b"", True))
            except UnicodeDecodeError:
                raise FrameViolation(_CLOSE_INVALID_DATA, "invalid UTF-8") from None
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
            raise FrameViolation(_CLOSE_PROTOCOL_ERROR, "close frame too short")
        if payload:
            code = struct.unpack("!H", payload[:2])[0]
            try:
                reason = payload[2:].decode()
            except UnicodeDecodeError:
                raise FrameViolation(_CLOSE_INVALID_DATA, "invalid UTF-8 in close reason") from None
            if not valid_close_code(code):
                raise FrameViolation(_CLOSE_PROTOCOL_ERROR, "invalid close code")
        self.close_rcvd = NO_STATUS if code is None else code
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


