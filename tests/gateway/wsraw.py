"""A raw WebSocket client over TCP for hostile-input tests: any bytes, read or not."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
from urllib.parse import urlsplit

from tests.gateway.wsframes_support import OP_CLOSE


class RawSocket:
    """A hand-made WebSocket client: it sends whatever bytes it is given."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, url: str, path: str = "/socket/websocket?vsn=2.0.0", *,
                      rcvbuf: int | None = None) -> RawSocket:
        """Open a WebSocket to ``url`` (``http://host:port``); ``rcvbuf`` shrinks the
        client's kernel receive buffer (a client that does not read fills it sooner)."""
        parts = urlsplit(url)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (parts.hostname, parts.port))
        reader, writer = await asyncio.open_connection(sock=sock)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read_frame(self, timeout: float = 5.0) -> tuple[int, bytes] | None:
        """The next server frame as (opcode, payload); None at the end of the stream."""
        try:
            async with asyncio.timeout(timeout):
                head = await self.reader.readexactly(2)
                length = head[1] & 0x7F
                if length == 126:
                    length = struct.unpack("!H", await self.reader.readexactly(2))[0]
                elif length == 127:
                    length = struct.unpack("!Q", await self.reader.readexactly(8))[0]
                return head[0] & 0x0F, await self.reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None

    async def close_code(self, timeout: float = 5.0) -> int | None:
        """Read until the server's close frame: its code (1005 if empty); None if the stream
        ended without one."""
        while (frame := await self.read_frame(timeout)) is not None:
            opcode, payload = frame
            if opcode == OP_CLOSE:
                return struct.unpack("!H", payload[:2])[0] if payload else 1005
        return None

    async def at_eof(self, timeout: float = 5.0) -> bool:
        """True once the server closed the TCP connection (after any frames)."""
        try:
            async with asyncio.timeout(timeout):
                while await self.reader.read(65536):
                    pass
            return True
        except ConnectionError:
            return True
        except TimeoutError:
            return False

    def abort(self) -> None:
        self.writer.transport.abort()
