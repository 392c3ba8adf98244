"""The admin write actions over HTTP: :mod:`genapi.gateway.ops` behind the admin console.

Each route runs one action of ``gateway.ops`` as the console's token holder (the admin
settings' ``name``). Reaching them needs what every admin route needs (the Bearer token,
``view_diagnostics``); the action then needs its own permission from the gate, else 403
``{"error": "Admin action denied: <action>"}``. Arguments come as a JSON body (or the
query string); every answer is the :class:`~genapi.gateway.ops.Change` as JSON.

==========================================================  ==========================
``POST /admin/functions/{service}/{request_type}/disable``  ``?version=``
``POST /admin/functions/{service}/{request_type}/enable``   ``?version=``
``DELETE /admin/functions/{service}/{request_type}``        ``?version=``
``PUT /admin/rate-limits``                                  ``{key, max_requests,
                                                            window_ms[, service,
                                                            request_type]}``
``DELETE /admin/rate-limits``                               ``?key=[&service=
                                                            &request_type=&window_ms=]``
``POST /admin/rate-limits/reset``                           ``{value[, key, service,
                                                            request_type]}``
``POST /admin/rate-limits/check``                           the same; counts one request
``POST /admin/rate-limits/clear``                           every key value's usage
==========================================================  ==========================

400 for wrong arguments, 404 for an unknown function (naming what exists), 503 when the
rate-limit backend is away.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from starlette.requests import Request as HttpRequest
from starlette.responses import Response as HttpResponse
from starlette.routing import BaseRoute, Route

from ..errors import (
    AdminActionDenied,
    ConfigError,
    FunctionNotFound,
    RateLimiterUnavailable,
)
from .admin import AdminConsole, admin_routes
from .ops import Operations

__all__ = ["write_routes"]

_HEADERS = {"cache-control": "no-store", "x-content-type-options": "nosniff",
            "content-security-policy": "default-src 'none'; frame-ancestors 'none'"}
_INTS = ("max_requests", "window_ms")


def _json(data: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(msgspec.json.encode(data), status_code=status,
                        media_type="application/json", headers=_HEADERS)


async def _arguments(request: HttpRequest) -> dict[str, Any]:
    """The JSON body's fields over the query string's (numbers given as text converted)."""
    args: dict[str, Any] = dict(request.query_params)
    body = await request.body()
    if body.strip():
        decoded = msgspec.json.decode(body)
        if not isinstance(decoded, dict):
            raise ConfigError("the body must be a JSON object")
        args.update(decoded)
    for name in _INTS:
        value = args.get(name)
        if isinstance(value, str):
            if not value.isdigit():
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
            args[name] = int(value)
    return {k: v for k, v in args.items() if v not in ("", None)}


Action = Callable[[HttpRequest, dict[str, Any]], Awaitable[Any]]


@admin_routes
def write_routes(console: AdminConsole) -> list[BaseRoute]:
    """The write routes of ``console``'s gateway (module docs)."""
    ops: Operations | None = getattr(console.gateway, "ops", None)
    if ops is None:  # a console over something else than a Gateway (tests)
        return []
    operations = ops

    def action(name: str, *, path_args: bool = False) -> Callable[[HttpRequest],
                                                                    Awaitable[HttpResponse]]:
        async def run(request: HttpRequest) -> HttpResponse:
            try:
                args = await _arguments(request)
                if path_args:
                    args.update(request.path_params)
                change = await operations.run(name, args, who=console.name)
            except AdminActionDenied as exc:
                return _json({"error": str(exc)}, 403)
            except FunctionNotFound as exc:
                return _json({"error": str(exc)}, 404)
            except (ConfigError, msgspec.DecodeError) as exc:
                return _json({"error": str(exc)}, 400)
            except RateLimiterUnavailable as exc:
                return _json({"error": str(exc)}, 503)
            return _json(change.to_dict())

        return console.guarded(run)

    functions = "/admin/functions/{service}/{request_type}"
    return [
        Route(functions + "/disable", action("disable_function", path_args=True),
              methods=["POST"]),
        Route(functions + "/enable", action("enable_function", path_args=True),
              methods=["POST"]),
        Route(functions, action("delete_function", path_args=True), methods=["DELETE"]),
        Route("/admin/rate-limits", action("set_rate_limit"), methods=["PUT"]),
        Route("/admin/rate-limits", action("clear_rate_limit"), methods=["DELETE"]),
        Route("/admin/rate-limits/reset", action("reset_rate_limit"), methods=["POST"]),
        Route("/admin/rate-limits/check", action("check_rate_limit"), methods=["POST"]),
        Route("/admin/rate-limits/clear", action("clear_rate_limit_counts"),
              methods=["POST"]),
    ]
