"""Two headless Chromium pages chat through the demo page ``/demo/chat``."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from genapi.demo.app import build_demo_gateway
from tests.e2e.conftest import JS_DIR, by_key
from tests.support.servers import running_app

pytestmark = pytest.mark.e2e


def _unavailable(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def chromium(node: str) -> str:
    """Debian's chromium and the playwright-core npm package (scripts/setup --dev)."""
    binary = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(binary).exists():
        _unavailable("chromium is needed (apt-get install chromium; scripts/setup --dev)")
    if not (JS_DIR / "node_modules" / "playwright-core").is_dir():
        _unavailable("playwright-core is needed in tests/e2e/js (scripts/setup --dev)")
    return binary


async def run_browser(node: str, chromium: str, url: str,
                      timeout: float = 60.0) -> list[dict[str, Any]]:
    """Run chat_browser.mjs against ``url``; its JSON lines."""
    proc = await asyncio.create_subprocess_exec(
        node, str(JS_DIR / "chat_browser.mjs"), url, chromium, cwd=JS_DIR,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(timeout):
            stdout, stderr = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    lines = [json.loads(raw) for raw in stdout.splitlines() if raw.strip()]
    assert proc.returncode == 0, f"chat_browser.mjs failed: {lines} {stderr.decode()}"
    return lines


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
        lines = await run_browser(node, chromium, url)
    assert not [line for line in lines if "page_error" in line], lines
    seen = by_key(lines)
    assert seen["alice_sees_count"] == "2"
    assert seen["bob_sees_count"] == "2"
    assert seen["bob_heard"] == {"from": "alice", "offset": 1, "text": "hello from alice"}
    assert seen["alice_shows_own"] == {"from": "alice", "offset": 1, "text": "hello from alice"}
    assert seen["alice_heard"] == {"from": "bob", "offset": 2, "text": "hi alice"}
    assert seen["bob_left"] == 1
