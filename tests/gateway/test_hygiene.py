"""Connection hygiene: idle sockets, slow readers, oversize frames, in-flight caps, drain."""

from __future__ import annotations

import asyncio
import json
import tracemalloc
from typing import Any

import pytest
import websockets
from starlette.applications import Starlette
from starlette.routing import Mount

from genapi import (
    ConnectionLimits,
    Executor,
    Gateway,
    GatewaySettings,
    PoolSettings,
    Registry,
    Service,
)
from tests.gateway.conftest import ws_url
from tests.support.servers import running_app


def big_service(size: int) -> Service:
    svc = Service("svc")

    @svc.function()
    async def blob(n: int) -> str:
        return "x" * size

    @svc.function()
    async def ping() -> str:
        return "pong"

    return svc


async def closed_code(ws: Any, timeout: float = 5.0) -> int | None:
    """Read until the server closes; return its close code."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    except websockets.ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


async def test_idle_socket_is_closed_after_heartbeat_timeout(driver: str) -> None:
    """A socket that sends nothing past the heartbeat timeout is closed with 1001."""
    gateway = Gateway(settings=GatewaySettings(limits=ConnectionLimits(heartbeat_timeout=0.3)))
    async with running_app(gateway, driver=driver) as url, websockets.connect(ws_url(url)) as ws:
        await ws.send('["1","1","api:lobby","phx_join",{}]')
        await ws.recv()
        assert await closed_code(ws) == 1001
    assert gateway.stats.idle_closed == 1


async def test_heartbeats_keep_a_socket_alive() -> None:
    """Heartbeats count as activity."""
    gateway = Gateway(settings=GatewaySettings(limits=ConnectionLimits(heartbeat_timeout=0.4)))
    async with running_app(gateway) as url, websockets.connect(ws_url(url)) as ws:
        for ref in range(8):
            await ws.send(f'[null,"{ref}","phoenix","heartbeat",{{}}]')
            await ws.recv()
            await asyncio.sleep(0.1)
        assert gateway.stats.idle_closed == 0


async def test_oversize_frame_closes_with_1009(driver: str) -> None:
    """A frame over max_frame_bytes closes the connection with 1009."""
    gateway = Gateway(settings=GatewaySettings(limits=ConnectionLimits(max_frame_bytes=1000)))
    async with running_app(gateway, ws_max_size=10_000, driver=driver) as url, \
            websockets.connect(ws_url(url)) as ws:
        await ws.send('["1","1","api:lobby","phx_join",{}]')
        await ws.recv()
        await ws.send(json.dumps(["1", "2", "api:lobby", "api", {"x": "y" * 2000}]))
        assert await closed_code(ws) == 1009
    assert gateway.stats.oversize_frames == 1


async def test_inflight_cap(driver: str) -> None:
    """Beyond max_inflight concurrent calls a connection is told to retry later."""
    svc = Service("svc")
    release = asyncio.Event()

    @svc.function()
    async def wait() -> str:
        await release.wait()
        return "done"

    gateway = Gateway([svc], settings=GatewaySettings(limits=ConnectionLimits(max_inflight=2)))
    async with running_app(gateway, driver=driver) as url, websockets.connect(ws_url(url)) as ws:
        await ws.send('["1","1","api:lobby","phx_join",{}]')
        await ws.recv()
        for i in range(3):
            payload = {"request_id": f"r{i}", "service": "svc", "request_type": "wait"}
            await ws.send(json.dumps(["1", str(10 + i), "api:lobby", "api", payload]))
        refused = json.loads(await ws.recv())
        assert refused[4] == {"request_id": "r2", "result": None, "success": False,
                              "error": "Service temporarily unavailable: too many calls in "
                                       "flight", "async": False,
                              "has_more": False, "can_retry": True}
        reply = json.loads(await ws.recv())
        assert reply[4] == {"status": "error", "response": {
            "reason": "Service temporarily unavailable: too many calls in flight",
            "limit": "max_inflight", "max": 2}}
        release.set()
    assert gateway.stats.calls_refused_inflight == 1


async def test_a_full_pool_is_answered_with_the_documented_reason(driver: str) -> None:
    """A full async pool answers ``Service temporarily unavailable`` as the reply's reason
    (before, the pool's detail ``reason: queue_full`` replaced it); the pool's own word
    is kept as ``cause``."""
    svc = Service("svc")
    release = asyncio.Event()

    @svc.function(response_type="async")
    async def hold() -> str:
        await release.wait()
        return "done"

    pools = PoolSettings(async_size=1, async_max_queue=0, owner_share=1.0)
    executor = Executor(Registry(), pool_settings=pools)
    gateway = Gateway([svc], executor=executor)
    async with running_app(gateway, driver=driver) as url, websockets.connect(ws_url(url)) as ws:
        await ws.send('["1","1","api:lobby","phx_join",{}]')
        await ws.recv()
        replies = []
        for i in range(2):
            payload = {"request_id": f"r{i}", "service": "svc", "request_type": "hold"}
            await ws.send(json.dumps(["1", str(10 + i), "api:lobby", "api", payload]))
        while len(replies) < 2:
            frame = json.loads(await ws.recv())
            if frame[3] == "phx_reply":
                replies.append(frame[4])
        assert replies[1] == {"status": "error", "response": {
            "reason": "Service temporarily unavailable", "pool": "async",
            "cause": "queue_full"}}
        release.set()


async def test_slow_reader_is_closed_and_memory_stays_bounded(driver: str) -> None:
    """A client that stops reading fills its bounded queue and is disconnected; the
    gateway's memory stays bounded and other clients are unaffected."""
    limits = ConnectionLimits(max_queue_bytes=1_000_000, max_queue_messages=1000)
    gateway = Gateway([big_service(100_000)], settings=GatewaySettings(limits=limits))
    tracemalloc.start()
    try:
        async with running_app(gateway, driver=driver) as url:
            slow = await websockets.connect(ws_url(url), max_queue=1, close_timeout=0.2)
            # stop reading: the client library stops pulling from TCP once its queue is full
            await slow.send('["1","1","api:lobby","phx_join",{}]')
            baseline = tracemalloc.get_traced_memory()[0]
            for i in range(400):  # 400 x 100 kB = 40 MB of answers, never read
                payload = {"request_id": f"r{i}", "service": "svc", "request_type": "blob",
                           "args": {"n": i}}
                await slow.send(json.dumps(["1", str(i + 2), "api:lobby", "api", payload]))
            for _ in range(200):
                if gateway.stats.slow_consumers_closed:
                    break
                await asyncio.sleep(0.05)
            peak = tracemalloc.get_traced_memory()[1] - baseline
            assert gateway.stats.slow_consumers_closed == 1
            async with websockets.connect(ws_url(url)) as fine:
                await fine.send('["1","1","api:lobby","phx_join",{}]')
                await fine.recv()
                payload = {"request_id": "p", "service": "svc", "request_type": "ping"}
                await fine.send(json.dumps(["1", "2", "api:lobby", "api", payload]))
                assert json.loads(await fine.recv())[4]["result"] == "pong"
            await slow.close()
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000  # far below the 40 MB the client asked for


async def test_drain_lets_inflight_calls_finish_then_closes_with_1012(driver: str) -> None:
    """Draining refuses new sockets, delivers in-flight results, then closes with 1012."""
    svc = Service("svc")

    @svc.function()
    async def slow() -> str:
        await asyncio.sleep(0.3)
        return "finished"

    gateway = Gateway([svc])
    async with running_app(gateway, driver=driver) as url, websockets.connect(ws_url(url)) as ws:
        await ws.send('["1","1","api:lobby","phx_join",{}]')
        await ws.recv()
        payload = {"request_id": "r1", "service": "svc", "request_type": "slow"}
        await ws.send(json.dumps(["1", "2", "api:lobby", "api", payload]))
        await asyncio.sleep(0.05)
        drain = asyncio.create_task(gateway.drain(timeout=5))
        await asyncio.sleep(0.05)
        with pytest.raises(websockets.InvalidStatus):
            async with websockets.connect(ws_url(url)):
                pass
        result = json.loads(await ws.recv())
        assert result[4]["result"] == "finished"
        assert await closed_code(ws) == 1012
        await drain


async def test_mounted_in_a_starlette_app() -> None:
    """Mounted under a prefix, the gateway serves its socket and starts its own work."""
    gateway = Gateway([big_service(10)],
                      settings=GatewaySettings(limits=ConnectionLimits(heartbeat_timeout=0.3)))
    host = Starlette(routes=[Mount("/rt", app=gateway)])
    async with running_app(host) as url:
        async with websockets.connect(ws_url(url, path="/rt/socket/websocket")) as ws:
            await ws.send('["1","1","api:lobby","phx_join",{}]')
            assert '"ok"' in await ws.recv()
            assert await closed_code(ws) == 1001  # the idle sweeper runs without lifespan
        await gateway.aclose()
