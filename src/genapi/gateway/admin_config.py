"""Admin routes for config distribution and the debug report (mounted with the console).

==========================================  ===============  ==============================
route                                       admin action     what
==========================================  ===============  ==============================
``GET /admin/config/pull``                  view_diagnostics  pull sources, versions, backoff
``POST /admin/config/pull``                 push_config      add (or replace) a source:
                                                             ``{"service", "nodes"}``;
                                                             pulls it now
``DELETE /admin/config/pull/{service}``     push_config      stop pulling it
``POST /admin/config/pull/force``           push_config      pull now, ignoring versions:
                                                             ``{"service"}`` or every source
``GET /admin/config/pushed``                view_diagnostics  ``{service: config_version}``
``GET /admin/config/pushed/{service}``      view_diagnostics  the pushed config
``DELETE /admin/config/pushed/{service}``   push_config      forget it (the same version
                                                             pushed again applies);
                                                             ``?functions=true`` also
                                                             removes its functions
                                                             (+ manage_functions)
``GET /admin/report``                       view_diagnostics  the debug report, secrets
                                                             removed
==========================================  ===============  ==============================

Every route needs the admin token; a refused action answers 403 ``Admin action denied:
<action>``. The config routes answer 409 on a gateway outside a cluster and 404 for an
unknown service. Every change is audited: a log line on ``genapi.audit`` (who: the
client's address; what; before and after) and the telemetry event
``admin.config.changed``. The Python forms are the methods of ``gateway.cluster.sync``
(:class:`~genapi.cluster.sync.ConfigSync`) and :func:`gateway_report`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request as HttpRequest
from starlette.responses import Response as HttpResponse
from starlette.routing import BaseRoute, Route

from ..diagnostics.bundle import debug_report
from ..diagnostics.errorlog import recent_errors
from ..diagnostics.report import Diagnostics
from ..errors import AdminActionDenied, ConfigSourceNotFound
from ..functions.config import FunConfig, PushConfig, ServiceConfig
from ..schema.plain import plain
from ..security import AdminAction
from ..telemetry.events import register_event
from .admin import AdminConsole, admin_routes

if TYPE_CHECKING:
    from ..cluster.sync import ConfigSync

# The gateway is typed loosely here: importing .app would make a circle (app imports this
# module to register its routes).
Gateway = Any

__all__ = ["config_summary", "gateway_report", "known_secrets"]

audit_logger = logging.getLogger("genapi.audit")

ADMIN_CONFIG_CHANGED = register_event(
    "admin.config.changed", (), ("action", "service", "who", "before", "after"),
    "An operator changed config distribution (pull sources, pushed services).")

_HEADERS = {"cache-control": "no-store", "x-content-type-options": "nosniff",
            "content-security-policy": "default-src 'none'; frame-ancestors 'none'"}


def _json(data: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(msgspec.json.encode(data), status_code=status,
                        media_type="application/json", headers=_HEADERS)


def _denied(exc: AdminActionDenied) -> HttpResponse:
    return _json({"error": exc.message}, 403)


# -- what a gateway is configured with, and its secrets --------------------------------

def config_summary(gateway: Gateway) -> dict[str, Any]:
    """The gateway's settings as plain data (secrets are scrubbed by the report)."""
    s = gateway.settings
    cluster = gateway.cluster
    durable = gateway.durable
    limiter = gateway.executor.rate_limiter
    return {
        "gateway": {"socket_path": s.socket_path, "api_prefix": s.api_prefix,
                    "topics": list(s.topics), "event": s.event,
                    "allow_anonymous": gateway.allow_anonymous,
                    "trusted_proxies": sorted(s.trusted_proxies),
                    "detail_error": gateway.executor.detail_error,
                    "admission": plain(s.admission), "longpoll": plain(s.longpoll),
                    "health": plain(s.health)},
        "limits": plain(s.limits),
        "authenticator": type(gateway.authenticator).__name__
        if gateway.authenticator is not None else None,
        "admin": {"console": gateway.admin_console is not None,
                  "allowed_actions": sorted(a.value for a in gateway.admin.allowed_actions)},
        "metrics": gateway.metrics is not None,
        "tracing": gateway.tracer is not None,
        "rate_limiter": type(limiter).__name__ if limiter is not None else None,
        "cluster": None if cluster is None else {
            **{k: v for k, v in plain(cluster.options).items() if k != "pull"},
            "name": cluster.name,
            "pull": [_source(sc) for sc in cluster.sync.pull_configs.values()]},
        "durable": plain(durable.settings) if durable is not None else None,
    }


def known_secrets(gateway: Gateway) -> list[str]:
    """Every secret value the gateway holds (to remove them wherever they appear)."""
    found: list[Any] = []
    console = gateway.admin_console
    if console is not None:
        found.append(console._token)
    if gateway.cluster is not None:
        found += [gateway.cluster.options.push_token, gateway.cluster.sync.push_token]
    found += [getattr(part, "_token", None) for part in gateway._parts]
    authenticator = gateway.authenticator
    for name, value in getattr(authenticator, "__dict__", {}).items():
        if any(word in name.lower() for word in ("key", "secret", "token", "password")):
            found.append(value.decode(errors="replace") if isinstance(value, bytes) else value)
    if gateway.durable is not None:
        found.append(gateway.durable.settings.webhook.secret)
    return [s for s in found if isinstance(s, str) and s]


def gateway_report(gateway: Gateway) -> dict[str, Any]:
    """The debug report of ``gateway`` (:func:`~genapi.diagnostics.bundle.debug_report`):
    config summary, registry, limits, health, cluster, pools, connections, recent
    errors, versions; secrets removed."""
    console = gateway.admin_console
    diagnostics = console.diagnostics if console is not None else Diagnostics(gateway)
    return debug_report(diagnostics, config=config_summary(gateway),
                        secrets=known_secrets(gateway), errors=recent_errors())


def _source(source: ServiceConfig) -> dict[str, Any]:
    nodes = source.nodes
    return {"service": source.service,
            "nodes": "<callable>" if callable(nodes) else list(nodes)}


def _function(config: FunConfig) -> dict[str, Any]:
    return {"request_type": config.request_type, "version": config.version,
            "response_type": plain(config.response_type), "disabled": config.disabled,
            "timeout_ms": config.timeout, "local": config.is_local}


def _pushed(push: PushConfig) -> dict[str, Any]:
    return {"service": push.service, "nodes": list(push.nodes),
            "config_version": push.config_version, "pull": push.pull,
            "functions": [_function(f) for f in push.fun_configs]}


# -- the routes ---------------------------------------------------------------------------

Handler = Callable[[HttpRequest, "ConfigSync"], Awaitable[HttpResponse]]


class _ConfigRoutes:
    def __init__(self, console: AdminConsole) -> None:
        self.console = console

    @property
    def gateway(self) -> Gateway:
        return self.console.gateway

    def routes(self) -> list[BaseRoute]:
        guarded = self.console.guarded
        change = AdminAction.PUSH_CONFIG
        return [
            Route("/admin/config/pull", guarded(self._in_cluster(self._list_pull)),
                  methods=["GET"]),
            Route("/admin/config/pull", guarded(self._in_cluster(self._add_pull), change),
                  methods=["POST"]),
            Route("/admin/config/pull/force",
                  guarded(self._in_cluster(self._force_pull), change), methods=["POST"]),
            Route("/admin/config/pull/{service}",
                  guarded(self._in_cluster(self._remove_pull), change), methods=["DELETE"]),
            Route("/admin/config/pushed", guarded(self._in_cluster(self._list_pushed)),
                  methods=["GET"]),
            Route("/admin/config/pushed/{service}",
                  guarded(self._in_cluster(self._show_pushed)), methods=["GET"]),
            Route("/admin/config/pushed/{service}",
                  guarded(self._in_cluster(self._delete_pushed), change),
                  methods=["DELETE"]),
            Route("/admin/report", guarded(self._report), methods=["GET"]),
        ]

    def _in_cluster(self, handler: Handler) -> Callable[[HttpRequest],
                                                        Awaitable[HttpResponse]]:
        async def run(request: HttpRequest) -> HttpResponse:
            cluster = self.gateway.cluster
            if cluster is None:
                return _json({"error": "this gateway is not in a cluster"}, 409)
            try:
                return await handler(request, cluster.sync)
            except AdminActionDenied as exc:
                return _denied(exc)
            except ConfigSourceNotFound as exc:
                return _json({"error": str(exc)}, 404)

        return run

    def _audit(self, request: HttpRequest, action: str, service: str | None,
               before: Any, after: Any) -> None:
        who = request.client.host if request.client else "?"
        audit_logger.info("admin %s by %s: service=%s before=%s after=%s", action, who,
                          service, before, after)
        self.gateway.executor.telemetry.emit(
            ADMIN_CONFIG_CHANGED, {}, {"action": action, "service": service, "who": who,
                                       "before": before, "after": after})

    async def _body(self, request: HttpRequest) -> dict[str, Any]:
        raw = await request.body()
        if not raw:
            return {}
        data = msgspec.json.decode(raw)
        if not isinstance(data, dict):
            raise ValueError("the body must be a JSON object")
        return data

    async def _list_pull(self, request: HttpRequest, sync: ConfigSync) -> HttpResponse:
        return _json({"sources": [{**_source(sc), "version": sync.versions.get(s)}
                                  for s, sc in sorted(sync.pull_configs.items())],
                      "pull_interval_s": sync.pull_interval,
                      "failed_rounds": sync._pull_failures,
                      "next_delay_s": sync.pull_delay()})

    async def _add_pull(self, request: HttpRequest, sync: ConfigSync) -> HttpResponse:
        try:
            body = await self._body(request)
            service, nodes = body.get("service"), body.get("nodes")
            if not isinstance(service, str) or not service:
                raise ValueError("service must be a non-empty string")
            if (not isinstance(nodes, list) or not nodes
                    or not all(isinstance(n, str) and n for n in nodes)):
                raise ValueError("nodes must be a non-empty list of node names")
        except (ValueError, msgspec.DecodeError) as exc:
            return _json({"error": str(exc)}, 400)
        before = sync.pull_configs.get(service)
        sync.add_pull(ServiceConfig(service=service, nodes=tuple(nodes)))
        after = {"service": service, "nodes": nodes}
        self._audit(request, "pull.add", service,
                    _source(before) if before is not None else None, after)
        return _json({**after, "replaced": before is not None})

    async def _remove_pull(self, request: HttpRequest, sync: ConfigSync) -> HttpResponse:
        service = request.path_params["service"]
        removed = sync.remove_pull(service)
        self._audit(request, "pull.remove", service, _source(removed), None)
        return _json({"service": service, "removed": True})

    async def _force_pull(self, request: HttpRequest, sync: ConfigSync) -> HttpResponse:
        try:
            service = (await self._body(request)).get("service")
        except (ValueError, msgspec.DecodeError) as exc:
            return _json({"error": str(exc)}, 400)
        if service is not None and not isinstance(service, str):
            return _json({"error": "service must be a string"}, 400)
        before = {s: sync.versions.get(s) for s in sync.pull_configs}
        results = await sync.force_pull(service)
        self._audit(request, "pull.force", service, before,
                    {s: sync.versions.get(s) for s in results})
        return _json({"results": results})

    async def _list_pushed(self, request: HttpRequest, sync: ConfigSync) -> HttpResponse:
        return _json({"services": sync.get_all_pushed_services()})

    async def _show_pushed(self, request: HttpRequest, sync: ConfigSync) -> HttpResponse:
        service = request.path_params["service"]
        push = sync.get_pushed_config(service)
        if push is None:
            raise ConfigSourceNotFound(f"no pushed config for service {service!r}")
        return _json(_pushed(push))

    async def _delete_pushed(self, request: HttpRequest, sync: ConfigSync) -> HttpResponse:
        service = request.path_params["service"]
        functions = request.query_params.get("functions", "").lower() in ("1", "true", "yes")
        before = sync.get_pushed_config(service)
        removed = sync.delete_pushed_service(service, remove_functions=functions)
        self._audit(request, "pushed.delete", service,
                    before.config_version if before is not None else None,
                    {"functions_removed": removed})
        return _json({"service": service, "deleted": True, "functions_removed": removed})

    async def _report(self, request: HttpRequest) -> HttpResponse:
        return _json(gateway_report(self.gateway))


@admin_routes
def _provide(console: AdminConsole) -> Sequence[BaseRoute]:
    return _ConfigRoutes(console).routes()
