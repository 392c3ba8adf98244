"""genapi's driver holds an attached connection without a task: the ASGI application
returns once the connection is attached; the connection lives on callbacks, and its end
(the client leaving, the server closing it) still runs the gateway's bookkeeping."""

from __future__ import annotations

import asyncio
from typing import Any

from genapi import Gateway, GatewaySettings, Service
from genapi.gateway.events import CONNECTION_CLOSE
from tests.support.servers import running_app


def _gateway() -> tuple[Gateway, list[dict[str, Any]]]:
    svc = Service("svc")

    @svc.function()
    async def echo(n: int) -> int:
        return n

    gateway = Gateway([svc], settings=GatewaySettings(allow_anonymous=True))
    closes: list[dict[str, Any]] = []
    gateway.executor.telemetry.attach(
        "test-held", CONNECTION_CLOSE, lambda _event, _measurements, meta: closes.append(
            dict(meta)))
    return gateway, closes


async def _until(condition: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_an_idle_connection_has_no_task_and_its_end_is_counted(raw_client: Any) -> None:
    gateway, closes = _gateway()
    async with running_app(gateway) as url:
        tasks_before = len(asyncio.all_tasks())
        async with raw_client(url) as client:
            assert (await client.join())[4]["status"] == "ok"
            await asyncio.sleep(0.1)
            # The client's own tasks aside, the server runs nothing for this connection.
            server_tasks = [t for t in asyncio.all_tasks() - {asyncio.current_task()}
                            if "run_asgi" in repr(t.get_coro())]
            assert server_tasks == []
            assert len(gateway.connections) == 1
            push, reply = await client.call({"request_id": "r", "service": "svc",
                                             "request_type": "echo", "args": {"n": 3}})
            assert push["result"] == 3 and reply["status"] == "ok"
        await _until(lambda: not gateway.connections)
        assert gateway.stats.connections_open == 0
        assert closes and closes[-1]["reason"] == "client"
        await _until(lambda: len(asyncio.all_tasks()) <= tasks_before)


async def test_a_held_connection_closed_by_the_server_ends(raw_client: Any) -> None:
    gateway, closes = _gateway()
    async with running_app(gateway) as url, raw_client(url) as client:
        await client.join()
        [connection] = gateway.connections
        connection.close(1001)
        await _until(lambda: not gateway.connections)
        await _until(lambda: connection.finished.is_set())
        assert client.ws.close_code in (None, 1001)
        await _until(lambda: client.ws.close_code == 1001)
        assert closes[-1]["code"] == 1001 and closes[-1]["reason"] == "server"


async def test_a_middleware_closing_after_the_app_returned_does_not_end_it(
        raw_client: Any) -> None:
    """An outer ASGI middleware that sends ``websocket.close`` once the application
    returns (as if the socket were done) leaves a held connection open."""
    gateway, _ = _gateway()

    async def closing_middleware(scope: Any, receive: Any, send: Any) -> None:
        await gateway(scope, receive, send)
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1000})

    async with running_app(closing_middleware) as url, raw_client(url) as client:
        await client.join()
        await asyncio.sleep(0.1)
        push, reply = await client.call({"request_id": "r", "service": "svc",
                                         "request_type": "echo", "args": {"n": 5}})
        assert push["result"] == 5 and reply["status"] == "ok"
