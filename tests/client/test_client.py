"""The Python client against a real gateway."""

from __future__ import annotations

import asyncio

import pytest

import genapi
from genapi import (
    ArgumentError,
    AuthenticationRequired,
    CallTimeout,
    Client,
    ConnectionLost,
    FunctionNotFound,
    Gateway,
    NotConnected,
    PermissionDenied,
    Service,
)
from genapi.demo.app import build_demo_gateway
from tests.support.servers import free_port, running_app


def socket_url(url: str) -> str:
    return url.replace("http://", "ws://") + "/socket"


async def test_call_returns_results_and_raises_typed_errors() -> None:
    """call() returns the result or raises the typed error with message and can_retry."""
    async with running_app(build_demo_gateway()) as url, \
            Client(socket_url(url), params={"user_id": "1"}) as client:
        users = await client.call("user_service", "list_users")
        assert [u["id"] for u in users] == ["1", "2", "123"]
        assert (await client.call("user_service", "get_user", {"user_id": "2"}))["name"] == "Bob"
        assert await client.call("user_service", "get_user", {"id": "1", "fields": ["id"]},
                                 version="2.0.0") == {"id": "1"}
        with pytest.raises(ArgumentError, match="Missing required argument: user_id") as info:
            await client.call("user_service", "get_user", {})
        assert info.value.can_retry is False
        with pytest.raises(PermissionDenied):
            await client.call("user_service", "get_user_profile", {"user_id": "2"})
        with pytest.raises(FunctionNotFound):
            await client.call("user_service", "nope")
        with pytest.raises(genapi.ApiError, match="User not found"):
            await client.call("user_service", "get_user", {"user_id": "404"})


async def test_anonymous_client() -> None:
    """Without params the client is anonymous."""
    async with running_app(build_demo_gateway()) as url, Client(socket_url(url)) as client:
        with pytest.raises(AuthenticationRequired):
            await client.call("user_service", "get_user_profile", {"user_id": "1"})


async def test_call_timeout() -> None:
    """A call without an answer in time raises CallTimeout."""
    svc = Service("svc")

    @svc.function(timeout=None)
    async def hang() -> None:
        await asyncio.sleep(30)

    async with running_app(Gateway([svc])) as url, Client(socket_url(url)) as client:
        with pytest.raises(CallTimeout):
            await client.call("svc", "hang", timeout=0.2)


async def test_reconnects_and_rejoins_after_drain() -> None:
    """After the server drains and comes back the client reconnects and rejoins."""
    port = free_port()
    first = build_demo_gateway()
    server = running_app(first, port=port)
    url = await server.__aenter__()
    client = Client(socket_url(url), params={"user_id": "1"})
    await client.connect()
    try:
        assert await client.call("user_service", "list_users")
        await first.drain()
        await server.__aexit__(None, None, None)
        server = running_app(build_demo_gateway(), port=port)
        await server.__aenter__()
        await client.wait_joined(timeout=10)
        assert (await client.call("user_service", "get_user", {"user_id": "1"}))["id"] == "1"
    finally:
        await client.close()
        await server.__aexit__(None, None, None)


async def test_in_flight_call_fails_with_connection_lost() -> None:
    """A call in flight when the connection drops fails with ConnectionLost (retryable)."""
    svc = Service("svc")

    @svc.function(timeout=None)
    async def hang() -> None:
        await asyncio.sleep(30)

    gateway = Gateway([svc])
    async with running_app(gateway) as url:
        client = Client(socket_url(url), reconnect=False)
        await client.connect()
        call = asyncio.create_task(client.call("svc", "hang", timeout=10))
        await asyncio.sleep(0.1)
        for connection in list(gateway.connections):
            connection.close(1001)
        with pytest.raises(ConnectionLost) as info:
            await call
        assert info.value.can_retry is True
        await client.close()


async def test_heartbeats_keep_the_client_connected() -> None:
    """The client's heartbeats keep an otherwise idle connection open."""
    gateway = build_demo_gateway()
    gateway.limits = genapi.ConnectionLimits(heartbeat_timeout=0.5)
    async with running_app(gateway) as url, \
            Client(socket_url(url), heartbeat_interval=0.1) as client:
        await asyncio.sleep(1.2)
        assert client.connected
        assert await client.call("user_service", "list_users")
    assert gateway.stats.idle_closed == 0


async def test_connect_failure() -> None:
    """Connecting to nothing raises NotConnected."""
    client = Client(f"ws://127.0.0.1:{free_port()}/socket", reconnect=False)
    with pytest.raises(NotConnected):
        await client.connect()
    with pytest.raises(NotConnected):
        await client.call("a", "b")


async def test_async_result_stream_and_cancel() -> None:
    """call() waits for an async result; stream() yields chunks; leaving early cancels."""
    gateway = build_demo_gateway()
    async with running_app(gateway) as url, Client(socket_url(url)) as client:
        report = await client.call("report_service", "generate_report", {"delay_ms": 50})
        assert report == {"report_url": "https://example.com/reports/123.pdf"}
        events = [e async for e in client.stream("event_service", "stream_events",
                                                  {"interval_ms": 5})]
        assert [e["number"] for e in events[:10]] == list(range(1, 11))
        assert events[-1] == {"event": "done", "total": 10}
        ticks = client.stream("event_service", "ticker", {"interval_ms": 10},
                              request_id="tick-1")
        async for tick in ticks:
            if tick["tick"] == 3:
                break
        await ticks.aclose()
        for _ in range(100):
            if not gateway.executor.jobs:
                break
            await asyncio.sleep(0.01)
        assert len(gateway.executor.jobs) == 0  # the server-side stream was cancelled
