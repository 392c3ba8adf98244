"""`genapi call`: streams printed as they arrive, exit codes, --arg typed by the schema."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from typer.testing import CliRunner, Result

from genapi import ApiError, Gateway, Service
from genapi.cli.call import call_args, find_function
from genapi.cli.main import app
from genapi.demo.app import build_demo_gateway
from genapi.schema import function_catalog
from tests.support.servers import running_app

TOKEN = "admin-token-for-the-cli-tests"


async def invoke(url: str, *argv: str) -> Result:
    """Run the CLI in a thread: it runs its own event loop, the gateway runs in ours."""
    socket = url.replace("http://", "ws://") + "/socket"
    return await asyncio.to_thread(CliRunner().invoke, app, ["call", *argv, "--url", socket])


def lines(result: Result) -> list[dict[str, object]]:
    return [json.loads(line) for line in result.output.splitlines() if line.strip()]


async def test_a_stream_prints_each_response_as_a_line() -> None:
    """init, every chunk and the end, one JSON line each; exit 0."""
    async with running_app(build_demo_gateway()) as url:
        result = await invoke(url, "event_service", "ticker", "--arg", "count=3",
                              "--arg", "interval_ms=1")
    assert result.exit_code == 0, result.output
    printed = lines(result)
    assert [r["result"] for r in printed] == ["init", {"tick": 1}, {"tick": 2}, {"tick": 3},
                                              None]
    assert [r["has_more"] for r in printed] == [True, True, True, True, False]


async def test_a_stream_ending_in_an_error_exits_1() -> None:
    """The chunks so far, then the error line; exit 1."""
    svc = Service("flaky")

    @svc.function(response_type="stream")
    async def breaks() -> AsyncIterator[int]:
        yield 1
        raise ApiError("disk full")

    async with running_app(Gateway([svc])) as url:
        result = await invoke(url, "flaky", "breaks")
    assert result.exit_code == 1
    printed = lines(result)
    assert [r["result"] for r in printed[:2]] == ["init", 1]
    assert printed[-1]["error"] == "disk full"


async def test_args_are_typed_by_the_schema_from_the_app_or_the_gateway() -> None:
    """``--arg user_id=1`` sends a string to a string argument, given the schema (from
    --app, or from the gateway with the admin token); without it, the number 1."""
    gateway = build_demo_gateway(admin_token=TOKEN)
    async with running_app(gateway) as url:
        from_app = await invoke(url, "user_service", "get_user", "--arg", "user_id=1",
                                "--app", "genapi.demo.walkthrough:SERVICES")
        from_gateway = await invoke(url, "user_service", "get_user", "--arg", "user_id=2",
                                    "--token", TOKEN)
        untyped = await invoke(url, "user_service", "get_user", "--arg", "user_id=1")
    assert from_app.exit_code == 0, from_app.output
    assert json.loads(from_app.output)["result"]["name"] == "Alice"
    assert json.loads(from_gateway.output)["result"]["name"] == "Bob"
    assert untyped.exit_code == 1
    refused = json.loads(untyped.output)
    assert refused["error"] == "Invalid argument user_id: expected string"
    assert refused["details"] == {"errors": [
        {"path": ["user_id"], "message": "Invalid argument user_id: expected string"}]}


def test_typing_rules() -> None:
    """Text for string-like arguments (a JSON string literal too), JSON for the others,
    the default version's arguments when none is named."""
    catalog = function_catalog(build_demo_gateway(admin_token=TOKEN))
    function = find_function(catalog, "user_service", "get_user", "2.0.0")
    assert function is not None and function["version"] == "2.0.0"
    default = find_function(catalog, "user_service", "get_user", None)
    assert default is not None and default["version"] is None
    assert find_function(catalog, "user_service", "nope", None) is None
    arguments = function["arguments"]
    assert call_args(None, ["id=1", 'fields=["name"]'], arguments) == {
        "id": "1", "fields": ["name"]}
    assert call_args(None, ['user_id="7"', "other=5"], arguments) == {
        "user_id": "7", "other": 5}

