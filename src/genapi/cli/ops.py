"""Operator commands of the ``genapi`` CLI: ``top`` (and ``call``, in :mod:`.call`).

::

    genapi top --url http://localhost:4000          # needs Gateway(metrics=True)

``top`` scrapes ``/metrics`` every ``--interval`` seconds and shows calls/s, p50/p95
latency and the error share per function, from the differences between successive scrapes
of ``genapi_request_duration_seconds``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

import typer

from . import call

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["Row", "Scrape", "parse_metrics", "register", "rows"]

_DURATION = "genapi_request_duration_seconds"


def register(app: typer.Typer) -> None:
    """Add the ``call`` and ``top`` commands to ``app``."""
    call.register(app)
    app.command("top")(top_command)


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
