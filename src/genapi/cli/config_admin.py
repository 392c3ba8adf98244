"""``genapi admin pull|pushed …`` and ``genapi report``: config distribution and the
debug bundle, over a running gateway's admin endpoint.

::

    genapi admin pull list                         # sources, versions, backoff
    genapi admin pull add data_service node-1 node-2
    genapi admin pull remove data_service
    genapi admin pull force [data_service]         # pull now, ignoring versions
    genapi admin pushed list                       # {service: config_version}
    genapi admin pushed show data_service
    genapi admin pushed delete data_service [--functions]
    genapi report [--output genapi-report.zip]     # a .zip of JSON files, secrets removed

Each takes ``--url`` and ``--token`` (or ``GENAPI_ADMIN_TOKEN``). Changes are admin
actions of the gateway (audited, applied on every gateway of its cluster) and need its
admin gate to allow ``push_config`` (``delete --functions`` also ``manage_functions``); a
refusal prints the gateway's reason and exits 1.
"""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from .admin import DEFAULT_URL, TOKEN_HELP, URL_HELP

__all__ = ["register", "write_bundle"]

Url = Annotated[str, typer.Option(help=URL_HELP)]
Token = Annotated[str | None, typer.Option(help=TOKEN_HELP, envvar="GENAPI_ADMIN_TOKEN",
                                           show_envvar=False)]
AsJson = Annotated[bool, typer.Option("--json", help="Print the raw JSON.")]

pull_app = typer.Typer(help="Pull sources: list, add, remove, force a pull.",
                       no_args_is_help=True)
pushed_app = typer.Typer(help="Pushed services: list, show, delete.", no_args_is_help=True)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def _call(method: str, url: str, path: str, token: str | None, *,
          body: dict[str, Any] | None = None, params: dict[str, str] | None = None,
          timeout: float = 30.0) -> Any:
    """One admin request; its JSON, or exit 1 with the gateway's reason."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.request(method, url.rstrip("/") + path, headers=headers,
                                 json=body, params=params, timeout=timeout)
    except httpx.HTTPError as exc:
        raise _fail(f"cannot reach {url}: {exc}") from exc
    if response.status_code == 401:
        raise _fail("the gateway refused the admin token (--token or GENAPI_ADMIN_TOKEN)")
    try:
        data = response.json()
    except ValueError:
        data = None
    reason = data.get("error") if isinstance(data, dict) else None
    if response.status_code == 403:
        raise _fail(reason or "the gateway's admin gate does not allow view_diagnostics")
    if response.status_code == 404 and reason is None:
        raise _fail(f"no admin endpoint at {url} "
                    "(start the gateway with admin=AdminSettings(token=...))")
    if response.status_code != 200:
        raise _fail(reason or f"HTTP {response.status_code} from {path}")
    return data


def _shared(change: dict[str, Any]) -> str:
    return " (on every gateway)" if change.get("shared") else ""


def _print(data: Any, as_json: bool, table: Table | str) -> None:
    if as_json:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        Console().print(table)


# -- pull -------------------------------------------------------------------------------

@pull_app.command("list")
def pull_list(url: Url = DEFAULT_URL, token: Token = None, as_json: AsJson = False) -> None:
    """The gateway's pull sources, their pulled versions and the pull backoff."""
    data = _call("GET", url, "/admin/config/pull", token)
    table = Table(title=f"Pull sources (every {data['pull_interval_s']:g} s; next round in "
                        f"{data['next_delay_s']:g} s)", title_justify="left")
    for column in ("service", "nodes", "version"):
        table.add_column(column)
    for source in data["sources"]:
        nodes = source["nodes"]
        table.add_row(source["service"], nodes if isinstance(nodes, str) else ", ".join(nodes),
                      source["version"] or "-")
    _print(data, as_json, table)


@pull_app.command("add")
def pull_add(
    service: Annotated[str, typer.Argument(help="The service to pull.")],
    nodes: Annotated[list[str], typer.Argument(help="Node names to pull it from, in order.")],
    url: Url = DEFAULT_URL, token: Token = None,
) -> None:
    """Pull SERVICE from NODES from now on (replacing its source); the first pull runs now."""
    change = _call("POST", url, "/admin/config/pull", token,
                   body={"service": service, "nodes": nodes})
    verb = "added" if change["before"] is None else "replaced"
    typer.echo(f"pull source {verb}: {service} from {', '.join(nodes)}{_shared(change)}")


@pull_app.command("remove")
def pull_remove(service: Annotated[str, typer.Argument(help="The service.")],
                url: Url = DEFAULT_URL, token: Token = None) -> None:
    """Stop pulling SERVICE (its functions stay registered)."""
    change = _call("DELETE", url, f"/admin/config/pull/{service}", token)
    typer.echo(f"pull source removed: {service}{_shared(change)}")


@pull_app.command("force")
def pull_force(service: Annotated[str | None, typer.Argument(
                   help="The service (default: every source).")] = None,
               url: Url = DEFAULT_URL, token: Token = None, as_json: AsJson = False) -> None:
    """Pull now, ignoring stored versions; exits 1 when a pull failed."""
    change = _call("POST", url, "/admin/config/pull/force", token,
                   body={"service": service} if service else {})
    results: dict[str, str] = change["after"]["results"]
    if as_json:
        typer.echo(json.dumps(change, indent=2))
    else:
        for name, status in sorted(results.items()):
            typer.echo(f"{name}: {status}")
        if not results:
            typer.echo("no pull sources")
    if any(status == "failed" for status in results.values()):
        raise typer.Exit(1)


# -- pushed -----------------------------------------------------------------------------

@pushed_app.command("list")
def pushed_list(url: Url = DEFAULT_URL, token: Token = None, as_json: AsJson = False) -> None:
    """Every pushed service and its config version."""
    data = _call("GET", url, "/admin/config/pushed", token)
    table = Table(title="Pushed services", title_justify="left")
    table.add_column("service")
    table.add_column("config version")
    for service, version in data["services"].items():
        table.add_row(service, version)
    _print(data, as_json, table)


@pushed_app.command("show")
def pushed_show(service: Annotated[str, typer.Argument(help="The service.")],
                url: Url = DEFAULT_URL, token: Token = None, as_json: AsJson = False) -> None:
    """SERVICE's pushed config: version, nodes, functions."""
    data = _call("GET", url, f"/admin/config/pushed/{service}", token)
    table = Table(title=f"{service} {data['config_version']} from "
                        f"{', '.join(data['nodes'])}" + (" (pulled too)" if data["pull"] else ""),
                  title_justify="left")
    for column in ("function", "version", "type", "status"):
        table.add_column(column)
    for f in data["functions"]:
        table.add_row(f["request_type"], f["version"] or "(unversioned)", f["response_type"],
                      "disabled" if f["disabled"] else "ok")
    _print(data, as_json, table)


@pushed_app.command("delete")
def pushed_delete(
    service: Annotated[str, typer.Argument(help="The service.")],
    functions: Annotated[bool, typer.Option(
        "--functions", help="Also remove its functions from the registry "
                            "(needs manage_functions).")] = False,
    url: Url = DEFAULT_URL, token: Token = None,
) -> None:
    """Forget SERVICE's push (the same version pushed again applies)."""
    change = _call("DELETE", url, f"/admin/config/pushed/{service}", token,
                   params={"functions": "true"} if functions else None)
    removed = change["after"]["functions_removed"]
    typer.echo(f"pushed config deleted: {service}"
               + (f" ({removed} functions removed)" if functions else "") + _shared(change))


def verify_command(
    service: Annotated[str, typer.Argument(help="The service.")],
    node: Annotated[str | None, typer.Option(
        "--node", help="One node (default: every live node of the service).")] = None,
    url: Url = DEFAULT_URL, token: Token = None, as_json: AsJson = False,
) -> None:
    """Ask SERVICE's nodes which config version they serve and compare it with the
    gateway's; exits 1 unless every node matches."""
    data = _call("GET", url, f"/admin/config/verify/{service}", token,
                 params={"node": node} if node else None)
    table = Table(title=f"{service}: node config versions", title_justify="left")
    for column in ("node", "status", "node version", "gateway version"):
        table.add_column(column)
    for row in data["nodes"]:
        table.add_row(row["node"], row["status"] + (f" ({row['error']})" if "error" in row
                                                    else ""),
                      row["node_version"] or "-", row["gateway_version"] or "-")
    _print(data, as_json, table)
    if any(row["status"] != "matched" for row in data["nodes"]):
        raise typer.Exit(1)


# -- report -----------------------------------------------------------------------------

def write_bundle(report: dict[str, Any], output: Path) -> Path:
    """Write ``report`` as a bundle: a ``.zip`` of one JSON file per section (and
    ``report.json`` with everything), or a directory of them when ``output`` does not
    end in ``.zip``."""
    files = {f"{name}.json": value for name, value in report.items()
             if isinstance(value, dict | list)}
    files["report.json"] = report
    if output.suffix == ".zip":
        output.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
            for name, value in files.items():
                bundle.writestr(name, json.dumps(value, indent=2, ensure_ascii=False))
    else:
        output.mkdir(parents=True, exist_ok=True)
        for name, value in files.items():
            (output / name).write_text(json.dumps(value, indent=2, ensure_ascii=False))
    return output


def report_command(
    url: Url = DEFAULT_URL, token: Token = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Where to write: a .zip, or a directory "
                               "(default genapi-report-<time>.zip).")] = None,
) -> None:
    """Write a debug bundle of a running gateway (config summary, registry, limits,
    health, cluster, recent errors, versions), secrets removed by the gateway."""
    report = _call("GET", url, "/admin/report", token)
    target = output or Path(f"genapi-report-{time.strftime('%Y%m%d-%H%M%S')}.zip")
    write_bundle(report, target)
    typer.echo(f"wrote {target} (health {report['health']['status']}, "
               f"{len(report['recent_errors']['records'])} recent warnings/errors)")


def register(app: typer.Typer) -> None:
    """Add ``report`` and, under ``admin`` (found or made), ``pull``, ``pushed`` and
    ``verify``."""
    app.command("report")(report_command)
    admin = next((group.typer_instance for group in app.registered_groups
                  if group.name == "admin" and group.typer_instance is not None), None)
    if admin is None:
        admin = typer.Typer(help="Change a running gateway (admin endpoint).",
                            no_args_is_help=True)
        app.add_typer(admin, name="admin")
    admin.add_typer(pull_app, name="pull")
    admin.add_typer(pushed_app, name="pushed")
    admin.command("verify")(verify_command)
