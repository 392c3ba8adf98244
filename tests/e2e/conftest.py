"""End-to-end fixtures: the official phoenix client run by Node.js."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

JS_DIR = Path(__file__).parent / "js"

WaitHandler = Callable[[str], Awaitable[None]]


def _unavailable(message: str) -> None:
    """Skip on a developer's machine; fail in CI, where setup must have installed it."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def node() -> str:
    """The node binary, with the npm packages installed (scripts/setup installs them)."""
    binary = shutil.which("node")
    if binary is None or not (JS_DIR / "node_modules" / "phoenix").is_dir():
        _unavailable("node and tests/e2e/js/node_modules are needed (run scripts/setup --dev)")
    assert binary is not None
    return binary


@pytest.fixture(scope="session")
def chromium(node: str) -> str:
    """Debian's chromium and the playwright-core npm package (scripts/setup --dev)."""
    binary = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(binary).exists():
        _unavailable("chromium is needed (apt-get install chromium; scripts/setup --dev)")
    if not (JS_DIR / "node_modules" / "playwright-core").is_dir():
        _unavailable("playwright-core is needed in tests/e2e/js (scripts/setup --dev)")
    return binary


async def run_browser_script(node: str, script: str, *args: str,
                             timeout: float = 60.0) -> list[dict[str, Any]]:
    """Run a headless-browser script of tests/e2e/js to the end; its JSON lines."""
    proc = await asyncio.create_subprocess_exec(
        node, str(JS_DIR / script), *args, cwd=JS_DIR,
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
    assert proc.returncode == 0, f"{script} failed: {lines} {stderr.decode()}"
    return lines


async def run_scenario(
    node: str,
    scenario: str,
    url: str,
    options: dict[str, Any] | None = None,
    on_wait: WaitHandler | None = None,
    timeout: float = 30.0,
) -> list[dict[str, Any]]:
    """Run one scenario of scenarios.mjs against ``url`` (http://host:port); its JSON lines."""
    socket_url = url.replace("http://", "ws://") + "/socket"
    args = [node, str(JS_DIR / "scenarios.mjs"), scenario, socket_url]
    if options:
        args.append(json.dumps(options))
    proc = await asyncio.create_subprocess_exec(
        *args, cwd=JS_DIR, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stdin is not None
    lines: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(timeout):
            async for raw in proc.stdout:
                line = json.loads(raw)
                if "wait" in line and on_wait is not None:
                    await on_wait(line["wait"])
                    proc.stdin.write(b"go\n")
                    await proc.stdin.drain()
                    continue
                lines.append(line)
            await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    stderr = (await proc.stderr.read()).decode() if proc.stderr else ""
    assert proc.returncode == 0, f"scenario {scenario} failed: {lines} {stderr}"
    return lines


def by_key(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge the scenario's one-key lines into one dict."""
    merged: dict[str, Any] = {}
    for line in lines:
        merged.update(line)
    return merged
