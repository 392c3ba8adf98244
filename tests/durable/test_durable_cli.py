"""``genapi jobs`` against a running gateway and ``genapi db upgrade`` against a store."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from durable_app import ADMIN_TOKEN, BROKEN, GATES, RUNS, durable_gateway
from gateway_helpers import Caller
from tests.support.servers import running_app
from typer.testing import CliRunner

from genapi import AdminSettings, Gateway, Service
from genapi.cli.main import app
from genapi.durable import CallState


@pytest.fixture(autouse=True)
def _fresh() -> None:
    RUNS.clear()
    GATES.clear()
    BROKEN.clear()


async def genapi(*args: str, token: str | None = ADMIN_TOKEN) -> Any:
    """Run the CLI in a thread (it blocks; the gateway runs in this loop)."""
    env = {"COLUMNS": "200", **({"GENAPI_ADMIN_TOKEN": token} if token else {})}
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)


@pytest.fixture
async def gateway_url(store_url: str, backend: str) -> AsyncIterator[tuple[str, Gateway]]:
    gateway = durable_gateway(store_url, backend=backend, workers=1)
    async with running_app(gateway) as url:
        assert gateway.durable is not None
        await asyncio.wait_for(gateway.durable._ready.wait(), 10)
        yield url, gateway


async def test_a_dead_call_retried_from_the_cli_runs_again(gateway_url: Any) -> None:
    """jobs list shows the dead call and its error; once the cause is fixed, jobs retry
    runs it again and the caller gets that run's terminal; jobs show has every field."""
    url, _gateway = gateway_url
    BROKEN.add("mailer")
    async with Caller(url) as alice:
        await alice.push("r1", "signup", "until_fixed", {"name": "mailer"})
        dead = await alice.terminal("r1")
        assert dead["error"] == "Internal Server Error"
        listed = await genapi("jobs", "list", "--url", url, "--state", "dead", "--json")
        assert listed.exit_code == 0, listed.output
        [call] = json.loads(listed.output)["calls"]
        assert "ConnectionError('mailer is broken')" in call["last_error"]
        table = await genapi("jobs", "list", "--url", url)
        assert call["id"] in table.output and "dead" in table.output
        BROKEN.clear()
        retried = await genapi("jobs", "retry", call["id"], "--url", url)
        assert retried.exit_code == 0 and retried.output.strip() == f"{call['id']} pending"
        await alice.wait_for(lambda: len(alice.terminals("r1")) == 2)
        assert alice.terminals("r1")[1]["result"] == {"name": "mailer", "attempt": 1}
        shown = await genapi("jobs", "show", call["id"], "--url", url)
        assert json.loads(shown.output)["state"] == "succeeded"
        again = await genapi("jobs", "retry", call["id"], "--url", url)
        assert again.exit_code == 1 and "cannot retry" in again.output
    assert [a for rid, a, _ in RUNS if rid == "mailer"] == [1, 2, 3, 1]


async def test_a_pending_call_cancelled_from_the_cli_never_runs(gateway_url: Any) -> None:
    """With the only worker busy, a second call waits; jobs cancel ends it (the caller
    gets Cancelled) and it never runs; counts and purge work."""
    url, gateway = gateway_url
    async with Caller(url) as alice:
        GATES["busy"] = asyncio.Event()
        await alice.push("r1", "signup", "gated", {"name": "busy"})
        await alice.wait_for(lambda: [rid for rid, _, _ in RUNS] == ["busy"])
        await alice.push("r2", "signup", "welcome", {"email": "w@x.io", "fail_times": 0})
        waiting = (await alice.ack("r2"))["result"]["call_id"]
        cancelled = await genapi("jobs", "cancel", waiting, "--url", url)
        assert cancelled.output.strip() == f"{waiting} cancelled"
        assert (await alice.terminal("r2"))["error"] == "Cancelled"
        GATES["busy"].set()
        await alice.terminal("r1")
        await asyncio.sleep(0.3)
        assert "w@x.io" not in [rid for rid, _, _ in RUNS]
        counts = await genapi("jobs", "counts", "--url", url, "--json")
        by_state = json.loads(counts.output)["by_state"]
        assert by_state["cancelled"] == 1 and by_state["succeeded"] == 1
        assert "cancelled" in (await genapi("jobs", "counts", "--url", url)).output
        purged = await genapi("jobs", "purge", "--url", url, "--older-than", "0")
        assert purged.output.strip() == "purged 2"
        assert gateway.durable is not None
        assert await gateway.durable.store.get(waiting) is None


async def test_the_cli_says_what_went_wrong(gateway_url: Any, tmp_path: Any) -> None:
    """A wrong token, an unknown call, a gate without manage_durable, a gateway without
    durable calls: exit 1 with a plain message."""
    url, _ = gateway_url
    wrong = await genapi("jobs", "list", "--url", url, token="nope")
    assert wrong.exit_code == 1 and "refused the admin token" in wrong.output
    unknown = await genapi("jobs", "show", "nope", "--url", url)
    assert unknown.exit_code == 1 and "no durable call 'nope'" in unknown.output
    plain = Gateway([Service("x")], admin=AdminSettings(token=ADMIN_TOKEN))
    async with running_app(plain) as other:
        missing = await genapi("jobs", "list", "--url", other)
        assert missing.exit_code == 1 and "no durable calls at" in missing.output
    gate_only = durable_gateway(f"sqlite:///{tmp_path / 'other.db'}", backend="sqlite")
    gate_only.admin = AdminSettings(token=ADMIN_TOKEN).effective_gate()
    async with running_app(gate_only) as closed:
        refused = await genapi("jobs", "purge", "--url", closed)
        assert refused.exit_code == 1 and "does not allow manage_durable" in refused.output


async def test_db_upgrade_creates_and_migrates(store_url: str) -> None:
    """genapi db upgrade creates the schema (and is harmless when it is current)."""
    for _ in range(2):
        result = await genapi("db", "upgrade", "--url", store_url, token=None)
        assert result.exit_code == 0 and result.output.strip() == "durable schema at version 2"
    bad = await genapi("db", "upgrade", "--url", "mysql://db/x", token=None)
    assert bad.exit_code == 1 and "unsupported scheme" in bad.output


async def test_a_gateway_with_durable_calls_after_the_cli_upgrade(store_url: str,
                                                                  backend: str) -> None:
    """A gateway opens a store the CLI migrated and serves its calls."""
    await genapi("db", "upgrade", "--url", store_url, token=None)
    gateway = durable_gateway(store_url, backend=backend)
    async with running_app(gateway) as url, Caller(url) as alice:
        await alice.push("r1", "signup", "welcome", {"email": "u@x.io", "fail_times": 0})
        assert (await alice.terminal("r1"))["success"]
        assert gateway.durable is not None
        call = await gateway.durable.store.get_by_key("alice:r:r1")
        assert call is not None and call.state is CallState.SUCCEEDED
