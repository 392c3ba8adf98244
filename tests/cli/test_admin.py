"""`genapi status`, `genapi call-flow` and `genapi schema`, run as real processes."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from jsonschema import Draft202012Validator

from genapi import AdminSettings, Gateway
from genapi.demo import SERVICES
from tests.support.procs import interrupt, wait_healthy
from tests.support.servers import free_port, running_app

TOKEN = secrets.token_urlsafe(32)
GENAPI = [sys.executable, "-m", "genapi"]


async def genapi(*args: str, token: str | None = TOKEN) -> tuple[int, str, str]:
    """Run the CLI in a subprocess (the server keeps running in this event loop)."""
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("GENAPI_ADMIN_TOKEN", None)
    if token is not None:
        env["GENAPI_ADMIN_TOKEN"] = token
    proc = await asyncio.create_subprocess_exec(
        *GENAPI, *args, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_status_prints_tables_and_json() -> None:
    """`genapi status` summarises the gateway; --json prints the admin snapshot."""
    async with running_app(Gateway(SERVICES, admin=AdminSettings(token=TOKEN))) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            await client.post("/api/user_service/get_user", json={"user_id": "1"})
        code, out, _ = await genapi("status", "--url", url)
        assert code == 0
        assert f"at {url}: ok" in out
        assert "Calls: 1 (0 errors)" in out
        assert "get_user" in out and "stream_events" in out
        assert "Rate limits: no rate limiter." in out
        code, out, _ = await genapi("status", "--url", url, "--json")
        assert code == 0
        assert json.loads(out)["config_cache"]["count"] == 14
        assert TOKEN not in out


async def test_status_call_flow() -> None:
    """--call-flow prints the phases; an unknown function exits 1 with the reason."""
    async with running_app(Gateway(SERVICES, admin=AdminSettings(token=TOKEN))) as url:
        code, out, _ = await genapi("status", "--url", url, "--call-flow", "user_service",
                                    "get_user", "--version", "2.0.0")
        assert code == 0
        assert "user_service.get_user (2.0.0, sync, local)" in out
        assert re.search(r"argument_validation .*\bid\b", out)
        code, out, _ = await genapi("call-flow", "user_service", "nope", "--url", url,
                                    "--json")
        assert code == 1
        assert json.loads(out)["error"] == (
        "Unknown function nope in service user_service "
        "(known: delete_user, get_profile, get_user, get_user_profile, list_users)")


async def test_status_errors_are_plain() -> None:
    """A wrong token, a gateway without admin and no gateway: one line, exit 1."""
    async with running_app(Gateway(SERVICES, admin=AdminSettings(token=TOKEN))) as url:
        code, _, err = await genapi("status", "--url", url, token="wrong")
        assert (code, err.strip()) == (
            1, "error: the gateway refused the admin token (--token or GENAPI_ADMIN_TOKEN)")
        code, _, err = await genapi("status", "--url", url, "--token", TOKEN, token=None)
        assert code == 0
    async with running_app(Gateway(SERVICES)) as url:
        code, _, err = await genapi("status", "--url", url)
        assert code == 1 and "start the gateway with admin=AdminSettings(token=...)" in err
    code, _, err = await genapi("status", "--url", f"http://127.0.0.1:{free_port()}")
    assert code == 1 and err.startswith("error: cannot reach")


async def test_schema_from_an_app_and_from_a_gateway(tmp_path: Path) -> None:
    """--app and --url give the same schemas; --asyncapi and --typescript work from both."""
    code, from_app, _ = await genapi("schema", "--app", "genapi.demo.walkthrough:SERVICES")
    assert code == 0
    bundle = json.loads(from_app)
    Draft202012Validator.check_schema(bundle)
    schema = bundle["$defs"]["user_service.get_user"]
    assert Draft202012Validator(schema).is_valid({"user_id": "1"})
    assert not Draft202012Validator(schema).is_valid({})
    async with running_app(Gateway(SERVICES, admin=AdminSettings(token=TOKEN))) as url:
        code, from_url, _ = await genapi("schema", "--url", url)
        assert json.loads(from_url) == bundle
        code, doc, _ = await genapi("schema", "--url", url, "--asyncapi")
        assert json.loads(doc)["servers"]["gateway"]["host"] == url.removeprefix("http://")
        out = tmp_path / "api.ts"
        code, _, err = await genapi("schema", "--url", url, "--typescript", str(out))
        assert code == 0 and err.strip() == f"wrote {out}"
        assert "export interface UserServiceGetUserArgs" in out.read_text()
    code, _, err = await genapi("schema")
    assert code == 2 and "exactly one of --app and --url" in err


@pytest.mark.parametrize("given", [None, "demo-token-0123456789abcdef"])
def test_demo_prints_the_dashboard_and_a_working_token(given: str | None) -> None:
    """`genapi demo` prints the dashboard URL and its token (random unless given)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "GENAPI_ADMIN_TOKEN"}
    extra = ["--admin-token", given] if given else []
    proc = subprocess.Popen([*GENAPI, "demo", "--port", str(port), *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        assert proc.stdout is not None
        line = ""
        while "Dashboard:" not in line:
            line = proc.stdout.readline()
            assert line, "the demo ended before printing the dashboard"
        match = re.search(r"Dashboard: (\S+)\s+admin token: (\S+)", line)
        assert match is not None
        assert match.group(1) == f"{url}/dashboard"
        token = match.group(2)
        if given:
            assert token == given
        else:
            assert len(token) >= 24
        wait_healthy(url, proc)  # type: ignore[arg-type]  # a text-mode Popen
        status = httpx.get(url + "/admin/status", headers={"Authorization": f"Bearer {token}"})
        assert status.status_code == 200
        assert "relay" in status.json()["config_cache"]["services"]
        assert httpx.get(url + "/dashboard").status_code == 200
    finally:
        assert interrupt(proc) == 0
