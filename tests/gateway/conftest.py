"""Gateway test helpers: a raw Phoenix-protocol WebSocket client."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection


class RawClient:
    """A thin Phoenix v2 client for exact-frame tests."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ref = 0

    async def send(self, frame: list[Any]) -> None:
        await self.ws.send(json.dumps(frame))

    async def recv(self, timeout: float = 5.0) -> Any:
        import asyncio

        async with asyncio.timeout(timeout):
            return json.loads(await self.ws.recv())

    async def join(self, topic: str = "api:lobby") -> Any:
        self.ref += 1
        ref = str(self.ref)
        await self.send([ref, ref, topic, "phx_join", {}])
        self.join_ref = ref
        return await self.recv()

    async def push(self, payload: dict[str, Any], topic: str = "api:lobby",
                   event: str = "api") -> str:
        self.ref += 1
        ref = str(self.ref)
        await self.send([self.join_ref, ref, topic, event, payload])
        return ref

    async def call(self, payload: dict[str, Any]) -> tuple[Any, Any]:
        """Push an api call; return (the api push payload, the phx_reply payload)."""
        ref = await self.push(payload)
        push = reply = None
        while push is None or reply is None:
            frame = await self.recv()
            if frame[3] == "api" and frame[4]["request_id"] == payload["request_id"]:
                push = frame[4]
            elif frame[3] == "phx_reply" and frame[1] == ref:
                reply = frame[4]
        return push, reply


def ws_url(url: str, query: str = "vsn=2.0.0", path: str = "/socket/websocket") -> str:
    return url.replace("http://", "ws://") + path + "?" + query


@pytest.fixture
def raw_client() -> Any:
    import contextlib

    @contextlib.asynccontextmanager
    async def connect(url: str, query: str = "vsn=2.0.0", **kwargs: Any
                      ) -> AsyncIterator[RawClient]:
        async with websockets.connect(ws_url(url, query), **kwargs) as ws:
            yield RawClient(ws)

    return connect


@pytest.fixture(params=["direct", "asgi"])
def driver(request: pytest.FixtureRequest) -> str:
    """Both ways the gateway moves bytes: genapi's protocol and plain ASGI messages."""
    return str(request.param)
