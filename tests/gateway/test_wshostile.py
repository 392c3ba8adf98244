"""Hostile WebSocket input against a real gateway on genapi's driver, over real sockets.

Each test refuses one abuse with the right close code (or an abort), checks that what the
server holds stays under a stated bound and is given back when the connection ends, and
that the gateway then still serves a normal call.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
import time
import weakref
from collections.abc import AsyncIterator
from typing import Any

import pytest

from genapi import ConnectionLimits, Gateway, GatewaySettings, Service
from genapi.gateway.wsserver import GenapiWebSocketProtocol
from tests.gateway.wsframes_support import (
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_TEXT,
    ClientFrame,
    close_payload,
)
from tests.gateway.wsraw import RawSocket
from tests.support.servers import running_app

MAX_MESSAGE = 256 * 1024
GRACE = 0.5


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def assert_freed(ref: weakref.ref[Any]) -> None:
    """``ref``'s object is gone; else say what still holds it."""
    obj = ref()
    if obj is not None:
        holders = [f"{type(r).__name__}: {r!r:.200}" for r in gc.get_referrers(obj)]
        del obj
        raise AssertionError("still referenced by:\n" + "\n".join(holders))


class Server:
    """A gateway served by uvicorn with genapi's driver, its protocol objects tracked."""

    def __init__(self, url: str, gateway: Gateway, protocols: weakref.WeakSet[Any]) -> None:
        self.url = url
        self.gateway = gateway
        self.protocols = protocols

    def protocol(self) -> Any:
        [protocol] = [p for p in self.protocols if not p._lost]
        return protocol

    async def wait_closed(self, timeout: float = 5.0) -> None:
        """Until no connection is open (protocols and the gateway's own)."""
        async with asyncio.timeout(timeout):
            while any(not p._lost for p in self.protocols) or self.gateway.connections:
                await asyncio.sleep(0.01)

    async def serves_a_call(self, raw_client: Any) -> None:
        async with raw_client(self.url) as client:
            await client.join()
            push, reply = await client.call({"request_id": "ok", "service": "svc",
                                             "request_type": "echo", "args": {"n": 7}})
        assert push["result"] == 7 and reply["status"] == "ok"


@contextlib.asynccontextmanager
async def serve(*, sndbuf: int | None = None) -> AsyncIterator[Server]:
    """The gateway; ``sndbuf`` fixes the server sockets' kernel send buffer (no
    autotuning), so that what the peer reads shows in the write buffer at once."""
    svc = Service("svc")

    @svc.function()
    async def echo(n: int) -> int:
        return n

    protocols: weakref.WeakSet[Any] = weakref.WeakSet()

    class Tracked(GenapiWebSocketProtocol):
        close_grace = GRACE
        write_stall_grace = GRACE

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.max_held = 0  # the most client bytes its frame layer held after a read
            protocols.add(self)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self.max_held = max(self.max_held, self.buffered_bytes)

        def connection_made(self, transport: Any) -> None:
            if sndbuf is not None:
                sock = transport.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
            super().connection_made(transport)

    limits = ConnectionLimits(max_frame_bytes=MAX_MESSAGE)
    gateway = Gateway([svc], settings=GatewaySettings(limits=limits))
    async with running_app(gateway, ws=Tracked, ws_max_size=MAX_MESSAGE) as url:
        yield Server(url, gateway, protocols)


async def test_a_fragment_flood_closes_with_1009_at_the_limit(raw_client: Any) -> None:
    """FIN=0 then 1 KB continuations without end: 1009 once the message passes
    max_message_bytes (256 KB), the server never holding more than that, RSS growing by
    less than 32 MB while the client tries to send 64 MB."""
    async with serve() as server:
        ws = await RawSocket.connect(server.url)
        protocol = server.protocol()
        before = rss_bytes()
        started = time.monotonic()
        await ws.send(ClientFrame(OP_TEXT, b"[", fin=False).serialize())
        batch = ClientFrame(OP_CONT, b"1" * 1024, fin=False).serialize() * 64
        reading = asyncio.create_task(ws.close_code(timeout=10))
        sent = 0
        with contextlib.suppress(ConnectionError):
            while not reading.done() and sent < 64 * 1024 * 1024:
                await ws.send(batch)
                sent += len(batch)
        assert await reading == 1009
        assert time.monotonic() - started < 5  # not the 60 s idle timeout
        assert MAX_MESSAGE - 64 * 1024 < protocol.max_held <= MAX_MESSAGE
        assert rss_bytes() - before < 32 * 1024 * 1024
        await server.wait_closed()
        assert protocol.buffered_bytes == 0
        await server.serves_a_call(raw_client)


@pytest.mark.parametrize("opcode", [0x3, 0x7, 0xB, 0xF])
async def test_a_reserved_opcode_closes_with_1002(raw_client: Any, opcode: int) -> None:
    """A data (0x3-0x7) or control (0xB-0xF) opcode nobody defined: 1002, then TCP closes."""
    async with serve() as server:
        ws = await RawSocket.connect(server.url)
        await ws.send(ClientFrame(opcode, b"?").serialize())
        assert await ws.close_code() == 1002
        assert await ws.at_eof()
        await server.wait_closed()
        await server.serves_a_call(raw_client)


@pytest.mark.parametrize(("payload", "code"), [
    (close_payload(1005), 1002),
    (close_payload(999), 1002),
    (close_payload(2000, b"reason"), 1002),
    (b"\x03", 1002),  # one byte
    (close_payload(1000, b"\xff"), 1007),  # reason not UTF-8
    (close_payload(4000, b"bye"), 4000),  # valid: echoed
])
async def test_a_bad_close_frame_is_answered_with_1002_never_echoed(
        raw_client: Any, payload: bytes, code: int) -> None:
    """Close codes nobody may send, a one-byte payload, a non-UTF-8 reason: 1002 or 1007,
    never the client's code back; a valid one is echoed."""
    async with serve() as server:
        ws = await RawSocket.connect(server.url)
        await ws.send(ClientFrame(OP_CLOSE, payload).serialize())
        assert await ws.close_code() == code
        assert await ws.at_eof()
        await server.wait_closed()
        await server.serves_a_call(raw_client)


async def test_a_ping_flood_without_reading_is_aborted_after_the_grace(raw_client: Any) -> None:
    """A client that pings and never reads: pongs coalesce once the socket stops draining,
    and the connection is aborted write_stall_grace (0.5 s) later; what the server holds
    stays small and the protocol object is freed (no cyclic GC needed)."""
    gc.disable()
    try:
        async with serve() as server:
            ws = await RawSocket.connect(server.url, rcvbuf=4096)
            protocol = weakref.ref(server.protocol())
            ping = ClientFrame(OP_PING, b"p" * 125).serialize() * 256
            before = rss_bytes()
            paused_at = None
            started = time.monotonic()
            with contextlib.suppress(ConnectionError):
                while time.monotonic() - started < 20:
                    await ws.send(ping)
                    live = protocol()
                    if live is None or live._lost:
                        break
                    if paused_at is None and not live._writing:
                        paused_at = time.monotonic()
                    assert live.transport.get_write_buffer_size() < 1024 * 1024
                    del live
            aborted_at = time.monotonic()
            assert paused_at is not None, "the server's writes never backed up"
            assert aborted_at - paused_at < GRACE + 2.0
            await server.wait_closed()
            for _ in range(5):  # let the application's task finish its teardown
                await asyncio.sleep(0.01)
            assert_freed(protocol)  # by reference counting alone
            assert rss_bytes() - before < 32 * 1024 * 1024
            ws.abort()
            await server.serves_a_call(raw_client)
    finally:
        gc.enable()


async def test_a_close_completes_even_when_the_peer_never_reads(raw_client: Any) -> None:
    """The gateway closes a connection whose client stopped reading (a slow consumer):
    the close frame is queued behind unread data, and the TCP connection is aborted
    close_grace after it instead of being held open."""
    async with serve() as server:
        ws = await RawSocket.connect(server.url, rcvbuf=4096)
        protocol = server.protocol()
        connection = next(iter(server.gateway.connections))
        # Fill the socket as a stream of pushes would (the peer reads nothing).
        while protocol._writing:
            connection._direct.write(["x" * 65536])
        started = time.monotonic()
        connection.close(1008, flush=False)
        await server.wait_closed(timeout=GRACE + GRACE + 5)
        assert time.monotonic() - started < GRACE + GRACE + 2.0
        assert protocol.transport.is_closing()
        ws.abort()
        await server.serves_a_call(raw_client)


async def test_a_slow_reader_is_not_aborted(raw_client: Any) -> None:
    """A peer that reads slowly keeps the write buffer over its high-water mark for many
    grace periods, but it shrinks: the connection stays and every byte arrives."""
    async with serve(sndbuf=65536) as server:
        ws = await RawSocket.connect(server.url, rcvbuf=4096)
        protocol = server.protocol()
        connection = next(iter(server.gateway.connections))
        total = 0
        while protocol._writing:
            connection._direct.write(["y" * 65536])
            total += 65536 + 4  # each frame's header is 4 bytes
        connection._direct.write(["y" * (1024 * 1024)])
        total += 1024 * 1024 + 10
        received, started = 0, time.monotonic()
        while received < total:
            chunk = await asyncio.wait_for(ws.reader.read(4096), 5)
            assert chunk, "the server gave up on a slow reader"
            received += len(chunk)
            await asyncio.sleep(0.01)
        assert time.monotonic() - started > 3 * GRACE  # it really was slow
        assert not protocol._lost
        ws.abort()
        await server.serves_a_call(raw_client)


ENDINGS = ["client closes", "protocol error", "client vanishes", "gateway closes"]


@pytest.mark.parametrize("ending", ENDINGS)
async def test_a_closed_connection_is_freed_without_the_cyclic_gc(
        raw_client: Any, ending: str) -> None:
    """However a connection ends, its protocol and the gateway's Connection are freed by
    reference counting alone (gc disabled): no cycle keeps their buffers alive."""
    async with serve() as server:
        await server.serves_a_call(raw_client)  # warm up: lazily created shared state
        await server.wait_closed()
        gc.collect()
        gc.disable()
        try:
            ws = await RawSocket.connect(server.url)
            await ws.send(ClientFrame(OP_TEXT, b'["1","1","api:lobby","phx_join",{}]').serialize())
            await ws.read_frame()
            await ws.send(ClientFrame(OP_TEXT, b'["1","2","api:lobby","api",{"request_id":"r",'
                                               b'"service":"svc","request_type":"echo",'
                                               b'"args":{"n":1}}]').serialize())
            await ws.read_frame()
            await ws.read_frame()
            protocol = weakref.ref(server.protocol())
            connection = weakref.ref(next(iter(server.gateway.connections)))
            if ending == "client closes":
                await ws.send(ClientFrame(OP_CLOSE, close_payload(1000)).serialize())
                assert await ws.close_code() == 1000
            elif ending == "protocol error":
                await ws.send(ClientFrame(OP_TEXT, b"x", rsv=4).serialize())
                assert await ws.close_code() == 1002
            elif ending == "client vanishes":
                ws.abort()
            else:
                conn = connection()
                assert conn is not None
                conn.close(1001)
                del conn
                assert await ws.close_code() == 1001
                await ws.send(ClientFrame(OP_CLOSE, close_payload(1001)).serialize())
            await server.wait_closed()
            for _ in range(5):  # let the application's task finish its teardown
                await asyncio.sleep(0.01)
            assert_freed(connection)
            assert_freed(protocol)
        finally:
            gc.enable()
        ws.abort()
