"""Operator commands of the ``genapi`` CLI: ``call`` and ``top``.

::

    genapi call user_service get_user --arg user_id='"1"' --param user_id=1
    genapi top --url http://localhost:4000          # needs Gateway(metrics=True)

``call`` makes one call with :class:`genapi.Client` and prints the Response as JSON (exit
code 1 when it is an error). ``top`` scrapes ``/metrics`` every ``--interval`` seconds and
shows calls/s, p50/p95 latency and the error share per function, from the differences
between successive scrapes of ``genapi_request_duration_seconds``.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.table import Table

    from ..messages import Response

__all__ = ["Row", "Scrape", "parse_metrics", "register", "rows"]

_DURATION = "genapi_request_duration_seconds"


def register(app: typer.Typer) -> None:
    """Add the ``call`` and ``top`` commands to ``app``."""
    app.command("call")(call_command)
    app.command("top")(top_command)


# -- genapi call -------------------------------------------------------------------------

def parse_pairs(items: Iterable[str], option: str) -> dict[str, str]:
    """``["k=v", …]`` as a dict; an item without ``=`` is a usage error."""
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected key=value, got {item!r}", param_hint=option)
        pairs[key] = value
    return pairs


def call_args(json_text: str | None, items: Iterable[str]) -> dict[str, Any]:
    """The call's arguments: the ``--json`` object, then each ``--arg`` (JSON if it parses)."""
    args: dict[str, Any] = {}
    if json_text is not None:
        try:
            loaded = json.loads(json_text)
        except json.JSONDecodeError as exc:
            raise typer.BadParameter(f"not JSON: {exc}", param_hint="--json") from None
        if not isinstance(loaded, dict):
            raise typer.BadParameter("must be a JSON object", param_hint="--json")
        args.update(loaded)
    for key, text in parse_pairs(items, "--arg").items():
        try:
            args[key] = json.loads(text)
        except json.JSONDecodeError:
            args[key] = text  # not JSON: the plain string
    return args


def call_command(
    service: Annotated[str, typer.Argument(help="Service name.")],
    request_type: Annotated[str, typer.Argument(help="Function name (request type).")],
    arg: Annotated[list[str] | None, typer.Option(
        "--arg", "-a", help="An argument, key=value; the value is JSON when it parses "
        "(so user_id=1 is a number and user_id='\"1\"' a string).")] = None,
    json_args: Annotated[str | None, typer.Option(
        "--json", help="Arguments as a JSON object (--arg values override).")] = None,
    url: Annotated[str, typer.Option(help="The gateway's socket URL.")] = (
        "ws://localhost:4000/socket"),
    param: Annotated[list[str] | None, typer.Option(
        "--param", "-p", help="A connect param, key=value (the authenticator reads them).")
    ] = None,
    version: Annotated[str | None, typer.Option(help="Function version.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the answer.")] = 10.0,
) -> None:
    """Call a function over the Phoenix socket and print the Response as JSON."""
    import msgspec

    from ..errors import GenApiError
    from ..messages import encode_response

    args = call_args(json_args, arg or ())
    params = parse_pairs(param or (), "--param")
    try:
        response = asyncio.run(_call(url, params, service, request_type, args, version, timeout))
    except (GenApiError, OSError) as exc:  # could not connect, or the connection dropped
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(msgspec.json.format(encode_response(response), indent=2).decode())
    if not response.success:
        raise typer.Exit(1)


async def _call(url: str, params: Mapping[str, str], service: str, request_type: str,
                args: Mapping[str, Any], version: str | None, timeout: float) -> Response:
    from ..client import Client
    from ..errors import ApiError
    from ..messages import Response

    request_id = uuid.uuid4().hex
    async with Client(url, params=params, timeout=timeout, reconnect=False) as client:
        try:
            result = await client.call(service, request_type, args, version=version,
                                       request_id=request_id)
        except ApiError as exc:
            return Response.fail(request_id, exc.message, can_retry=exc.can_retry)
    return Response.sync(request_id, result)


# -- genapi top --------------------------------------------------------------------------

@dataclass
class _Histogram:
    """One function's request histogram, summed over ``success``."""

    buckets: dict[float, float] = field(default_factory=dict)  # le -> cumulative count
    count: float = 0.0
    failures: float = 0.0


@dataclass
class Scrape:
    """What ``top`` reads from one scrape of ``/metrics``."""

    at: float
    functions: dict[tuple[str, str], _Histogram] = field(default_factory=dict)
    gauges: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Row:
    """One line of ``top``: a function's rate, latency (ms) and failures over an interval."""

    service: str
    request_type: str
    calls_per_s: float
    p50_ms: float | None
    p95_ms: float | None
    error_share: float
    total: float


def parse_metrics(text: str, at: float) -> Scrape:
    """Read the request histograms and a few gauges from a Prometheus text exposition."""
    from prometheus_client.parser import text_string_to_metric_families

    scrape = Scrape(at)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name, labels, value = sample.name, sample.labels, sample.value
            if name.startswith(_DURATION):
                key = (labels.get("service", ""), labels.get("request_type", ""))
                hist = scrape.functions.setdefault(key, _Histogram())
                if name == _DURATION + "_bucket":
                    le = float(labels["le"])
                    hist.buckets[le] = hist.buckets.get(le, 0.0) + value
                elif name == _DURATION + "_count":
                    hist.count += value
                    if labels.get("success") == "false":
                        hist.failures += value
            elif name in ("genapi_connections_open", "genapi_pool_busy", "genapi_pool_queued"):
                scrape.gauges[name] = scrape.gauges.get(name, 0.0) + value
            elif name == "genapi_breaker_state" and value > 0:
                scrape.gauges["breakers_not_closed"] = (
                    scrape.gauges.get("breakers_not_closed", 0.0) + 1)
    return scrape


def quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """The q-quantile (seconds) of cumulative ``buckets``, interpolated as Prometheus does."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if bound == float("inf"):
                return lower  # past the last finite bound: its value is all we know
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, count
    return lower


def rows(previous: Scrape, current: Scrape) -> list[Row]:
    """Per-function figures between two scrapes, busiest first (counter resets restart)."""
    seconds = max(current.at - previous.at, 1e-9)
    out = []
    for key, now in current.functions.items():
        before = previous.functions.get(key)
        if before is None or now.count < before.count:
            before = _Histogram()
        calls = now.count - before.count
        delta = {le: count - before.buckets.get(le, 0.0) for le, count in now.buckets.items()}
        p50, p95 = quantile(0.5, delta), quantile(0.95, delta)
        out.append(Row(
            service=key[0], request_type=key[1], calls_per_s=calls / seconds,
            p50_ms=None if p50 is None else p50 * 1000,
            p95_ms=None if p95 is None else p95 * 1000,
            error_share=(now.failures - before.failures) / calls if calls else 0.0,
            total=now.count,
        ))
    out.sort(key=lambda r: (-r.calls_per_s, -r.total, r.service, r.request_type))
    return out


def render(url: str, previous: Scrape, current: Scrape, problem: str | None = None) -> Table:
    """The ``top`` frame: a rich table of :func:`rows` and a caption with the gauges."""
    from rich.table import Table

    table = Table(title=f"genapi top  {url}", title_justify="left")
    table.add_column("function")
    for name in ("calls/s", "p50 ms", "p95 ms", "errors", "total"):
        table.add_column(name, justify="right")
    for row in rows(previous, current):
        table.add_row(f"{row.service}.{row.request_type}", f"{row.calls_per_s:,.1f}",
                      _ms(row.p50_ms), _ms(row.p95_ms), f"{row.error_share:.1%}",
                      f"{row.total:,.0f}")
    gauges = current.gauges
    table.caption = problem or (
        f"connections {gauges.get('genapi_connections_open', 0):.0f}   "
        f"pool tasks busy {gauges.get('genapi_pool_busy', 0):.0f}, "
        f"queued {gauges.get('genapi_pool_queued', 0):.0f}   "
        f"breakers not closed {gauges.get('breakers_not_closed', 0):.0f}")
    return table


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def top_command(
    url: Annotated[str, typer.Option(help="The gateway's base HTTP URL.")] = (
        "http://localhost:4000"),
    interval: Annotated[float, typer.Option(help="Seconds between scrapes.")] = 1.0,
    once: Annotated[bool, typer.Option(
        "--once", help="Print one frame (two scrapes, --interval apart) and exit.")] = False,
    token: Annotated[str | None, typer.Option(
        envvar="GENAPI_METRICS_TOKEN",
        help="Bearer token, when the gateway has a metrics_token.")] = None,
) -> None:
    """Live calls/s and latency per function, from the gateway's /metrics."""
    import httpx
    from rich.console import Console
    from rich.live import Live

    endpoint = url.rstrip("/") + "/metrics"
    console = Console()

    def scrape(http: httpx.Client) -> Scrape:
        response = http.get(endpoint)
        response.raise_for_status()
        return parse_metrics(response.text, time.monotonic())

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(timeout=max(interval, 5.0), headers=headers) as http:
        try:
            previous = scrape(http)
            if once:
                time.sleep(interval)
                console.print(render(url, previous, scrape(http)))
                return
        except httpx.HTTPError as exc:
            typer.echo(f"error: cannot read {endpoint}: {exc}", err=True)
            raise typer.Exit(2) from None
        with Live(render(url, previous, previous), console=console,
                  auto_refresh=False) as live:
            try:
                while True:
                    time.sleep(interval)
                    try:
                        current = scrape(http)
                    except httpx.HTTPError as exc:  # keep the last frame, say why
                        live.update(render(url, previous, previous, f"scrape failed: {exc}"),
                                    refresh=True)
                        continue
                    live.update(render(url, previous, current), refresh=True)
                    previous = current
            except KeyboardInterrupt:
                return
