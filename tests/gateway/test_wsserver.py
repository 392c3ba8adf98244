"""genapi's WebSocket server protocol: the frames it writes, read back by websockets."""

from __future__ import annotations

from collections.abc import Generator
from typing import TypeVar

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from genapi.protocol.websocket import encode_frames as _frames

T = TypeVar("T")


def parse(data: bytes, count: int) -> list[Frame]:
    """``count`` frames read from ``data`` by websockets' parser, which must use it all."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    frames = []
    for _ in range(count):
        frames.append(_run(Frame.parse(reader.read_exact, mask=False)))
    assert _run(reader.read_to_eof(1 << 30)) == b""  # nothing left over
    return frames


def _run(parser: Generator[None, None, T]) -> T:
    """Run one of websockets' generator-based parsers over data already fed."""
    try:
        next(parser)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    raise AssertionError("truncated frame")


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65_535, 65_536, 100_000])
def test_text_and_binary_frames_of_every_length(size: int) -> None:
    """One batch holds whole, final, unmasked frames: str as text, bytes as binary."""
    text, blob = "x" * size, bytes(range(256)) * (size // 256) + b"\x07" * (size % 256)
    found = parse(_frames([text, blob, "é"]), 3)
    assert [(f.opcode, f.fin) for f in found] == [(Opcode.TEXT, True), (Opcode.BINARY, True),
                                                  (Opcode.TEXT, True)]
    assert found[0].data == text.encode()
    assert found[1].data == blob
    assert found[2].data == "é".encode()


def test_bytes_like_frames_are_binary() -> None:
    [frame] = parse(_frames([bytearray(b"\x00\x01")]), 1)  # type: ignore[list-item]
    assert (frame.opcode, frame.data) == (Opcode.BINARY, b"\x00\x01")
