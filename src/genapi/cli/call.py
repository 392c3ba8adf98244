"""``genapi call``: call a function from the shell.

::

    genapi call user_service get_user --arg user_id=1 --param user_id=1
    genapi call event_service ticker --arg count=3          # a stream: one line per chunk
    genapi call user_service get_user --arg user_id=1 --app myapp:gateway

The answer is printed as JSON: the final Response of a sync or async function (with the
error's ``details`` as an eighth key when it has any); for a stream, every Response as
one line (NDJSON) as it arrives — the ``"init"``, each chunk, the end. The exit code is 0
for success, 1 for an error Response (a stream ending in an error included), 2 when the
gateway cannot be reached.

``--arg key=value`` values are typed by the function's schema: a string argument gets the
text as it is (``--arg user_id=1`` sends ``"1"``; a JSON string literal such as
``'"1"'`` works too), other arguments get the value parsed as JSON (``count=3`` is a
number, ``tags='["a"]'`` a list). The schema comes from ``--app module:attribute`` (the
gateway or services, loaded here) or, with the admin token (``--token`` or
``GENAPI_ADMIN_TOKEN``), from the running gateway's ``/admin/schema``; without either, a
value is JSON when it parses and a string otherwise.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit, urlunsplit

import typer

if TYPE_CHECKING:
    from ..messages import Response

__all__ = ["call_args", "call_command", "find_function", "parse_pairs"]

#: Argument types whose values are text: ``--arg`` gives them the text as it is.
TEXT_TYPES = frozenset({"string", "uuid", "datetime", "naive_datetime"})


def parse_pairs(items: Iterable[str], option: str) -> dict[str, str]:
    """``["k=v", …]`` as a dict; an item without ``=`` is a usage error."""
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected key=value, got {item!r}", param_hint=option)
        pairs[key] = value
    return pairs


def _value(text: str, kind: str | None) -> Any:
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        return text  # not JSON: the plain string
    if kind in TEXT_TYPES and not isinstance(parsed, str):
        return text  # a string argument: "1" stays "1"
    return parsed


def call_args(json_text: str | None, items: Iterable[str],
              arguments: Iterable[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The call's arguments: the ``--json`` object, then each ``--arg`` typed by the
    function's described ``arguments`` (catalog entries) when known."""
    args: dict[str, Any] = {}
    if json_text is not None:
        try:
            loaded = json.loads(json_text)
        except json.JSONDecodeError as exc:
            raise typer.BadParameter(f"not JSON: {exc}", param_hint="--json") from None
        if not isinstance(loaded, dict):
            raise typer.BadParameter("must be a JSON object", param_hint="--json")
        args.update(loaded)
    kinds = {a["name"]: a.get("type") for a in arguments or ()}
    for key, text in parse_pairs(items, "--arg").items():
        args[key] = _value(text, kinds.get(key))
    return args


def find_function(catalog: Mapping[str, Any], service: str, request_type: str,
                  version: str | None) -> Mapping[str, Any] | None:
    """The catalog entry a call would reach (the default version when none is named)."""
    for function in catalog.get("functions", ()):
        if (function["service"], function["request_type"]) != (service, request_type):
            continue
        if (version is None and function.get("default")) or (
                version is not None and function.get("version") == version):
            return function  # type: ignore[no-any-return]
    return None


def _http_url(socket_url: str) -> str:
    parts = urlsplit(socket_url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, "", "", ""))


def _catalog(app_target: str | None, url: str, token: str | None) -> dict[str, Any] | None:
    if app_target is not None:
        from .admin import catalog_of

        return catalog_of(app_target)
    if token is None:
        return None
    from .admin import fetch

    return fetch(_http_url(url), "/admin/schema", token)  # type: ignore[no-any-return]


def _print(response: Response, details: Mapping[str, Any] | None = None, *,
           line: bool = False) -> None:
    import msgspec

    data = msgspec.to_builtins(response)
    if details:
        data["details"] = dict(details)
    text = msgspec.json.encode(data)
    typer.echo(text.decode() if line else msgspec.json.format(text, indent=2).decode())
    sys.stdout.flush()


def call_command(
    service: Annotated[str, typer.Argument(help="Service name.")],
    request_type: Annotated[str, typer.Argument(help="Function name (request type).")],
    arg: Annotated[list[str] | None, typer.Option(
        "--arg", "-a", help="An argument, key=value, typed by the function's schema (text "
        "for a string argument, else JSON).")] = None,
    json_args: Annotated[str | None, typer.Option(
        "--json", help="Arguments as a JSON object (--arg values override).")] = None,
    url: Annotated[str, typer.Option(help="The gateway's socket URL.")] = (
        "ws://localhost:4000/socket"),
    param: Annotated[list[str] | None, typer.Option(
        "--param", "-p", help="A connect param, key=value (the authenticator reads them).")
    ] = None,
    version: Annotated[str | None, typer.Option(help="Function version.")] = None,
    timeout: Annotated[float, typer.Option(
        help="Seconds to wait for the answer (for each chunk of a stream).")] = 10.0,
    app_target: Annotated[str | None, typer.Option(
        "--app", help="module:attribute of the Gateway (or Services): where the schema "
        "that types --arg values comes from.")] = None,
    token: Annotated[str | None, typer.Option(
        help="The gateway's admin token: read the schema from its /admin/schema.",
        envvar="GENAPI_ADMIN_TOKEN", show_envvar=False)] = None,
) -> None:
    """Call a function over the Phoenix socket and print the answer as JSON (a stream:
    one line per Response, as they arrive)."""
    from ..errors import GenApiError

    catalog = _catalog(app_target, url, token)
    function = (find_function(catalog, service, request_type, version)
                if catalog is not None else None)
    args = call_args(json_args, arg or (), function["arguments"] if function else None)
    params = parse_pairs(param or (), "--param")
    try:
        ok = asyncio.run(_call(url, params, service, request_type, args, version, timeout))
    except (GenApiError, OSError) as exc:  # could not connect, or the connection dropped
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if not ok:
        raise typer.Exit(1)


async def _call(url: str, params: Mapping[str, str], service: str, request_type: str,
                args: Mapping[str, Any], version: str | None, timeout: float) -> bool:
    """Make the call, printing as it goes; True when it ended in success."""
    from ..client import Client
    from ..errors import ApiError
    from ..messages import Response

    request_id = uuid.uuid4().hex
    streaming = False
    last = Response.sync(request_id, None)  # fire-and-forget calls answer nothing
    async with Client(url, params=params, timeout=timeout, reconnect=False) as client:
        try:
            async for response in client.responses(service, request_type, args,
                                                   version=version, request_id=request_id):
                streaming = streaming or (response.has_more and response.result == "init")
                if streaming:
                    _print(response, line=True)
                last = response
        except ApiError as exc:
            _print(Response.fail(request_id, exc.message, can_retry=exc.can_retry),
                   exc.details, line=streaming)
            return False
    if not streaming:
        _print(last)
    return True


def register(app: typer.Typer) -> None:
    """Add ``call`` to ``app``."""
    app.command("call")(call_command)
