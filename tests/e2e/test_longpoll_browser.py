"""phoenix.js over the LongPoll transport in headless Chromium: chosen, and as the fallback
from a WebSocket the server refuses."""

from __future__ import annotations

from typing import Any

import pytest

from genapi.demo.app import build_demo_gateway
from tests.e2e.conftest import by_key, run_browser_script
from tests.support.servers import running_app

pytestmark = pytest.mark.e2e


class NoWebSockets:
    """An ASGI app in front of the gateway that refuses every WebSocket upgrade, as a
    proxy that blocks WebSockets does."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.close", "code": 1008})
            return
        await self.app(scope, receive, send)


def check(seen: dict[str, Any]) -> None:
    call, async_, stream = seen["call"], seen["async"], seen["stream"]
    assert call[0]["success"] and call[0]["result"]["id"] == "1"
    assert [r["async"] for r in async_] == [True, False] and async_[-1]["success"]
    assert stream[0]["result"] == "init" and not stream[-1]["has_more"]
    assert [r["result"]["tick"] for r in stream[1:-1]] == [1, 2, 3, 4, 5]
    assert seen["bob_heard"]["from_user_id"] == "alice"


async def test_phoenix_js_over_longpoll(node: str, chromium: str) -> None:
    """transport: LongPoll — call, async, stream and relay work as over a WebSocket."""
    gateway = build_demo_gateway()
    async with running_app(gateway) as url:
        lines = await run_browser_script(node, "longpoll_browser.mjs", url, "longpoll",
                                         chromium, timeout=90)
    assert not [line for line in lines if "page_error" in line], lines
    seen = by_key(lines)
    assert seen["transport"] == "LongPoll"
    check(seen)


async def test_phoenix_js_falls_back_when_websockets_are_blocked(node: str,
                                                                 chromium: str) -> None:
    """longPollFallbackMs: the WebSocket is refused, phoenix.js moves to long poll by
    itself and everything works."""
    async with running_app(NoWebSockets(build_demo_gateway())) as url:
        lines = await run_browser_script(node, "longpoll_browser.mjs", url, "fallback",
                                         chromium, timeout=90)
    seen = by_key(lines)
    assert seen["transport"] == "LongPoll"
    check(seen)
