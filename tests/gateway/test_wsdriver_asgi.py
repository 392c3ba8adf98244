"""genapi's driver for applications that ignore ``genapi.direct``: standard ASGI messages,
with genapi's frame layer underneath."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import websockets

from genapi.gateway.wsserver import GenapiWebSocketProtocol
from tests.gateway.wsframes_support import OP_TEXT, ClientFrame
from tests.gateway.wsraw import RawSocket
from tests.support.servers import running_app


class EchoApp:
    """Echoes messages over plain ASGI; records what it received; closes on 'close me'."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.done = asyncio.Event()
        self.late_send: BaseException | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": message["type"] + ".complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        assert "genapi.direct" in scope["extensions"]  # offered, and ignored here
        await receive()
        await send({"type": "websocket.accept"})
        try:
            while True:
                message = await receive()
                self.events.append(message)
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("text") == "close me":
                    await send({"type": "websocket.close", "code": 4002, "reason": "asked"})
                    try:
                        await send({"type": "websocket.send", "text": "too late"})
                    except RuntimeError as exc:
                        self.late_send = exc
                    continue
                await send({"type": "websocket.send", **{k: v for k, v in message.items()
                                                         if k in ("text", "bytes")}})
        finally:
            self.done.set()


def serve(app: EchoApp, **options: Any) -> Any:
    return running_app(app, ws=GenapiWebSocketProtocol, **options)


async def test_messages_are_echoed_over_plain_asgi() -> None:
    """Text, binary, fragmented and large messages arrive as websocket.receive events."""
    app = EchoApp()
    async with serve(app) as url, websockets.connect(url.replace("http", "ws")) as ws:
        await ws.send("héllo")
        assert await ws.recv() == "héllo"
        await ws.send(b"\x00\x01")
        assert await ws.recv() == b"\x00\x01"
        await ws.send(["frag", "mented"])
        assert await ws.recv() == "fragmented"
        await ws.send("x" * 300_000)
        assert await ws.recv() == "x" * 300_000
        pong = await ws.ping(b"hi")
        await asyncio.wait_for(pong, 5)
        await ws.close(4001, "bye")
    await asyncio.wait_for(app.done.wait(), 5)
    assert app.events[-1] == {"type": "websocket.disconnect", "code": 4001, "reason": "bye"}


async def test_the_application_closes() -> None:
    """websocket.close sends the code and reason; a later send is refused as by uvicorn."""
    app = EchoApp()
    async with serve(app) as url, websockets.connect(url.replace("http", "ws")) as ws:
        await ws.send("close me")
        with pytest.raises(websockets.ConnectionClosed) as info:
            await ws.recv()
    assert info.value.rcvd is not None
    assert (info.value.rcvd.code, info.value.rcvd.reason) == (4002, "asked")
    await asyncio.wait_for(app.done.wait(), 5)
    assert isinstance(app.late_send, RuntimeError)


@pytest.mark.parametrize(("frame", "code"), [
    (ClientFrame(OP_TEXT, b"\xff"), 1007),
    (ClientFrame(OP_TEXT, b"x" * 2000), 1009),
    (ClientFrame(0x5, b""), 1002),
])
async def test_a_failure_reaches_the_application_as_a_disconnect(frame: ClientFrame,
                                                                 code: int) -> None:
    """Invalid UTF-8, a message over ws_max_size, a reserved opcode: the client gets the
    close code and the application a websocket.disconnect with it."""
    app = EchoApp()
    async with serve(app, ws_max_size=1000) as url:
        ws = await RawSocket.connect(url, "/")
        await ws.send(frame.serialize())
        assert await ws.close_code() == code
        await asyncio.wait_for(app.done.wait(), 5)
    assert app.events[0]["type"] == "websocket.disconnect"
    assert app.events[0]["code"] == code
