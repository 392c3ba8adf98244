"""The hostile-input tests' server: a gateway on genapi's driver served by uvicorn in
this process, its protocol objects tracked, with short close and write-stall graces, and
what the tests measure it by (RSS, objects freed, accounts back at zero)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import socket
import weakref
from collections.abc import AsyncIterator
from typing import Any

import websockets

from genapi import (
    ConnectionLimits,
    Executor,
    Gateway,
    GatewaySettings,
    PoolSettings,
    Registry,
    Service,
)
from genapi.gateway.wsserver import GenapiWebSocketProtocol
from tests.gateway.conftest import ws_url
from tests.gateway.wsframes_support import OP_TEXT, ClientFrame
from tests.gateway.wsraw import RawSocket
from tests.support.servers import running_app

MB = 1024 * 1024
MAX_MESSAGE = 256 * 1024
GRACE = 0.5
#: What one hostile connection may add to the server's RSS in these tests. The probe
#: measured 92 MB to 911 MB for the same inputs before the fixes.
RSS_BOUND = 32 * MB
JOIN = b'["1","1","api:lobby","phx_join",{}]'


class Server:
    """The gateway under test, its protocol objects tracked, and its ``slow`` calls' gate."""

    def __init__(self, url: str, gateway: Gateway, protocols: weakref.WeakSet[Any],
                 release: asyncio.Event) -> None:
        self.url = url
        self.gateway = gateway
        self.protocols = protocols
        self.release = release

    def protocol(self) -> Any:
        [protocol] = [p for p in self.protocols if not p._lost]
        return protocol

    def connection(self) -> Any:
        [connection] = self.gateway.connections
        return connection

    async def wait_closed(self, timeout: float = 5.0) -> None:
        """Until no connection is open (protocols and the gateway's own)."""
        async with asyncio.timeout(timeout):
            while any(not p._lost for p in self.protocols) or self.gateway.connections:
                await asyncio.sleep(0.01)

    def holds_nothing(self) -> None:
        """Every per-connection account is back to zero."""
        gateway = self.gateway
        assert gateway.connections == set()
        assert gateway.stats.connections_open == 0
        assert len(gateway.user_inflight) == 0
        assert len(gateway.executor.jobs) == 0
        assert gateway.executor.pools.async_pool._held == {}

    async def serves_a_call(self, query: str = "vsn=2.0.0") -> None:
        """A fresh client's normal call succeeds."""
        async with websockets.connect(ws_url(self.url, query)) as ws:
            await ws.send(JOIN.decode())
            assert json.loads(await ws.recv())[4]["status"] == "ok"
            await ws.send(json.dumps(["1", "2", "api:lobby", "api", {
                "request_id": "ok", "service": "svc", "request_type": "echo",
                "args": {"n": 7}}]))
            push = json.loads(await ws.recv())
            reply = json.loads(await ws.recv())
        assert push[4]["result"] == 7 and reply[4]["status"] == "ok"


@contextlib.asynccontextmanager
async def serve(*, limits: ConnectionLimits | None = None, pools: PoolSettings | None = None,
                sndbuf: int | None = None, **options: Any) -> AsyncIterator[Server]:
    """A gateway (``echo`` sync, ``slow`` async held until ``server.release`` is set) on
    genapi's driver, with short close and write-stall graces."""
    svc = Service("svc")
    release = asyncio.Event()

    @svc.function()
    async def echo(n: int) -> int:
        return n

    @svc.function(response_type="async")
    async def slow(n: int) -> int:
        await release.wait()
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
            if sndbuf is not None:  # no autotuning: what the peer reads shows at once
                sock = transport.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
            super().connection_made(transport)

    settings = GatewaySettings(
        limits=limits or ConnectionLimits(max_frame_bytes=MAX_MESSAGE),
        **({"allow_anonymous": True} if "authenticator" in options else {}))
    executor = Executor(Registry(), pool_settings=pools) if pools is not None else None
    gateway = Gateway([svc], settings=settings, executor=executor, **options)
    async with running_app(gateway, ws=Tracked, ws_max_size=MAX_MESSAGE) as url:
        yield Server(url, gateway, protocols, release)


def text(payload: bytes | str, *, fin: bool = True) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return ClientFrame(OP_TEXT, data, fin=fin).serialize()


async def read_json(ws: RawSocket) -> Any:
    """The next text frame, decoded."""
    frame = await ws.read_frame()
    assert frame is not None and frame[0] == OP_TEXT, frame
    return json.loads(frame[1])


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
