"""Hostile WebSocket input against a real gateway on genapi's driver, over real sockets.

Each test refuses one abuse with the right close code (or an abort), checks that what the
server holds stays under a stated bound and is given back when the connection ends, and
that the gateway then still serves a normal call.
"""

from __future__ import annotations

import asyncio
import gc
import time
import weakref

import pytest

from tests.gateway.hostile_server import GRACE, assert_freed, serve
from tests.gateway.wsframes_support import (
    OP_CLOSE,
    OP_TEXT,
    ClientFrame,
    close_payload,
)
from tests.gateway.wsraw import RawSocket


@pytest.mark.parametrize("opcode", [0x3, 0x7, 0xB, 0xF])
async def test_a_reserved_opcode_closes_with_1002(opcode: int) -> None:
    """A data (0x3-0x7) or control (0xB-0xF) opcode nobody defined: 1002, then TCP closes."""
    async with serve() as server:
        ws = await RawSocket.connect(server.url)
        await ws.send(ClientFrame(opcode, b"?").serialize())
        assert await ws.close_code() == 1002
        assert await ws.at_eof()
        await server.wait_closed()
        await server.serves_a_call()


@pytest.mark.parametrize(("payload", "code"), [
    (close_payload(1005), 1002),
    (close_payload(999), 1002),
    (close_payload(2000, b"reason"), 1002),
    (b"\x03", 1002),  # one byte
    (close_payload(1000, b"\xff"), 1007),  # reason not UTF-8
    (close_payload(4000, b"bye"), 4000),  # valid: echoed
])
async def test_a_bad_close_frame_is_answered_with_1002_never_echoed(
        payload: bytes, code: int) -> None:
    """Close codes nobody may send, a one-byte payload, a non-UTF-8 reason: 1002 or 1007,
    never the client's code back; a valid one is echoed."""
    async with serve() as server:
        ws = await RawSocket.connect(server.url)
        await ws.send(ClientFrame(OP_CLOSE, payload).serialize())
        assert await ws.close_code() == code
        assert await ws.at_eof()
        await server.wait_closed()
        await server.serves_a_call()


async def test_a_close_completes_even_when_the_peer_never_reads() -> None:
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
        await server.serves_a_call()


async def test_a_slow_reader_is_not_aborted() -> None:
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
        await server.serves_a_call()


ENDINGS = ["client closes", "protocol error", "client vanishes", "gateway closes"]


@pytest.mark.parametrize("ending", ENDINGS)
async def test_a_closed_connection_is_freed_without_the_cyclic_gc(
        ending: str) -> None:
    """However a connection ends, its protocol and the gateway's Connection are freed by
    reference counting alone (gc disabled): no cycle keeps their buffers alive."""
    async with serve() as server:
        await server.serves_a_call()  # warm up: lazily created shared state
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
