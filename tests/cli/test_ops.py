"""`genapi call` and `genapi top` against gateways started in-process."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import typer
from typer.testing import CliRunner, Result

from genapi import Gateway, Registry, Service
from genapi.cli.call import call_args
from genapi.cli.main import app
from genapi.cli.ops import parse_metrics, quantile, rows
from genapi.demo.app import build_demo_gateway
from genapi.observability import PrometheusExporter
from genapi.telemetry.events import Telemetry
from tests.support.servers import free_port, running_app


async def invoke(*argv: str) -> Result:
    """Run the CLI in a thread: it runs its own event loop, the gateway runs in ours."""
    return await asyncio.to_thread(CliRunner().invoke, app, list(argv))


def test_arguments_are_json_when_they_parse() -> None:
    """--arg values are JSON when they parse, else strings; --arg overrides --json."""
    assert call_args('{"a": 1, "b": [1]}', ["b=2", "c=hello", 'd="7"', "e={\"x\": null}"]) == {
        "a": 1, "b": 2, "c": "hello", "d": "7", "e": {"x": None}}
    assert call_args(None, ["empty="]) == {"empty": ""}


@pytest.mark.parametrize(("json_text", "items"), [("[1]", []), ("{", []), (None, ["novalue"])])
def test_bad_arguments_are_usage_errors(json_text: str | None, items: list[str]) -> None:
    """A --json that is not an object, or an --arg without '=', is a usage error."""
    with pytest.raises(typer.BadParameter):
        call_args(json_text, items)


async def test_call_prints_the_response() -> None:
    """`genapi call` prints the success Response as JSON and exits 0."""
    async with running_app(build_demo_gateway()) as url:
        result = await invoke("call", "user_service", "get_user", "--arg", 'user_id="2"',
                              "--url", url.replace("http://", "ws://") + "/socket",
                              "--param", "user_id=1")
    assert result.exit_code == 0, result.output
    response = json.loads(result.output)
    assert response["success"] is True
    assert response["result"]["name"] == "Bob"
    assert set(response) == {"request_id", "result", "success", "error", "async", "has_more",
                             "can_retry"}


async def test_call_with_json_args_and_version() -> None:
    """--json and --version reach the function."""
    async with running_app(build_demo_gateway()) as url:
        result = await invoke("call", "user_service", "get_user", "--json",
                              '{"id": "1", "fields": ["id"]}', "--version", "2.0.0",
                              "--url", url.replace("http://", "ws://") + "/socket")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["result"] == {"id": "1"}


async def test_an_error_response_exits_1() -> None:
    """An error Response is printed too, and the exit code is 1."""
    async with running_app(build_demo_gateway()) as url:
        result = await invoke("call", "user_service", "delete_user", "-a", 'user_id="2"',
                              "--url", url.replace("http://", "ws://") + "/socket",
                              "-p", "user_id=1")
    assert result.exit_code == 1
    response = json.loads(result.output)
    assert response["success"] is False
    assert response["error"] == "Permission denied"


async def test_an_unreachable_gateway_exits_2() -> None:
    """When the socket cannot be reached, `genapi call` says so and exits 2."""
    result = await invoke("call", "user_service", "list_users", "--url",
                          f"ws://127.0.0.1:{free_port()}/socket", "--timeout", "2")
    assert result.exit_code == 2
    assert "error:" in result.output


def scrape_text(exporter: PrometheusExporter) -> str:
    assert exporter.flush(5.0)
    return exporter.exposition().decode()


def test_rows_come_from_histogram_deltas() -> None:
    """top's rates and percentiles come from the difference between two scrapes."""
    telemetry = Telemetry()
    exporter = PrometheusExporter(telemetry)
    meta = {"service": "s", "request_type": "f", "version": None}

    def emit(count: int, duration_us: int, success: bool = True) -> None:
        for _ in range(count):
            telemetry.emit("executor.request.stop", {"duration_us": duration_us},
                           {**meta, "success": success})

    emit(10, 150)  # before the interval: 0.1-0.25 ms
    first = parse_metrics(scrape_text(exporter), at=100.0)
    emit(8, 3000)  # during it: all in the 2.5-5 ms bucket
    emit(2, 3000, success=False)
    second = parse_metrics(scrape_text(exporter), at=102.0)
    [row] = rows(first, second)
    assert (row.service, row.request_type) == ("s", "f")
    assert row.calls_per_s == 5.0
    assert row.p50_ms == pytest.approx(3.75)  # halfway into the 2.5-5 ms bucket
    assert row.p95_ms == pytest.approx(4.875)
    assert row.error_share == pytest.approx(0.2)
    assert row.total == 20
    [idle] = rows(second, parse_metrics(scrape_text(exporter), at=103.0))
    assert idle.calls_per_s == 0 and idle.p50_ms is None


def test_quantile_past_the_last_bound_is_that_bound() -> None:
    """Observations past the last finite bound report that bound."""
    assert quantile(0.5, {0.1: 0.0, 10.0: 0.0, float("inf"): 4.0}) == 10.0
    assert quantile(0.5, {0.1: 0.0, float("inf"): 0.0}) is None


async def test_top_once_prints_a_frame() -> None:
    """`genapi top --once` shows each function with its totals from /metrics."""
    svc = Service("bench")

    @svc.function()
    async def echo(n: int) -> int:
        return n

    gateway = Gateway([svc], metrics=True, registry=Registry(telemetry=Telemetry()))
    async with running_app(gateway) as url:
        async with httpx.AsyncClient(base_url=url) as http:
            for n in range(3):
                assert (await http.post("/api/bench/echo", json={"n": n})).status_code == 200
        result = await invoke("top", "--url", url, "--once", "--interval", "0.05")
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if "bench.echo" in line)
    assert line.replace("│", " ").split()[-1] == "3"  # the total column
    assert "connections 0" in result.output


async def test_top_without_metrics_exits_2() -> None:
    """`genapi top` against a gateway without /metrics says so and exits 2."""
    gateway = Gateway([], registry=Registry(telemetry=Telemetry()))
    async with running_app(gateway) as url:
        result = await invoke("top", "--url", url, "--once", "--interval", "0.05")
    assert result.exit_code == 2
    assert "/metrics" in result.output
