"""Client frames for the WebSocket driver tests: built by hand, so they can be wrong on purpose."""

from __future__ import annotations

import struct
from dataclasses import dataclass

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def mask_bytes(payload: bytes, key: bytes) -> bytes:
    return bytes(b ^ key[i % 4] for i, b in enumerate(payload))


@dataclass(frozen=True)
class ClientFrame:
    """One frame as a client sends it (masked unless told otherwise)."""

    opcode: int
    payload: bytes = b""
    fin: bool = True
    rsv: int = 0  # the three reserved bits, 0-7
    masked: bool = True
    key: bytes = b"\x37\xfa\x21\x3d"

    def serialize(self) -> bytes:
        first = (0x80 if self.fin else 0) | (self.rsv << 4) | self.opcode
        n = len(self.payload)
        mask_bit = 0x80 if self.masked else 0
        if n < 126:
            head = struct.pack("!BB", first, mask_bit | n)
        elif n < 65536:
            head = struct.pack("!BBH", first, mask_bit | 126, n)
        else:
            head = struct.pack("!BBQ", first, mask_bit | 127, n)
        if not self.masked:
            return head + self.payload
        return head + self.key + mask_bytes(self.payload, self.key)


def close_payload(code: int | None, reason: bytes = b"") -> bytes:
    return b"" if code is None else struct.pack("!H", code) + reason


def server_frames(data: bytes) -> list[tuple[int, bytes]]:
    """(opcode, payload) of each unmasked, final frame the server wrote."""
    frames, pos = [], 0
    while pos < len(data):
        first, length = data[pos], data[pos + 1] & 0x7F
        pos += 2
        if length == 126:
            length = struct.unpack_from("!H", data, pos)[0]
            pos += 2
        elif length == 127:
            length = struct.unpack_from("!Q", data, pos)[0]
            pos += 8
        assert first & 0x80, "server frames are final"
        frames.append((first & 0x0F, data[pos:pos + length]))
        pos += length
    return frames


def close_code(frames: list[tuple[int, bytes]]) -> int | None:
    """The code of the close frame among ``frames`` (1005 for an empty one, None if none)."""
    for opcode, payload in frames:
        if opcode == OP_CLOSE:
            return struct.unpack("!H", payload[:2])[0] if payload else 1005
    return None
