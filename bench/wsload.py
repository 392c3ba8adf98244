"""A lean closed-loop WebSocket load generator (asyncio protocols, hand-rolled framing).

The load generator must cost far less than the servers it measures, or it measures itself.
So it skips a WebSocket library: each connection is an ``asyncio.Protocol`` that writes
pre-encoded, masked frames (RFC 6455 clients must mask; a zero masking key keeps the
payload bytes as they are) and parses only frame headers of what comes back. A call is
complete when ``frames_per_call`` frames arrived (the gateway answers a push with the
``api`` push and the ``phx_reply``; an echo server answers with one frame).
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

__all__ = ["LoadResult", "run"]

MakeFrame = Callable[[int, int], bytes]  # (connection index, sequence) -> text payload


def client_frame(payload: bytes) -> bytes:
    """A masked text frame with a zero key (the payload is unchanged by masking)."""
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x81, 0x80 | n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x81, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
    return header + b"\x00\x00\x00\x00" + payload


CLOSE_FRAME = b"\x88\x82\x00\x00\x00\x00\x03\xe8"  # masked close, code 1000


@dataclass
class LoadResult:
    """What a run measured."""

    calls: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Completed calls per second."""
        return self.calls / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        """Latency percentile in ms (q in 0..1)."""
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


class _Conn(asyncio.Protocol):
    def __init__(self, index: int, host: str, path: str, make: MakeFrame,
                 frames_per_call: int, prelude: list[bytes], state: _State,
                 subprotocol: str | None = None) -> None:
        self.index = index
        offer = f"Sec-WebSocket-Protocol: {subprotocol}\r\n" if subprotocol else ""
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: "
            f"{base64.b64encode(os.urandom(16)).decode()}\r\nSec-WebSocket-Version: 13\r\n"
            f"{offer}\r\n"
        ).encode()
        self.make = make
        self.frames_per_call = frames_per_call
        self.prelude = list(prelude)  # frames sent (one per answer) before the calls start
        self.state = state
        self.buffer = b""
        self.upgraded = False
        self.pending = 0
        self.seq = 0
        self.started = 0.0
        self.transport: asyncio.Transport | None = None
        self.ready = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = buffer
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                self.ready.set_exception(RuntimeError(buffer[:end].decode(errors="replace")))
                return
            self.upgraded = True
            buffer = buffer[end + 4:]
            self._next()
        pos = 0
        size = len(buffer)
        while size - pos >= 2:
            length = buffer[pos + 1] & 0x7F
            head = 2
            if length == 126:
                if size - pos < 4:
                    break
                length = struct.unpack_from("!H", buffer, pos + 2)[0]
                head = 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = struct.unpack_from("!Q", buffer, pos + 2)[0]
                head = 10
            if size - pos < head + length:
                break
            pos += head + length
            self.pending -= 1
            if self.pending == 0:
                self._complete()
        self.buffer = buffer[pos:]

    def _next(self) -> None:
        if self.prelude:
            self.pending = 1
            self.transport.write(client_frame(self.prelude.pop(0)))  # type: ignore[union-attr]
            return
        if not self.ready.done():
            self.ready.set_result(None)
        if self.state.stop:
            return
        self.seq += 1
        self.pending = self.frames_per_call
        self.started = time.perf_counter()
        self.transport.write(client_frame(self.make(self.index, self.seq)))  # type: ignore[union-attr]

    def _complete(self) -> None:
        if self.started and self.state.measuring:
            self.state.latencies.append((time.perf_counter() - self.started) * 1000)
        self.started = 0.0
        self._next()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(exc or ConnectionError("closed"))


@dataclass
class _State:
    stop: bool = False
    measuring: bool = False
    latencies: list[float] = field(default_factory=list)


async def run(url: str, make: MakeFrame, *, connections: int, duration: float,
              warmup: float, frames_per_call: int, prelude: list[bytes] | None = None,
              subprotocol: str | None = None) -> LoadResult:
    """Open ``connections`` to ``url`` (ws://host:port/path?query) and load it.

    ``subprotocol`` is offered in the handshake (WAMP peers require ``wamp.2.json``).
    """
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    loop = asyncio.get_running_loop()
    state = _State()
    conns = []
    for index in range(connections):
        _, conn = await loop.create_connection(
            lambda i=index: _Conn(i, parts.netloc, path, make, frames_per_call,
                                  prelude or [], state, subprotocol),
            parts.hostname, parts.port,
        )
        conns.append(conn)
    await asyncio.gather(*(c.ready for c in conns))
    await asyncio.sleep(warmup)
    state.measuring = True
    started = time.perf_counter()
    await asyncio.sleep(duration)
    state.measuring = False
    seconds = time.perf_counter() - started
    state.stop = True
    result = LoadResult(len(state.latencies), seconds, state.latencies)
    for conn in conns:
        if conn.transport is not None:
            conn.transport.write(CLOSE_FRAME)  # a clean close, so servers log nothing
            conn.transport.close()
    await asyncio.sleep(0.05)
    return result
