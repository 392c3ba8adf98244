"""``genapi jobs`` (durable calls, through a gateway's admin API) and ``genapi db upgrade``.

::

    genapi jobs list --state dead              # GET  /admin/jobs?state=dead
    genapi jobs show CALL_ID                   # GET  /admin/jobs/CALL_ID
    genapi jobs retry CALL_ID                  # POST /admin/jobs/CALL_ID/retry
    genapi jobs cancel CALL_ID                 # POST /admin/jobs/CALL_ID/cancel
    genapi jobs purge --older-than 86400       # POST /admin/jobs/purge
    genapi jobs counts                         # GET  /admin/jobs/counts
    genapi db upgrade --url postgresql://app@db/app   # create or migrate the schema

``jobs`` talks to a running gateway (``--url``, default http://127.0.0.1:4000) with the
admin token (``--token`` or ``GENAPI_ADMIN_TOKEN``); retry, cancel and purge also need the
gate to allow ``manage_durable``. ``db upgrade`` talks to the store itself.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from .operate import request

__all__ = ["register"]

DEFAULT_URL = "http://127.0.0.1:4000"
URL = Annotated[str, typer.Option(help="The gateway's base URL.")]
TOKEN = Annotated[str | None, typer.Option(
    help="The gateway's admin token.", envvar="GENAPI_ADMIN_TOKEN", show_envvar=True)]
AS_JSON = Annotated[bool, typer.Option("--json", help="Print the raw JSON.")]

jobs_app = typer.Typer(help="Durable calls: list, show, retry, cancel, purge (admin token).",
                       no_args_is_help=True)
db_app = typer.Typer(help="The durable-call store's schema.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add ``jobs`` and ``db`` to ``app``."""
    app.add_typer(jobs_app, name="jobs")
    app.add_typer(db_app, name="db")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def _call(method: str, url: str, path: str, token: str | None,
          params: dict[str, Any] | None = None) -> Any:
    """One admin API request; its JSON, or exit 1 saying plainly what went wrong."""
    needed = "manage_durable" if method != "GET" else "view_diagnostics"
    missing = (f"no durable calls at {url} (start the gateway with "
               "durable=DurableSettings(...) and admin=AdminSettings(token=...))"
               if path.rstrip("/") == "/admin/jobs" else None)
    return request(method, url, path, token, params=params, missing=missing,
                   denied=f"the gateway's admin gate does not allow {needed}")


def _age(then: float | None) -> str:
    if then is None:
        return "-"
    seconds = max(0.0, time.time() - then)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True))


@jobs_app.command("list")
def list_command(
    url: URL = DEFAULT_URL, token: TOKEN = None,
    state: Annotated[str | None, typer.Option(
        help="pending, running, succeeded, dead or cancelled.")] = None,
    service: Annotated[str | None, typer.Option(help="Only this service.")] = None,
    user: Annotated[str | None, typer.Option(help="Only this caller (user id).")] = None,
    limit: Annotated[int, typer.Option(help="At most this many (1..1000).")] = 50,
    before: Annotated[str | None, typer.Option(
        help="Calls older than this id (the next page).")] = None,
    as_json: AS_JSON = False,
) -> None:
    """List durable calls, newest first."""
    data = _call("GET", url, "/admin/jobs", token, {
        "state": state, "service": service, "user_id": user, "limit": limit,
        "before": before})
    if as_json:
        _print_json(data)
        return
    table = Table(title=f"Durable calls ({len(data['calls'])})", title_justify="left")
    table.add_column("id", no_wrap=True)  # copied into show / retry / cancel
    for column in ("state", "tries", "function", "request", "user", "age", "error"):
        table.add_column(column)
    for call in data["calls"]:
        table.add_row(call["id"], call["state"], f"{call['attempts']}/{call['max_attempts']}",
                      f"{call['service']}.{call['request_type']}", call["request_id"],
                      call["user_id"] or "-", _age(call["created_at"]),
                      (call["last_error"] or "")[:60])
    console = Console()
    console.print(table)
    if data.get("next"):
        console.print(f"more: --before {data['next']}")


@jobs_app.command("show")
def show_command(call_id: Annotated[str, typer.Argument(help="The call's id.")],
                 url: URL = DEFAULT_URL, token: TOKEN = None) -> None:
    """Show one durable call (every field, as JSON)."""
    _print_json(_call("GET", url, f"/admin/jobs/{call_id}", token))


@jobs_app.command("retry")
def retry_command(call_id: Annotated[str, typer.Argument(help="The call's id.")],
                  url: URL = DEFAULT_URL, token: TOKEN = None) -> None:
    """Run a dead or cancelled call again (its attempts start from zero)."""
    call = _call("POST", url, f"/admin/jobs/{call_id}/retry", token)
    typer.echo(f"{call['id']} {call['state']}")


@jobs_app.command("cancel")
def cancel_command(call_id: Annotated[str, typer.Argument(help="The call's id.")],
                   url: URL = DEFAULT_URL, token: TOKEN = None) -> None:
    """Cancel a pending call, or ask a running one to stop."""
    call = _call("POST", url, f"/admin/jobs/{call_id}/cancel", token)
    note = " (stops at its worker's next lease renewal)" if call["state"] == "running" else ""
    typer.echo(f"{call['id']} {call['state']}{note}")


@jobs_app.command("purge")
def purge_command(
    url: URL = DEFAULT_URL, token: TOKEN = None,
    older_than: Annotated[float | None, typer.Option(
        help="Seconds since they finished (default: the gateway's retention).")] = None,
) -> None:
    """Delete finished calls (succeeded, dead, cancelled) older than a time."""
    data = _call("POST", url, "/admin/jobs/purge", token, {"older_than_s": older_than})
    typer.echo(f"purged {data['purged']}")


@jobs_app.command("counts")
def counts_command(url: URL = DEFAULT_URL, token: TOKEN = None,
                   as_json: AS_JSON = False) -> None:
    """Calls by state, how many wait for a retry, how late the oldest due one is."""
    data = _call("GET", url, "/admin/jobs/counts", token)
    if as_json:
        _print_json(data)
        return
    table = Table(title="Durable calls", title_justify="left")
    for column in ("state", "calls"):
        table.add_column(column)
    for state, count in data["by_state"].items():
        table.add_row(state, str(count))
    table.add_row("(retrying)", str(data["retrying"]))
    oldest = data["oldest_due_age_s"]
    table.add_row("(oldest due)", "-" if oldest is None else f"{oldest:.1f} s")
    Console().print(table)


@db_app.command("upgrade")
def upgrade_command(
    url: Annotated[str, typer.Option(
        help="The store: sqlite:///path or postgresql://user@host/db[?schema=name].",
        envvar="GENAPI_DURABLE_URL", show_envvar=True)],
) -> None:
    """Create the durable-call tables, or migrate them to this version's schema."""
    from ..durable import open_store
    from ..errors import ConfigError, StoreUnavailable

    async def upgrade() -> int:
        store = open_store(url)
        await store.open()
        try:
            return await store.migrate()
        finally:
            await store.aclose()

    try:
        version = asyncio.run(upgrade())
    except (ConfigError, StoreUnavailable) as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"durable schema at version {version}")
