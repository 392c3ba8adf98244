"""Differential test: genapi's frame parser against websockets' sans-I/O ``ServerProtocol``.

The same client byte stream (valid and broken frames), cut into chunks at arbitrary points,
goes through genapi's :class:`~genapi.protocol.websocket.ServerFrames` and, frame by frame,
through websockets' ``ServerProtocol``; both must deliver the same messages, answer the
same pings and close with the same code.

websockets' sans-I/O layer leaves the UTF-8 check of text messages to its I/O layer, which
decodes each fragment as it arrives; the reference does the same here (strict, incremental)
and fails with 1007 at the first fragment that cannot be UTF-8.

Where the two differ on purpose, the reference says so and the test checks genapi's side:

* a close frame in the middle of a fragmented message: websockets fails with 1002
  ("incomplete fragmented message"); RFC 6455 allows control frames between fragments, so
  genapi echoes the close (Autobahn 7.1.5 expects that);
* websockets counts a control frame against the size left for the message in progress
  (its ``max_size`` check runs before it knows the opcode): a ping there fails with 1009.
  genapi never counts control frames (they are at most 125 bytes): a control frame over
  125 bytes is a 1002, and a small one mid-message is answered; the test then compares what
  happened before that frame only.
"""

from __future__ import annotations

import codecs
import itertools
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import PayloadTooBig, ProtocolError
from websockets.frames import Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol

from genapi.protocol.websocket import ServerFrames
from tests.gateway.wsframes_support import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    ClientFrame,
    close_code,
    server_frames,
)

MAX = 256  # small, so that oversize messages are common


@dataclass
class Outcome:
    messages: list[str | bytes] = field(default_factory=list)
    pongs: list[bytes] = field(default_factory=list)
    close: int | None = None
    prefix_only: bool = False  # genapi went on where websockets stopped (see the docstring)


def join(parts: list[str | bytes]) -> str | bytes:
    if parts and isinstance(parts[0], str):
        return "".join(str(part) for part in parts)
    return b"".join(bytes(part) for part in parts)  # type: ignore[arg-type]


def reference(frames: list[ClientFrame]) -> Outcome:
    """What websockets' ServerProtocol does with ``frames`` (plus the UTF-8 check)."""
    conn = ServerProtocol(state=State.OPEN, max_size=MAX)
    result = Outcome()
    parts: list[str | bytes] = []
    decoder: codecs.IncrementalDecoder | None = None
    for frame in frames:
        conn.receive_data(frame.serialize())
        written = server_frames(b"".join(conn.data_to_send()))
        result.pongs += [payload for opcode, payload in written if opcode == OP_PONG]
        for event in conn.events_received():
            if event.opcode in (Opcode.TEXT, Opcode.BINARY):
                parts = []
                decoder = (codecs.getincrementaldecoder("utf-8")()
                           if event.opcode is Opcode.TEXT else None)
            if event.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
                if decoder is not None:
                    try:
                        parts.append(decoder.decode(event.data, event.fin))
                    except UnicodeDecodeError:
                        result.close = 1007
                        return result
                else:
                    parts.append(bytes(event.data))
                if event.fin:
                    result.messages.append(join(parts))
        exc = conn.parser_exc
        if exc is not None:
            if isinstance(exc, PayloadTooBig) and frame.opcode >= OP_CLOSE:
                if len(frame.payload) > 125:
                    result.close = 1002
                else:
                    result.prefix_only = True
            elif isinstance(exc, ProtocolError) and str(exc) == "incomplete fragmented message":
                assert conn.close_rcvd is not None
                result.close = conn.close_rcvd.code
            else:
                result.close = close_code(written)
            return result
        if conn.close_rcvd is not None:
            result.close = close_code(written)
            return result
    return result


def genapi(data: bytes, cuts: list[int]) -> Outcome:
    result = Outcome()
    core = ServerFrames(result.messages.append, max_message_bytes=MAX)
    out = b""
    bounds = [0, *sorted(set(cuts)), len(data)]
    for start, end in itertools.pairwise(bounds):
        core.receive_data(data[start:end])
        out += core.data_to_send()
        assert core.buffered_bytes <= MAX + 131
    written = server_frames(out)
    result.pongs = [payload for opcode, payload in written if opcode == OP_PONG]
    result.close = close_code(written)
    return result


# -- strategies -------------------------------------------------------------------------------

keys = st.binary(min_size=4, max_size=4)
mostly = st.sampled_from([True] * 19 + [False])  # hypothesis would pick 0 of integers(0, n) often
bad_utf8 = st.sampled_from([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
                            b"\xe2\x82", b"\x80", b"\xf0\x9f\x98"])


@st.composite
def text_bytes(draw: st.DrawFn) -> bytes:
    data = draw(st.text(max_size=40)).encode()
    if draw(st.sampled_from([False] * 4 + [True])):  # now and then not UTF-8
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(bad_utf8) + data[at:]
    return data


VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000,
               4999]
INVALID_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]
EDGE_CODES = [999, 1000, 1003, 1004, 1006, 1007, 1014, 1015, 2999, 3000, 4999, 5000]


@st.composite
def close_frame(draw: st.DrawFn) -> ClientFrame:
    """Mostly well-formed; sometimes empty, one byte, a bad code or a bad reason."""
    kind = draw(st.sampled_from(["valid"] * 4 + ["invalid", "edge", "any", "none"]))
    code = draw({"valid": st.sampled_from(VALID_CODES), "invalid": st.sampled_from(INVALID_CODES),
                 "edge": st.sampled_from(EDGE_CODES), "any": st.integers(0, 65535),
                 "none": st.none()}[kind])
    if code is None:
        payload = draw(st.sampled_from([b"", b"", b"\x03"]))  # empty, or one byte
    else:
        reason = draw(st.one_of(st.text(max_size=20).map(str.encode),
                                st.text(max_size=20).map(str.encode), bad_utf8))
        payload = code.to_bytes(2, "big") + reason
    return ClientFrame(OP_CLOSE, payload, fin=draw(mostly), key=draw(keys))


@st.composite
def ping_or_pong(draw: st.DrawFn) -> ClientFrame:
    size = draw(st.sampled_from(["small"] * 8 + ["any"] * 3 + ["125|126", "big"]))
    payload = draw({"small": st.binary(max_size=8), "any": st.binary(max_size=125),
                    "125|126": st.sampled_from([b"p" * 125, b"p" * 126]),
                    "big": st.binary(min_size=MAX - 5, max_size=MAX + 40)}[size])
    return ClientFrame(draw(st.sampled_from([OP_PING, OP_PING, OP_PONG])), payload,
                       fin=draw(mostly), key=draw(keys))


def control_frame() -> st.SearchStrategy[ClientFrame]:
    return st.one_of(ping_or_pong(), ping_or_pong(), ping_or_pong(), close_frame())


@st.composite
def message(draw: st.DrawFn) -> list[ClientFrame]:
    """A text or binary message, maybe fragmented, maybe with control frames in between,
    sometimes of a size around the limit."""
    is_text = draw(st.booleans())
    payload = draw(text_bytes()) if is_text else draw(st.binary(max_size=80))
    if draw(st.sampled_from([False] * 4 + [True])):  # around the limit, at once or in fragments
        size = draw(st.sampled_from([MAX - 1, MAX, MAX, MAX + 1, MAX + 1, 2 * MAX]))
        payload = (payload or b"x") * (size // max(len(payload), 1) + 1)
        payload = payload[:size]
    cuts = sorted(draw(st.lists(st.integers(0, len(payload)), max_size=4)))
    pieces = [payload[a:b] for a, b in zip([0, *cuts], [*cuts, len(payload)], strict=False)]
    frames = []
    for i, piece in enumerate(pieces):
        opcode = (OP_TEXT if is_text else OP_BINARY) if i == 0 else OP_CONT
        frames.append(ClientFrame(opcode, piece, fin=i == len(pieces) - 1, key=draw(keys)))
        if i < len(pieces) - 1 and draw(st.sampled_from([False] * 3 + [True])):
            frames.append(draw(control_frame()))
    return frames


@st.composite
def broken_frame(draw: st.DrawFn) -> ClientFrame:
    """A frame with one thing (or more) wrong: opcode, reserved bits, mask, or a
    continuation/fin out of place."""
    frame = ClientFrame(draw(st.sampled_from([OP_TEXT, OP_BINARY, OP_CONT, OP_PING])),
                        draw(st.binary(max_size=30)), fin=draw(st.booleans()), key=draw(keys))
    flaw = draw(st.sampled_from(["opcode", "rsv", "unmasked", "as is"]))
    if flaw == "opcode":
        frame = ClientFrame(draw(st.sampled_from([3, 4, 5, 6, 7, 11, 12, 13, 14, 15])),
                            frame.payload, fin=frame.fin, key=frame.key)
    elif flaw == "rsv":
        frame = ClientFrame(frame.opcode, frame.payload, fin=frame.fin,
                            rsv=draw(st.integers(1, 7)), key=frame.key)
    elif flaw == "unmasked":
        frame = ClientFrame(frame.opcode, frame.payload, fin=frame.fin, masked=False)
    return frame


@st.composite
def item(draw: st.DrawFn) -> list[ClientFrame]:
    kind = draw(st.sampled_from(["message"] * 6 + ["ping or pong"] * 2 + ["broken"]))
    if kind == "message":
        return draw(message())
    return [draw(ping_or_pong() if kind == "ping or pong" else broken_frame())]


@st.composite
def stream(draw: st.DrawFn) -> list[ClientFrame]:
    """Messages, pings and broken frames; most of the time a close frame at the end."""
    frames = [frame for part in draw(st.lists(item(), max_size=8)) for frame in part]
    if draw(st.sampled_from([True] * 3 + [False])):
        frames.append(draw(close_frame()))
    return frames


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames=stream(), data=st.data())
def test_same_messages_pongs_and_close_code_as_websockets(frames: list[ClientFrame],
                                                          data: st.DataObject) -> None:
    """Any client stream, cut anywhere: the messages, pongs and close code websockets gives."""
    wire = b"".join(frame.serialize() for frame in frames)
    cuts = data.draw(st.lists(st.integers(0, len(wire)), max_size=12), label="cuts")
    expected, found = reference(frames), genapi(wire, cuts)
    if expected.prefix_only:
        assert found.messages[:len(expected.messages)] == expected.messages
        assert found.pongs[:len(expected.pongs)] == expected.pongs
        return
    assert found.messages == expected.messages
    assert found.pongs == expected.pongs
    assert found.close == expected.close
