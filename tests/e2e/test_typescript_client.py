"""The generated TypeScript client, compiled with tsc, calls a live gateway via phoenix.js."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from genapi import Gateway, Service, function_catalog, typescript_module
from tests.e2e.conftest import JS_DIR, by_key
from tests.schema.test_schema import tsc
from tests.support.servers import running_app

pytestmark = pytest.mark.e2e

ts = Service("ts")


@ts.function()
async def echo(text: str) -> str:
    return text


@ts.function("echo", version="2.0.0")
async def echo_v2(text: str) -> str:
    return text.upper()


@ts.function(response_type="async")
async def later(value: int) -> int:
    await asyncio.sleep(0.05)
    return value * 2


@ts.function(response_type="stream")
async def count(n: int) -> AsyncIterator[int]:
    for number in range(n):
        yield number


@ts.function(response_type="none")
async def fire() -> None:
    return None


def compile_client(gateway: Gateway, folder: Path) -> Path:
    """Generate the .ts for ``gateway`` and compile it (strict) to an ES module."""
    (folder / "api.ts").write_text(typescript_module(function_catalog(gateway)))
    result = subprocess.run(
        [tsc(), "--strict", "--target", "ES2022", "--module", "ES2022", "--lib", "ES2022",
         "--outDir", str(folder / "out"), str(folder / "api.ts")],
        capture_output=True, text=True, timeout=120, cwd=JS_DIR,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return folder / "out" / "api.js"


def response(result: Any, **changes: Any) -> dict[str, Any]:
    base = {"result": result, "success": True, "error": None, "async": False,
            "has_more": False, "can_retry": False}
    return {**base, **changes}


def strip_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: strip_ids(v) for k, v in value.items() if k != "request_id"}
    if isinstance(value, list):
        return [strip_ids(v) for v in value]
    return value


async def test_call_api_resolves_each_response_type(node: str, tmp_path: Path) -> None:
    """callApi resolves with the final Response: sync, version, async, stream, none, error."""
    gateway = Gateway([ts])
    api = compile_client(gateway, tmp_path)
    async with running_app(gateway) as url:
        proc = await asyncio.create_subprocess_exec(
            node, str(JS_DIR / "callapi_runner.mjs"), url.replace("http", "ws") + "/socket",
            str(api), cwd=JS_DIR, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, stderr.decode()
    seen = strip_ids(by_key([json.loads(line) for line in stdout.splitlines()]))
    assert seen["sync"] == response("hi")
    assert seen["version"] == response("HI")
    assert seen["async"] == response(14)
    assert seen["chunks"] == [0, 1, 2]
    assert seen["stream"]["success"] is True and seen["stream"]["has_more"] is False
    assert seen["none"] == response(None)
    assert seen["invalid"] == response(None, success=False,
                                       error="Missing required argument: text")
    assert seen["both"] == [response("a"), response("b")]
