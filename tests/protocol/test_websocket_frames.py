"""genapi's WebSocket frame layer (``ServerFrames``, sans-I/O): RFC 6455 rules and bounds."""

from __future__ import annotations

import asyncio
import inspect
import time

import pytest
import uvicorn
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState

from genapi.gateway.wsserver import UVICORN_MEMBERS, GenapiWebSocketProtocol
from genapi.protocol.websocket import FrameState, ServerFrames, valid_close_code
from tests.gateway.wsframes_support import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    ClientFrame,
    close_code,
    close_payload,
    server_frames,
)

MAX = 1000


class Run:
    """A ServerFrames fed some bytes, with what it delivered and wrote."""

    def __init__(self, *frames: ClientFrame, max_message_bytes: int = MAX,
                 chunk: int | None = None) -> None:
        self.messages: list[str | bytes] = []
        self.core = ServerFrames(self.messages.append, max_message_bytes=max_message_bytes)
        self.out = b""
        self.feed(b"".join(f.serialize() for f in frames), chunk)

    def feed(self, data: bytes, chunk: int | None = None) -> None:
        step = chunk or max(len(data), 1)
        for i in range(0, len(data), step):
            self.core.receive_data(data[i:i + step])
            self.out += self.core.data_to_send()

    @property
    def written(self) -> list[tuple[int, bytes]]:
        return server_frames(self.out)

    @property
    def close_code(self) -> int | None:
        return close_code(self.written)


def text(data: str, *, fin: bool = True) -> ClientFrame:
    return ClientFrame(OP_TEXT, data.encode(), fin=fin)


def cont(data: bytes, *, fin: bool = True) -> ClientFrame:
    return ClientFrame(OP_CONT, data, fin=fin)


def close(code: int | None, reason: bytes = b"") -> ClientFrame:
    return ClientFrame(OP_CLOSE, close_payload(code, reason))


# -- failures: the close code, and nothing delivered after --------------------------------

FAILURES = {
    **{f"reserved opcode {op:#x}": ([ClientFrame(op, b"x")], 1002)
       for op in (3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF)},
    **{f"reserved bits {rsv}": ([ClientFrame(OP_TEXT, b"x", rsv=rsv)], 1002)
       for rsv in range(1, 8)},
    "unmasked frame": ([ClientFrame(OP_TEXT, b"x", masked=False)], 1002),
    "one-byte close payload": ([ClientFrame(OP_CLOSE, b"\x03")], 1002),
    "close reason not UTF-8": ([close(1000, b"\xff\xfe")], 1007),
    **{f"close code {code}": ([close(code)], 1002)
       for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535)},
    "ping of 126 bytes": ([ClientFrame(OP_PING, b"p" * 126)], 1002),
    "close of 126 bytes": ([ClientFrame(OP_CLOSE, close_payload(1000, b"r" * 124))], 1002),
    "fragmented ping": ([ClientFrame(OP_PING, b"p", fin=False)], 1002),
    "fragmented close": ([ClientFrame(OP_CLOSE, close_payload(1000), fin=False)], 1002),
    "continuation without a start": ([cont(b"x")], 1002),
    "text inside a fragmented message": ([text("a", fin=False), text("b")], 1002),
    "binary inside a fragmented message": (
        [text("a", fin=False), ClientFrame(OP_BINARY, b"b")], 1002),
    "invalid UTF-8 in a text frame": ([ClientFrame(OP_TEXT, b"ok\xc0\xafno")], 1007),
    "surrogate in a text frame": ([ClientFrame(OP_TEXT, b"\xed\xa0\x80")], 1007),
    "invalid UTF-8 in a fragment": ([text("a", fin=False), cont(b"\xff", fin=False)], 1007),
    "truncated UTF-8 at the end of a message": ([text("a", fin=False), cont(b"\xe2\x82")], 1007),
    "a frame over the limit": ([ClientFrame(OP_BINARY, b"x" * (MAX + 1))], 1009),
    "fragments over the limit": (
        [ClientFrame(OP_BINARY, b"x" * 600, fin=False), cont(b"y" * 401)], 1009),
}


@pytest.mark.parametrize("chunk", [None, 1, 3])
@pytest.mark.parametrize("name", list(FAILURES))
def test_a_broken_frame_fails_the_connection(name: str, chunk: int | None) -> None:
    """Each RFC 6455 violation closes with its code, whole or split into tiny chunks, and
    nothing after it is delivered or answered."""
    frames, code = FAILURES[name]
    run = Run(text("before"), *frames, text("after"), ClientFrame(OP_PING, b"p"), chunk=chunk)
    assert run.messages == ["before"]
    assert run.close_code == code
    assert run.core.state is FrameState.CLOSED
    assert run.written[-1][0] == OP_CLOSE and len(run.written) == 1
    assert run.core.buffered_bytes == 0


def test_invalid_close_codes_are_never_echoed() -> None:
    """The codes the spec forbids on the wire are refused; the registered ones accepted."""
    assert [c for c in range(5100) if valid_close_code(c)] == [
        1000, 1001, 1002, 1003, *range(1007, 1015), *range(3000, 5000)]


# -- what passes ----------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [None, 1, 2, 5])
def test_fragments_and_interleaved_control_frames(chunk: int | None) -> None:
    """Fragments are reassembled (UTF-8 split anywhere), pings answered in order, pongs
    ignored, and a close frame is echoed with its code."""
    euro = "€".encode()  # three bytes, split across fragments
    run = Run(ClientFrame(OP_TEXT, b"a" + euro[:1], fin=False), ClientFrame(OP_PING, b"1"),
              cont(euro[1:2], fin=False), ClientFrame(OP_PONG, b"?"), cont(euro[2:] + b"b"),
              ClientFrame(OP_BINARY, b"\x00\xff", fin=False), ClientFrame(OP_PING, b"2"),
              cont(b"", fin=False), cont(b"\x01"), ClientFrame(OP_TEXT, b""),
              close(4000, b"bye"), chunk=chunk)
    assert run.messages == ["a€b", b"\x00\xff\x01", ""]
    assert run.written == [(OP_PONG, b"1"), (OP_PONG, b"2"), (OP_CLOSE, b"\x0f\xa0")]
    assert run.core.state is FrameState.CLOSED
    assert (run.core.close_rcvd, run.core.close_reason) == (4000, "bye")


def test_an_empty_close_is_echoed_empty() -> None:
    """A close without a code gets an empty close back (1005 is never sent)."""
    run = Run(close(None))
    assert run.written == [(OP_CLOSE, b"")]
    assert run.core.close_rcvd == 1005


def test_a_close_during_a_fragmented_message_is_a_clean_close() -> None:
    """Control frames may come between fragments: a close there is echoed (Autobahn 7.1.5),
    and the unfinished message is dropped."""
    run = Run(text("frag", fin=False), close(1000), cont(b"ment"))
    assert run.messages == []
    assert run.close_code == 1000


def test_a_message_of_exactly_the_limit_passes() -> None:
    """The limit counts all fragments: exactly max_message_bytes is accepted."""
    run = Run(ClientFrame(OP_BINARY, b"x" * 600, fin=False), cont(b"y" * 400))
    assert run.messages == [b"x" * 600 + b"y" * 400]
    assert run.close_code is None


def test_our_close_then_the_peers_close() -> None:
    """After send_close, data is discarded, pings are not answered, and the peer's close
    completes the handshake without a second close frame."""
    run = Run()
    run.core.send_close(1001)
    run.out += run.core.data_to_send()
    run.feed(text("late").serialize() + ClientFrame(OP_PING, b"p").serialize())
    assert run.core.state is FrameState.CLOSING
    run.feed(close(1001).serialize())
    assert run.messages == []
    assert run.written == [(OP_CLOSE, b"\x03\xe9")]
    assert run.core.state is FrameState.CLOSED
    with pytest.raises(RuntimeError):
        run.core.send_close(1000)


def test_a_long_close_reason_is_cut_at_a_character() -> None:
    """A close frame holds at most 123 bytes of reason, cut where UTF-8 allows."""
    run = Run()
    run.core.send_close(1001, "é" * 100)
    [(opcode, payload)] = server_frames(run.core.data_to_send())
    assert opcode == OP_CLOSE and len(payload) == 2 + 122
    assert payload[2:].decode() == "é" * 61


def test_sending_a_reserved_close_code_is_refused() -> None:
    """1005/1006 describe closes; they are never written."""
    with pytest.raises(ValueError, match="1006"):
        Run().core.send_close(1006)


# -- bounds ------------------------------------------------------------------------------------


def test_a_fragment_flood_fails_at_the_limit_without_holding_more() -> None:
    """FIN=0 then 1 KB continuations: 1009 as the running size passes the limit, with at
    most the limit held on the way."""
    limit = 64 * 1024
    run = Run(ClientFrame(OP_BINARY, b"", fin=False), max_message_bytes=limit)
    fragment = cont(b"z" * 1024, fin=False).serialize()
    held = 0
    sent = 0
    while run.core.state is FrameState.OPEN:
        run.feed(fragment)
        sent += 1024
        held = max(held, run.core.buffered_bytes)
        assert sent < 2 * limit, "the flood was not stopped"
    assert run.close_code == 1009
    assert held <= limit and sent == limit + 1024
    assert run.core.buffered_bytes == 0


def test_a_large_frame_arriving_in_pieces_is_consumed_as_it_arrives() -> None:
    """A partial frame is not kept whole and re-copied: held bytes grow with what arrived,
    the unparsed remainder stays under a header's size, and 4 MB in 1-KB pieces is linear."""
    size = 4 * 1024 * 1024
    frame = ClientFrame(OP_BINARY, bytes(range(256)) * (size // 256)).serialize()
    run = Run(max_message_bytes=size)
    started = time.perf_counter()
    for i in range(0, len(frame) - 1024, 1024):
        run.core.receive_data(frame[i:i + 1024])
        assert run.core.buffered_bytes <= i + 1024
    run.core.receive_data(frame[i + 1024:])
    elapsed = time.perf_counter() - started
    assert run.messages == [bytes(range(256)) * (size // 256)]
    assert elapsed < 2.0  # quadratic re-copying takes minutes here


def test_invalid_utf8_fails_before_the_frame_is_complete() -> None:
    """Text is validated as it arrives: an invalid byte in the first piece of a large frame
    fails at once, not after the rest was buffered."""
    frame = ClientFrame(OP_TEXT, b"\xff" + b"a" * 100_000).serialize()
    run = Run()
    run.core.max_message_bytes = 200_000
    run.feed(frame[:100])
    assert run.close_code == 1007


def test_pings_coalesce_while_the_socket_does_not_drain() -> None:
    """With coalesce_pongs on (the driver's state while writes are paused), only the
    latest ping is answered, however many arrive."""
    run = Run()
    run.core.coalesce_pongs = True
    run.core.receive_data(b"".join(ClientFrame(OP_PING, b"%d" % i).serialize()
                                   for i in range(10_000)))
    assert server_frames(run.core.data_to_send()) == [(OP_PONG, b"9999")]


def test_pongs_go_out_before_the_message_that_followed_the_ping() -> None:
    """The flush hook runs before a message is delivered while pongs wait, so a driver that
    answers at once keeps the order of the wire (Autobahn 5.6)."""
    wire: list[object] = []
    core: ServerFrames

    def flush() -> None:
        wire.extend(server_frames(core.data_to_send()))

    core = ServerFrames(wire.append, max_message_bytes=MAX, flush=flush)
    core.receive_data(text("a", fin=False).serialize() + ClientFrame(OP_PING, b"p").serialize()
                      + cont(b"b").serialize())
    assert wire == [(OP_PONG, b"p"), "ab"]


# -- uvicorn --------------------------------------------------------------------------------


def test_the_uvicorn_internals_genapi_relies_on_exist() -> None:
    """genapi's driver subclasses uvicorn's WebSocketsSansIOProtocol (no public API): every
    method and attribute it uses must still be there, or this fails naming them."""
    methods, attributes = UVICORN_MEMBERS
    missing = sorted(m for m in methods
                     if not inspect.isfunction(getattr(WebSocketsSansIOProtocol, m, None)))
    config = uvicorn.Config(app=lambda *a: None, ws="websockets-sansio")
    loop = asyncio.new_event_loop()
    try:
        protocol = WebSocketsSansIOProtocol(config, ServerState(), {}, _loop=loop)
    finally:
        loop.close()
    missing += sorted(a for a in attributes if not hasattr(protocol, a))
    assert not missing, f"uvicorn no longer has: {', '.join(missing)}"
    assert issubclass(GenapiWebSocketProtocol, WebSocketsSansIOProtocol)
