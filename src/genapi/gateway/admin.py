"""The admin console: JSON diagnostics under ``/admin`` and the dashboard at ``/dashboard``.

Mounted only when the gateway's admin settings carry a token
(``Gateway(admin=AdminSettings(token=...))``; secure by default). Every request under
``/admin`` must carry ``Authorization: Bearer <token>`` (compared in constant time;
anything else is a bare 401) *and* the gateway's :class:`~genapi.AdminGate` must allow
``view_diagnostics`` (a bare 403 otherwise). A token without a gate allows that action;
an explicit gate is used as it is, so it must list it.

=========================  ======================================================
``GET /admin/status``      everything (:meth:`Diagnostics.snapshot`)
``GET /admin/health``      ok / degraded / error and why
``GET /admin/functions``   the config cache: services, functions, versions
``GET /admin/call-flow``   ``?service=&request_type=&version=``: the phases of a call
``GET /admin/call-flows``  every function's call flow (``?include_disabled=true``)
``GET /admin/pools``       worker pools and circuit breakers
``GET /admin/rate-limits`` limits and switches; ``?user_id=`` adds that user's usage
``GET /admin/cluster``     NATS link, pushed services and versions, nodes, failed configs
``GET /admin/failed-configs``  ``?service=&limit=``
``GET /admin/connections`` counters and open connections (``?limit=``)
``GET /admin/calls``       live call rate and latency (``?seconds=``), for the chart
``GET /admin/schema``      the function catalog (``?format=jsonschema`` or ``asyncapi``)
=========================  ======================================================

More routes under ``/admin`` (the write actions, for one) come from other modules: each
registers a provider with :func:`admin_routes`; the provider is given the console and
returns its routes (full paths, ``/admin/...``), mounted before the console's own. Their
endpoints are wrapped in :meth:`AdminConsole.guarded`, which checks the token, then the
gate (``view_diagnostics`` and the action given), answering 403 ``Admin action denied:
<action>`` when the gate does not allow it.

The dashboard page and its script hold no data: the page asks for the token and sends
it as a Bearer header on its ``fetch`` calls. Its responses carry a strict
Content-Security-Policy (scripts, styles and connections to the gateway's own origin only,
no inline code, no framing).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from pathlib import Path
from typing import Any, Final, Protocol

import msgspec
from starlette.requests import Request as HttpRequest
from starlette.responses import FileResponse
from starlette.responses import Response as HttpResponse
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.staticfiles import StaticFiles

from ..diagnostics import CallStats, Diagnostics
from ..diagnostics.view import GatewayView
from ..errors import ConfigError
from ..schema import asyncapi_document, function_catalog, json_schemas
from ..security import AdminAction, AdminGate, bearer_credentials, secrets_equal

__all__ = ["DASHBOARD_CSP", "STATIC_DIR", "AdminConsole", "ConsoleHost", "RouteProvider",
           "admin_routes"]

logger = logging.getLogger("genapi.gateway.admin")

STATIC_DIR: Final = Path(__file__).parent / "static"
#: The dashboard's Content-Security-Policy: its own origin only, nothing inline.
DASHBOARD_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_COMMON: Final = {"cache-control": "no-store", "x-content-type-options": "nosniff",
                  "referrer-policy": "no-referrer"}
_JSON_HEADERS: Final = {**_COMMON, "content-security-policy": "default-src 'none'; "
                        "frame-ancestors 'none'"}
_PAGE_HEADERS: Final = {**_COMMON, "content-security-policy": DASHBOARD_CSP,
                        "x-frame-options": "DENY"}

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Endpoint = Callable[[HttpRequest], Awaitable[HttpResponse]]


RouteProvider = Callable[["AdminConsole"], Sequence[BaseRoute]]
# Filled at import by the modules that add admin routes (gateway/app.py imports them), so
# that adding a group of routes touches neither this module nor the others' modules.
_PROVIDERS: list[RouteProvider] = []


def admin_routes(provider: RouteProvider) -> RouteProvider:
    """Register ``provider``: every admin console also serves the routes it returns.

    A decorator; registering the same provider twice adds it once.
    """
    if provider not in _PROVIDERS:
        _PROVIDERS.append(provider)
    return provider


def _json(data: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(msgspec.json.encode(data), status_code=status,
                        media_type="application/json", headers=_JSON_HEADERS)


def _bare(status: int) -> HttpResponse:
    headers = dict(_JSON_HEADERS)
    if status == 401:
        headers["www-authenticate"] = "Bearer"
    return HttpResponse(status_code=status, headers=headers)


def _flag(request: HttpRequest, name: str) -> bool:
    return request.query_params.get(name, "").lower() in ("1", "true", "yes")


def _int(request: HttpRequest, name: str, default: int, top: int) -> int:
    raw = request.query_params.get(name, "")
    return max(1, min(int(raw), top)) if raw.isdigit() else default


class _Guard:
    """Lets a request through to ``app`` only with the token and the gate's permission."""

    def __init__(self, console: AdminConsole, app: Router) -> None:
        self.console = console
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return
        status = self.console.check(scope)
        if status is not None:
            await _bare(status)(scope, receive, send)
            return
        await self.app(scope, receive, send)


class _Headers:
    """Adds fixed headers to every response of ``app`` (StaticFiles takes none)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]],
                 headers: dict[str, str]) -> None:
        self.app = app
        self.raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.raw]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class ConsoleHost(GatewayView, Protocol):
    """What the console reads of its gateway: the diagnostics' view and the admin gate."""

    @property
    def admin(self) -> AdminGate:
        """Which admin actions are allowed."""


class AdminConsole:
    """The admin endpoints and dashboard of one gateway (see the module docs).

    The gateway builds it when its admin settings carry a token; :attr:`calls` (a
    :class:`~genapi.CallStats`) is attached to the gateway's telemetry while it runs.
    """

    def __init__(self, gateway: ConsoleHost, token: str, *,
                 calls: CallStats | None = None, name: str = "admin") -> None:
        if not isinstance(token, str) or not token.strip():
            raise ConfigError("admin_token must be a non-empty string")
        if len(token) < 16:
            logger.warning("the admin token is short (%d characters); use "
                           "secrets.token_urlsafe() for one that cannot be guessed", len(token))
        self.gateway = gateway
        self._token = token  # never logged, never served
        #: Who holds the token, in the audit of admin actions.
        self.name = name
        self.calls = calls if calls is not None else CallStats(registry=gateway.registry)
        self.diagnostics = Diagnostics(gateway, calls=self.calls)

    def __repr__(self) -> str:
        return f"<AdminConsole of {self.gateway!r}>"  # no token

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Start the live call statistics (the gateway calls this when it starts)."""
        self.calls.attach(self.gateway.executor.telemetry)

    def stop(self) -> None:
        """Stop the live call statistics (the gateway calls this when it stops)."""
        self.calls.detach()

    # -- access -------------------------------------------------------------------------

    def check(self, scope: Scope) -> int | None:
        """None when the request may see diagnostics, else the status to answer (401/403)."""
        given = None
        for name, value in scope.get("headers", []):
            if name.lower() == b"authorization":
                given = bearer_credentials(value)
                break
        if not secrets_equal(self._token, given):
            client = scope.get("client")
            logger.info("admin request refused (token) from %s", client[0] if client else "?")
            return 401
        if not self.gateway.admin.allows(AdminAction.VIEW_DIAGNOSTICS):
            return 403
        return None

    def guarded(self, endpoint: Endpoint, action: AdminAction | str | None = None
                ) -> Endpoint:
        """``endpoint`` behind the console's check and, with ``action``, the gate's:
        401 without the token, 403 ``Admin action denied: <action>`` when refused."""
        required = None if action is None else AdminAction(action)

        async def run(request: HttpRequest) -> HttpResponse:
            status = self.check(request.scope)
            if status is not None:
                return _bare(status)
            if required is not None and not self.gateway.admin.allows(required):
                logger.warning("admin action refused: %s %s (the gate does not allow %s)",
                               request.method, request.url.path, required.value)
                return _json({"error": f"Admin action denied: {required.value}"}, 403)
            return await endpoint(request)

        return run

    # -- routes -------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        """``/admin/...`` behind the guard, the dashboard page and its static files."""
        endpoints: dict[str, Endpoint] = {
            "/status": self._status, "/health": self._health, "/functions": self._functions,
            "/call-flow": self._call_flow, "/call-flows": self._call_flows,
            "/pools": self._pools, "/rate-limits": self._rate_limits,
            "/cluster": self._cluster, "/failed-configs": self._failed_configs,
            "/connections": self._connections, "/calls": self._calls,
            "/schema": self._schema,
        }
        router = Router([Route(path, endpoint, methods=["GET"])
                         for path, endpoint in endpoints.items()])
        static = _Headers(StaticFiles(directory=STATIC_DIR), _PAGE_HEADERS)
        contributed = [route for provider in _PROVIDERS for route in provider(self)]
        return [
            *contributed,  # before the mount, which would answer every /admin path
            Mount("/admin", app=_Guard(self, router)),
            Route("/dashboard", self._dashboard, methods=["GET"]),
            Mount("/dashboard/static", app=static, name="genapi-dashboard-static"),
        ]

    async def _dashboard(self, request: HttpRequest) -> HttpResponse:
        return FileResponse(STATIC_DIR / "dashboard.html", media_type="text/html",
                            headers=_PAGE_HEADERS)

    async def _status(self, request: HttpRequest) -> HttpResponse:
        await self._counted()
        return _json(self.diagnostics.snapshot())

    async def _health(self, request: HttpRequest) -> HttpResponse:
        return _json(self.diagnostics.health())

    async def _functions(self, request: HttpRequest) -> HttpResponse:
        return _json(self.diagnostics.config_cache())

    async def _call_flow(self, request: HttpRequest) -> HttpResponse:
        service = request.query_params.get("service")
        request_type = request.query_params.get("request_type")
        if not service or not request_type:
            return _json({"error": "service and request_type are required"}, 400)
        flow = self.diagnostics.call_flow(service, request_type,
                                          request.query_params.get("version") or None)
        return _json(flow, 200 if flow["found"] else 404)

    async def _call_flows(self, request: HttpRequest) -> HttpResponse:
        return _json(self.diagnostics.list_call_flows(
            include_disabled=_flag(request, "include_disabled")))

    async def _pools(self, request: HttpRequest) -> HttpResponse:
        return _json(self.diagnostics.pools())

    async def _rate_limits(self, request: HttpRequest) -> HttpResponse:
        user_id = request.query_params.get("user_id")
        user = await self.diagnostics.user_rate_limits(user_id) if user_id else None
        return _json({**self.diagnostics.rate_limits(), "user": user})

    async def _cluster(self, request: HttpRequest) -> HttpResponse:
        return _json(self.diagnostics.cluster())

    async def _failed_configs(self, request: HttpRequest) -> HttpResponse:
        return _json(self.diagnostics.failed_configs(
            service=request.query_params.get("service") or None,
            limit=_int(request, "limit", 100, 10_000)))

    async def _connections(self, request: HttpRequest) -> HttpResponse:
        return _json(self.diagnostics.connections(limit=_int(request, "limit", 100, 10_000)))

    async def _counted(self) -> None:
        # Count what is queued so far, in a thread: the loop keeps serving meanwhile.
        await asyncio.to_thread(self.calls.flush, 1.0)

    async def _calls(self, request: HttpRequest) -> HttpResponse:
        await self._counted()
        seconds = _int(request, "seconds", 60, self.calls.window_s - 1)
        return _json(self.calls.summary(seconds=seconds))

    async def _schema(self, request: HttpRequest) -> HttpResponse:
        catalog = function_catalog(self.gateway)
        kind = request.query_params.get("format", "catalog")
        if kind == "jsonschema":
            return _json(json_schemas(catalog))
        if kind == "asyncapi":
            base = f"{request.url.scheme}://{request.url.netloc}"
            return _json(asyncapi_document(catalog, server_url=base))
        if kind != "catalog":
            return _json({"error": "format must be catalog, jsonschema or asyncapi"}, 400)
        return _json(catalog)
