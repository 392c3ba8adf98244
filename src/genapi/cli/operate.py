"""``genapi admin``: change a running gateway through its admin API (audited, and applied
on every gateway of its cluster).

::

    genapi admin disable shop price --version 1.0.0      # POST /admin/functions/shop/price/disable
    genapi admin enable shop price --version 1.0.0       # POST …/enable
    genapi admin delete shop price --version 1.0.0       # DELETE /admin/functions/shop/price
    genapi admin set-limit user_id 100 60000             # PUT /admin/rate-limits (global)
    genapi admin set-limit user_id 5 1000 --service chat --request-type send
    genapi admin clear-limit user_id [--window-ms 60000] # DELETE /admin/rate-limits
    genapi admin reset alice [--key user_id]             # POST /admin/rate-limits/reset
    genapi admin check alice                             # POST /admin/rate-limits/check
    genapi admin clear-counts                            # POST /admin/rate-limits/clear

Each talks to one gateway (``--url``, default http://127.0.0.1:4000) with the admin token
(``--token`` or ``GENAPI_ADMIN_TOKEN``), prints what changed (before → after; ``--json``
for the whole record) and exits 1 when refused. ``check`` counts one request of the
value and exits 2 when it does not fit.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import httpx
import typer

__all__ = ["admin_app", "register"]

DEFAULT_URL = "http://127.0.0.1:4000"
URL = Annotated[str, typer.Option(help="The gateway's base URL.")]
TOKEN = Annotated[str | None, typer.Option(
    help="The gateway's admin token.", envvar="GENAPI_ADMIN_TOKEN", show_envvar=True)]
AS_JSON = Annotated[bool, typer.Option("--json", help="Print the whole change as JSON.")]
SERVICE = Annotated[str, typer.Argument(help="The service.")]
REQUEST_TYPE = Annotated[str, typer.Argument(help="The function (request type).")]
VERSION = Annotated[str | None, typer.Option(
    help="The version (omit for an unversioned function).")]
SCOPE_SERVICE = Annotated[str | None, typer.Option(
    help="With --request-type: one function's limits (default: the global ones).")]
SCOPE_TYPE = Annotated[str | None, typer.Option(help="With --service.")]
KEY = Annotated[str | None, typer.Option(
    help="Only the limits on this key (user_id, device_id, ip_address).")]
VALUE = Annotated[str, typer.Argument(help="The key value: a user id, device id or IP.")]

admin_app = typer.Typer(
    help="Change a running gateway: functions and rate limits (admin token; audited, "
         "applied on every gateway of the cluster).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add ``admin`` to ``app``."""
    app.add_typer(admin_app, name="admin")


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def request(method: str, url: str, path: str, token: str | None, *,
            params: dict[str, Any] | None = None, body: dict[str, Any] | None = None,
            denied: str | None = None, missing: str | None = None) -> Any:
    """One admin request; its JSON, or exit 1 saying plainly what went wrong (``denied``
    for any 403, ``missing`` for a 404 without the gateway's reason, when given)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    query = {k: v for k, v in (params or {}).items() if v is not None}
    payload = {k: v for k, v in (body or {}).items() if v is not None}
    try:
        response = httpx.request(method, url.rstrip("/") + path, headers=headers,
                                 params=query, json=payload or None, timeout=30.0)
    except httpx.HTTPError as exc:
        raise _fail(f"cannot reach {url}: {exc}") from exc
    status = response.status_code
    if status == 401:
        raise _fail("the gateway refused the admin token (--token or GENAPI_ADMIN_TOKEN)")
    try:
        data = response.json()
    except ValueError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    if status == 403:
        raise _fail(denied or error or "the gateway's admin gate does not allow "
                                       "view_diagnostics")
    if status == 404 and error is None:
        raise _fail(missing or f"no admin endpoint at {url} "
                               "(start the gateway with admin=AdminSettings(token=...))")
    if status >= 400:
        raise _fail(error or f"HTTP {status} from {path}")
    return data


def _text(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _report(change: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(change, indent=2, sort_keys=True))
        return
    target = " ".join(f"{k}={v}" for k, v in change["target"].items() if v is not None)
    shared = "every gateway" if change["shared"] else change["gateway"]
    typer.echo(f"{change['action']} {target}: {_text(change['before'])} -> "
               f"{_text(change['after'])} (by {change['who']}, on {shared})")


def _function(method: str, suffix: str, service: str, request_type: str,
              version: str | None, url: str, token: str | None, as_json: bool) -> None:
    path = f"/admin/functions/{service}/{request_type}{suffix}"
    _report(request(method, url, path, token, params={"version": version}), as_json)


@admin_app.command("disable")
def disable(service: SERVICE, request_type: REQUEST_TYPE, version: VERSION = None,
            url: URL = DEFAULT_URL, token: TOKEN = None, as_json: AS_JSON = False) -> None:
    """Disable a function version (calls answer "disabled function"); manage_functions."""
    _function("POST", "/disable", service, request_type, version, url, token,
              as_json)


@admin_app.command("enable")
def enable(service: SERVICE, request_type: REQUEST_TYPE, version: VERSION = None,
           url: URL = DEFAULT_URL, token: TOKEN = None, as_json: AS_JSON = False) -> None:
    """Enable a disabled function version again; manage_functions."""
    _function("POST", "/enable", service, request_type, version, url, token,
              as_json)


@admin_app.command("delete")
def delete(service: SERVICE, request_type: REQUEST_TYPE, version: VERSION = None,
           url: URL = DEFAULT_URL, token: TOKEN = None, as_json: AS_JSON = False) -> None:
    """Remove a function version (calls in flight finish); manage_functions."""
    _function("DELETE", "", service, request_type, version, url, token, as_json)


@admin_app.command("set-limit")
def set_limit(
    key: Annotated[str, typer.Argument(help="user_id, device_id or ip_address.")],
    max_requests: Annotated[int, typer.Argument(help="At most this many requests …")],
    window_ms: Annotated[int, typer.Argument(help="… in any window of this many ms.")],
    service: SCOPE_SERVICE = None, request_type: SCOPE_TYPE = None,
    url: URL = DEFAULT_URL, token: TOKEN = None, as_json: AS_JSON = False,
) -> None:
    """Add a rate limit, or replace the one with the same scope, key and window;
    update_rate_limit_config."""
    _report(request("PUT", url, "/admin/rate-limits", token, body={
        "key": key, "max_requests": max_requests, "window_ms": window_ms,
        "service": service, "request_type": request_type}), as_json)


@admin_app.command("clear-limit")
def clear_limit(
    key: Annotated[str, typer.Argument(help="user_id, device_id or ip_address.")],
    service: SCOPE_SERVICE = None, request_type: SCOPE_TYPE = None,
    window_ms: Annotated[int | None, typer.Option(
        help="Only the limit with this window (default: every window).")] = None,
    url: URL = DEFAULT_URL, token: TOKEN = None, as_json: AS_JSON = False,
) -> None:
    """Remove the rate limits of a scope on a key; update_rate_limit_config."""
    _report(request("DELETE", url, "/admin/rate-limits", token, params={
        "key": key, "service": service, "request_type": request_type,
        "window_ms": window_ms}), as_json)


@admin_app.command("reset")
def reset(value: VALUE, key: KEY = None, service: SCOPE_SERVICE = None,
          request_type: SCOPE_TYPE = None, url: URL = DEFAULT_URL, token: TOKEN = None,
          as_json: AS_JSON = False) -> None:
    """Forget what a key value has used under a scope's limits; update_rate_limit_config."""
    _report(request("POST", url, "/admin/rate-limits/reset", token, body={
        "value": value, "key": key, "service": service, "request_type": request_type}),
        as_json)


@admin_app.command("check")
def check(value: VALUE, key: KEY = None, service: SCOPE_SERVICE = None,
          request_type: SCOPE_TYPE = None, url: URL = DEFAULT_URL, token: TOKEN = None,
          as_json: AS_JSON = False) -> None:
    """Count one request of a key value against a scope's limits, on this gateway; exit 2
    when it does not fit (nothing counted). update_rate_limit_config."""
    change = request("POST", url, "/admin/rate-limits/check", token, body={
        "value": value, "key": key, "service": service, "request_type": request_type})
    after = change["after"]
    if as_json:
        _report(change, as_json)
    elif after["allowed"]:
        left = ", ".join(f"{limit['key']}/{limit['window_ms']} ms: "
                         f"{limit['remaining']} of {limit['max_requests']} left"
                         for limit in after["limits"]) or "no limit applies"
        typer.echo(f"allowed, counted ({left})")
    else:
        typer.echo(f"rate limited: retry after {after['retry_after_ms']} ms")
    if not after["allowed"]:
        raise typer.Exit(2)


@admin_app.command("clear-counts")
def clear_counts(url: URL = DEFAULT_URL, token: TOKEN = None,
                 as_json: AS_JSON = False) -> None:
    """Forget every key value's usage under every limit (the limits stay);
    update_rate_limit_config."""
    _report(request("POST", url, "/admin/rate-limits/clear", token), as_json)
