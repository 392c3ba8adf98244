"""Two headless Chromium pages chat through the demo page ``/demo/chat``."""

from __future__ import annotations

import httpx
import pytest

from genapi.demo.app import build_demo_gateway
from tests.e2e.conftest import by_key, run_browser_script
from tests.support.servers import running_app

pytestmark = pytest.mark.e2e


async def test_chat_page_and_phoenix_js_are_served_locally() -> None:
    """/demo/chat and phoenix.min.js come from the gateway itself (no CDN)."""
    async with running_app(build_demo_gateway()) as url, httpx.AsyncClient(base_url=url) as c:
        page = await c.get("/demo/chat")
        script = await c.get("/demo/static/phoenix.min.js")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'src="static/phoenix.min.js"' in page.text
    assert "//" not in page.text.split('src="')[1].split('"')[0]
    assert script.status_code == 200
    assert "MIT License" in script.text.splitlines()[0]
    assert "Phoenix" in script.text


async def test_two_pages_exchange_messages(node: str, chromium: str) -> None:
    """Alice and Bob see each other, exchange messages, and Alice sees Bob leave."""
    async with running_app(build_demo_gateway()) as url:
        lines = await run_browser_script(node, "chat_browser.mjs", url, chromium)
    assert not [line for line in lines if "page_error" in line], lines
    seen = by_key(lines)
    assert seen["alice_sees_count"] == "2"
    assert seen["bob_sees_count"] == "2"
    assert seen["bob_heard"] == {"from": "alice", "offset": 1, "text": "hello from alice"}
    assert seen["alice_shows_own"] == {"from": "alice", "offset": 1, "text": "hello from alice"}
    assert seen["alice_heard"] == {"from": "bob", "offset": 2, "text": "hi alice"}
    assert seen["bob_left"] == 1
