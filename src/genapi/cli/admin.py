"""``genapi status`` (and ``call-flow``) and ``genapi schema``: the admin side of the CLI.

``status`` reads a running gateway's admin endpoint
(``Gateway(admin=AdminSettings(token=...))``) and prints tables, or the raw JSON;
``status --call-flow SERVICE REQUEST_TYPE`` explains the phases of one call. ``schema``
exports JSON Schema, AsyncAPI or TypeScript from an app object (``--app module:attribute``)
or from a running gateway (``--url`` and ``--token``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from .health import process_parts

__all__ = ["catalog_of", "fetch", "register"]

DEFAULT_URL = "http://127.0.0.1:4000"
URL_HELP = "The gateway's base URL."
TOKEN_HELP = "The gateway's admin token (or the environment variable GENAPI_ADMIN_TOKEN)."


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def fetch(url: str, path: str, token: str | None, params: dict[str, str] | None = None,
          ok: Iterable[int] = (200,)) -> Any:
    """GET an admin endpoint's JSON; exit 1 with a plain explanation when that fails."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.get(url.rstrip("/") + path, headers=headers, params=params,
                             timeout=10.0)
    except httpx.HTTPError as exc:
        raise _fail(f"cannot reach {url}: {exc}") from exc
    status = response.status_code
    if status == 401:
        raise _fail("the gateway refused the admin token (--token or GENAPI_ADMIN_TOKEN)")
    if status == 403:
        raise _fail("the gateway's admin gate does not allow view_diagnostics")
    if status == 404 and 404 not in ok:
        raise _fail(f"no admin endpoint at {url} "
                    "(start the gateway with admin=AdminSettings(token=...))")
    if status not in ok:
        raise _fail(f"HTTP {status} from {path}")
    return response.json()


def _table(title: str, columns: list[str], rows: Iterable[Iterable[Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("-" if v is None else str(v) for v in row))
    return table


def _functions(data: dict[str, Any]) -> list[Any]:
    return [_table(f"Functions ({data['count']} in {len(data['services'])} services)",
                   ["service", "function", "version", "type", "runs", "default", "status"],
                   ([f["service"], f["request_type"], f["version"] or "(unversioned)",
                     f["response_type"], "local" if f["local"] else "remote",
                     "yes" if f["default"] else "", "disabled" if f["disabled"] else "ok"]
                    for f in data["functions"]))]


def _pools(data: dict[str, Any]) -> list[Any]:
    out: list[Any] = [_table("Pools", ["pool", "state", "size", "busy", "queued", "executed",
                                       "failed", "rejected", "breaker"],
                             ([p["name"], p["state"], p["size"], p["busy"], p["queued"],
                               p["total_executed"], p["total_failed"], p["total_rejected"],
                               p["breaker"]] for p in data["pools"].values()))]
    if data["nodes"]:
        out.append(_table("Node breakers", ["node", "state", "failures", "retry in (s)"],
                          ([b["name"], b["state"],
                            f"{b['consecutive_failures']}/{b['failure_threshold']}",
                            round(b["retry_in"], 1)] for b in data["nodes"].values())))
    return out


def _cluster(data: dict[str, Any]) -> list[Any]:
    if not data["enabled"]:
        return ["Cluster: none (every function runs in the gateway)."]
    state = "connected" if data["connected"] else "NOT connected"
    out: list[Any] = [
        f"Cluster {data['name']}: {state} to NATS, {data['health']['alive']}/"
        f"{data['health']['nodes']} nodes alive",
        _table("Nodes", ["node", "alive", "services", "seen (s ago)"],
               ([n, "yes" if v["alive"] else "NO", ", ".join(v["services"]), v["seen_ago"]]
                for n, v in data["nodes"].items())),
        _table("Pushed services", ["service", "version", "auto pull"],
               ([s["service"], s["version"], "yes" if s["auto_pull"] else "no"]
                for s in data["services"])),
    ]
    failed = data["failed_configs"]
    if failed["entries"]:
        out.append(_table(f"Failed configs ({failed['summary']['total']})",
                          ["service", "function", "source", "node", "reasons"],
                          ([e["service"], e["request_type"], e["source"], e["node"],
                            "; ".join(e["reasons"])] for e in failed["entries"])))
    return out


def _rate_limits(data: dict[str, Any]) -> list[Any]:
    if not data["configured"]:
        return ["Rate limits: no rate limiter."]
    config = data["config"] or {"global_limits": [], "api_limits": []}
    limits = [*config["global_limits"], *config["api_limits"]]
    state = "enabled" if data["enabled"] else "disabled"
    return [_table(f"Rate limits ({state})", ["scope", "key", "max", "window (ms)"],
                   ([f"{x['service']}.{x['request_type']}" if "service" in x else "global",
                     x["key"], x["max_requests"], x["window_ms"]] for x in limits))]


def _connections(data: dict[str, Any]) -> list[Any]:
    return [f"Connections: {data['connections_open']} open, {data['connections_total']} "
            f"since start, {data['connections_refused']} refused"
            + (" (draining)" if data["draining"] else "")]


def _calls(data: dict[str, Any] | None) -> list[Any]:
    if data is None:
        return ["Calls: not counted."]
    latency = data["latency_ms"]

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:g} ms"

    return [f"Calls: {data['total']['calls']} ({data['total']['errors']} errors); "
            f"{data['rate']['calls_per_s']:g}/s now; last minute p50 {ms(latency['p50'])}, "
            f"p95 {ms(latency['p95'])}, p99 {ms(latency['p99'])}"]


def print_status(snapshot: dict[str, Any], url: str, console: Console) -> None:
    """The status summary as text and tables."""
    health = snapshot["health"]
    console.print(f"genapi {snapshot['genapi_version']} at {url}: {health['status']}"
                  + "".join(f"\n  - {p}" for p in health["problems"]))
    for part in (*_calls(snapshot["calls"]), *_functions(snapshot["config_cache"]),
                 *_pools(snapshot["pools"]), *_rate_limits(snapshot["rate_limits"]),
                 *_cluster(snapshot["cluster"]), *_connections(snapshot["connections"]),
                 *process_parts(health.get("process"))):
        console.print(part)


def print_call_flow(flow: dict[str, Any], console: Console) -> None:
    """A call flow as a numbered list of phases."""
    name = f"{flow['service']}.{flow['request_type']}"
    if flow["found"]:
        label = flow["version"] or "unversioned"
        where = "local" if flow["local"] else "remote"
        console.print(f"{name} ({label}, {flow['response_type']}, {where})")
    else:
        console.print(f"{name}: {flow['error']}")
    console.print(_table("Phases", ["#", "phase", "", "what happens"],
                         ([i, s["phase"], "✓" if s["active"] else "-", s["description"]]
                          for i, s in enumerate(flow["steps"], 1))))


def _show_call_flow(url: str, token: str | None, service: str, request_type: str,
                    version: str | None, as_json: bool) -> None:
    params = {"service": service, "request_type": request_type}
    if version:
        params["version"] = version
    flow = fetch(url, "/admin/call-flow", token, params, ok=(200, 404))
    if as_json:
        typer.echo(json.dumps(flow, indent=2, ensure_ascii=False))
    else:
        print_call_flow(flow, Console())
    if not flow["found"]:
        raise typer.Exit(1)


def status(
    url: Annotated[str, typer.Option(help=URL_HELP)] = DEFAULT_URL,
    token: Annotated[str | None, typer.Option(
        help=TOKEN_HELP, envvar="GENAPI_ADMIN_TOKEN", show_envvar=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw JSON.")] = False,
    call_flow: Annotated[tuple[str, str] | None, typer.Option(
        "--call-flow", metavar="SERVICE REQUEST_TYPE",
        help="Explain how a call of this function is handled, phase by phase.")] = None,
    version: Annotated[str | None, typer.Option(
        help="With --call-flow: the version a request names (default: none).")] = None,
) -> None:
    """Show a running gateway's state: health, calls, functions, pools, limits, nodes."""
    if call_flow is not None:
        _show_call_flow(url, token, call_flow[0], call_flow[1], version, as_json)
        return
    snapshot = fetch(url, "/admin/status", token)
    if as_json:
        typer.echo(json.dumps(snapshot, indent=2, ensure_ascii=False))
        return
    print_status(snapshot, url, Console())


def call_flow_command(
    service: Annotated[str, typer.Argument(help="The service.")],
    request_type: Annotated[str, typer.Argument(help="The function (request type).")],
    version: Annotated[str | None, typer.Option(help="The version a request names.")] = None,
    url: Annotated[str, typer.Option(help=URL_HELP)] = DEFAULT_URL,
    token: Annotated[str | None, typer.Option(
        help=TOKEN_HELP, envvar="GENAPI_ADMIN_TOKEN", show_envvar=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw JSON.")] = False,
) -> None:
    """Explain how a running gateway handles a call (same as status --call-flow)."""
    _show_call_flow(url, token, service, request_type, version, as_json)


def catalog_of(target: str) -> dict[str, Any]:
    """The function catalog of a ``module:attribute`` (Gateway, Registry, Service(s))."""
    from ..functions.registry import Registry
    from ..functions.service import Service
    from ..gateway import Gateway
    from ..schema import function_catalog
    from .loading import load_app

    value = load_app(target)
    if isinstance(value, Gateway | Registry):
        return function_catalog(value)
    services = [value] if isinstance(value, Service) else value
    if isinstance(services, list | tuple) and services and all(
            isinstance(s, Service) for s in services):
        registry = Registry()
        for service in services:
            registry.add_service(service)
        return function_catalog(registry)
    raise typer.BadParameter(f"{target} is not a Gateway, Registry, Service or list of Services")


def schema(
    app_target: Annotated[str | None, typer.Option(
        "--app", help="module:attribute of a Gateway, Registry, Service or list of Services.")
    ] = None,
    url: Annotated[str | None, typer.Option(
        help="Read the functions from this running gateway's /admin/schema instead.")] = None,
    token: Annotated[str | None, typer.Option(
        help=TOKEN_HELP, envvar="GENAPI_ADMIN_TOKEN", show_envvar=False)] = None,
    asyncapi: Annotated[bool, typer.Option(
        "--asyncapi", help="Print an AsyncAPI 3.0 document of the socket API.")] = False,
    typescript: Annotated[Path | None, typer.Option(
        "--typescript", help="Write TypeScript types and a typed phoenix.js callApi here.",
        dir_okay=False)] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write the JSON here instead of printing it.",
        dir_okay=False)] = None,
) -> None:
    """Export the functions' schemas — arguments, results, stream chunks, docstrings — as
    JSON Schema 2020-12, AsyncAPI or TypeScript."""
    from ..schema import CATALOG_FORMAT, asyncapi_document, json_schemas, typescript_module

    if app_target is not None and url is None:
        catalog = catalog_of(app_target)
    elif url is not None and app_target is None:
        catalog = fetch(url, "/admin/schema", token)
        if catalog.get("format") != CATALOG_FORMAT:
            raise _fail(f"{url} serves catalog format {catalog.get('format')!r}; this genapi "
                        f"reads format {CATALOG_FORMAT}")
    else:
        raise typer.BadParameter("give exactly one of --app and --url")
    if typescript is not None:
        typescript.write_text(typescript_module(catalog), encoding="utf-8")
        typer.echo(f"wrote {typescript}", err=True)
        if not asyncapi and output is None:
            return
    document = asyncapi_document(catalog, server_url=url) if asyncapi else json_schemas(catalog)
    text = json.dumps(document, indent=2, ensure_ascii=False)
    if output is not None:
        output.write_text(text + "\n", encoding="utf-8")
        typer.echo(f"wrote {output}", err=True)
    else:
        typer.echo(text)


def register(app: typer.Typer) -> None:
    """Add ``status``, ``call-flow``, ``schema`` and ``admin`` (the write actions, in
    :mod:`.operate`) to the ``genapi`` command."""
    from . import operate

    app.command("status")(status)
    app.command("call-flow")(call_flow_command)
    app.command("schema")(schema)
    operate.register(app)
