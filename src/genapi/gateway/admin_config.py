"""Config distribution as admin actions, their routes, and the debug report.

The changes are admin actions of ``gateway.ops`` (registered here with
:func:`~genapi.gateway.ops.admin_action`): gated, audited (the ``admin.action`` event and
a ``genapi.admin.audit`` line: who, what, before, after) and applied on every gateway of
the cluster, like the function and rate-limit actions::

    await gateway.ops.run("add_pull_source", {"service": "data_service", "nodes": ["n1"]})

==========================================  ==========================  ===================
route                                       action (needs)              what
==========================================  ==========================  ===================
``GET /admin/config/pull``                  (view_diagnostics)          pull sources,
                                                                        versions, backoff
``POST /admin/config/pull``                 ``add_pull_source``         add or replace a
                                            (push_config)               source ``{"service",
                                                                        "nodes"}``, pull now
``DELETE /admin/config/pull/{service}``     ``remove_pull_source``      stop pulling it
                                            (push_config)
``POST /admin/config/pull/force``           ``force_pull``              pull now, ignoring
                                            (push_config)               versions
                                                                        (``{"service"}`` or
                                                                        every source)
``GET /admin/config/pushed``                (view_diagnostics)          ``{service:
                                                                        config_version}``
``GET /admin/config/pushed/{service}``      (view_diagnostics)          the pushed config
``DELETE /admin/config/pushed/{service}``   ``delete_pushed_service``   forget it (the same
                                            (push_config; with          version pushed again
                                            ``?functions=true`` also    applies)
                                            manage_functions)
``GET /admin/config/verify/{service}``      (view_diagnostics)          ask its nodes (or
                                                                        ``?node=``) which
                                                                        version they serve:
                                                                        matched, mismatch,
                                                                        not_found,
                                                                        unreachable
``GET /admin/report``                       (view_diagnostics)          the debug report,
                                                                        secrets removed
==========================================  ==========================  ===================

Every route needs the admin token; a refused action answers 403 ``Admin action denied:
<action>``. The config routes answer 409 on a gateway outside a cluster, 404 for an
unknown service, 400 for wrong arguments; a change answers the
:class:`~genapi.gateway.ops.AdminChange` as JSON. Per gateway and without the audit, the
same changes are the methods of ``gateway.cluster.sync``
(:class:`~genapi.cluster.sync.ConfigSync`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request as HttpRequest
from starlette.responses import Response as HttpResponse
from starlette.routing import BaseRoute, Route

from ..diagnostics.bundle import debug_report
from ..diagnostics.errorlog import recent_errors
from ..diagnostics.report import Diagnostics
from ..errors import AdminActionDenied, ConfigError, ConfigSourceNotFound, UsageError
from ..functions.config import FunConfig, PushConfig, ServiceConfig
from ..schema.plain import plain
from ..security import AdminAction
from .admin import AdminConsole, admin_routes
from .ops import Operations, admin_action

if TYPE_CHECKING:
    from ..cluster.sync import ConfigSync

# The gateway is typed loosely here: importing .app would make a circle (app imports this
# module to register its routes).
Gateway = Any

__all__ = ["config_summary", "gateway_report", "known_secrets"]

_HEADERS = {"cache-control": "no-store", "x-content-type-options": "nosniff",
            "content-security-policy": "default-src 'none'; frame-ancestors 'none'"}


def _json(data: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(msgspec.json.encode(data), status_code=status,
                        media_type="application/json", headers=_HEADERS)


def _denied(exc: AdminActionDenied) -> HttpResponse:
    return _json({"error": str(exc)}, 403)


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


# -- the actions (run by gateway.ops on every gateway) --------------------------------------

def _sync(ops: Operations) -> ConfigSync:
    if ops.cluster is None:
        raise UsageError("this gateway is not in a cluster")
    return ops.cluster.sync


def _service(args: dict[str, Any], *, required: bool = True) -> str | None:
    service = args.get("service")
    if service is None and not required:
        return None
    if not isinstance(service, str) or not service:
        raise ConfigError("service must be a non-empty string")
    return service


@admin_action(AdminAction.PUSH_CONFIG, name="add_pull_source")
async def _add_pull_source(ops: Operations, args: dict[str, Any]
                           ) -> tuple[dict[str, Any], Any, Any]:
    sync, service = _sync(ops), _service(args)
    assert service is not None
    nodes = args.get("nodes")
    if (not isinstance(nodes, list) or not nodes
            or not all(isinstance(n, str) and n for n in nodes)):
        raise ConfigError("nodes must be a non-empty list of node names")
    before = sync.pull_configs.get(service)
    sync.add_pull(ServiceConfig(service=service, nodes=tuple(nodes)))
    return ({"service": service}, None if before is None else _source(before)["nodes"],
            list(nodes))


@admin_action(AdminAction.PUSH_CONFIG, name="remove_pull_source")
async def _remove_pull_source(ops: Operations, args: dict[str, Any]
                              ) -> tuple[dict[str, Any], Any, Any]:
    sync, service = _sync(ops), _service(args)
    assert service is not None
    removed = sync.remove_pull(service)
    return {"service": service}, _source(removed)["nodes"], None


@admin_action(AdminAction.PUSH_CONFIG, name="force_pull")
async def _force_pull(ops: Operations, args: dict[str, Any]
                      ) -> tuple[dict[str, Any], Any, Any]:
    sync, service = _sync(ops), _service(args, required=False)
    before = {s: sync.versions.get(s) for s in sync.pull_configs if service in (None, s)}
    results = await sync.force_pull(service)
    after = {"results": results, "versions": {s: sync.versions.get(s) for s in results}}
    return {"service": service}, before, after


@admin_action(AdminAction.PUSH_CONFIG, name="delete_pushed_service")
async def _delete_pushed_service(ops: Operations, args: dict[str, Any]
                                 ) -> tuple[dict[str, Any], Any, Any]:
    sync, service = _sync(ops), _service(args)
    assert service is not None
    functions = args.get("functions") in (True, "true", "1", "yes")
    pushed = sync.get_pushed_config(service)
    removed = sync.delete_pushed_service(service, remove_functions=functions)
    before = None if pushed is None else {"config_version": pushed.config_version,
                                          "nodes": list(pushed.nodes)}
    return ({"service": service, "functions": functions}, before,
            {"functions_removed": removed})


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
        return [
            Route("/admin/config/pull", guarded(self._in_cluster(self._list_pull)),
                  methods=["GET"]),
            Route("/admin/config/pull", guarded(self._change("add_pull_source")),
                  methods=["POST"]),
            Route("/admin/config/pull/force", guarded(self._change("force_pull")),
                  methods=["POST"]),
            Route("/admin/config/pull/{service}", guarded(self._change("remove_pull_source")),
                  methods=["DELETE"]),
            Route("/admin/config/pushed", guarded(self._in_cluster(self._list_pushed)),
                  methods=["GET"]),
            Route("/admin/config/pushed/{service}",
                  guarded(self._in_cluster(self._show_pushed)), methods=["GET"]),
            Route("/admin/config/pushed/{service}",
                  guarded(self._change("delete_pushed_service")), methods=["DELETE"]),
            Route("/admin/config/verify/{service}",
                  guarded(self._in_cluster(self._verify)), methods=["GET"]),
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
            except ConfigSourceNotFound as exc:
                return _json({"error": str(exc)}, 404)

        return run

    def _change(self, action: str) -> Callable[[HttpRequest], Awaitable[HttpResponse]]:
        async def run(request: HttpRequest, sync: ConfigSync) -> HttpResponse:
            try:
                args = {**dict(request.query_params), **await _body(request),
                        **request.path_params}
                change = await self.gateway.ops.run(action, args, who=self.console.name)
            except AdminActionDenied as exc:
                return _denied(exc)
            except ConfigSourceNotFound as exc:
                return _json({"error": str(exc)}, 404)
            except (ConfigError, msgspec.DecodeError) as exc:
                return _json({"error": str(exc)}, 400)
            return _json(change.to_dict())

        return self._in_cluster(run)

    async def _list_pull(self, request: HttpRequest, sync: ConfigSync) -> HttpResponse:
        return _json({"sources": [{**_source(sc), "version": sync.versions.get(s)}
                                  for s, sc in sorted(sync.pull_configs.items())],
                      "pull_interval_s": sync.pull_interval,
                      "failed_rounds": sync._pull_failures,
                      "next_delay_s": sync.pull_delay()})

    async def _list_pushed(self, request: HttpRequest, sync: ConfigSync) -> HttpResponse:
        return _json({"services": sync.get_all_pushed_services()})

    async def _show_pushed(self, request: HttpRequest, sync: ConfigSync) -> HttpResponse:
        service = request.path_params["service"]
        push = sync.get_pushed_config(service)
        if push is None:
            raise ConfigSourceNotFound(f"no pushed config for service {service!r}")
        return _json(_pushed(push))

    async def _verify(self, request: HttpRequest, sync: ConfigSync) -> HttpResponse:
        service = request.path_params["service"]
        node = request.query_params.get("node")
        nodes = [node] if node else sync.directory.nodes_for(service)
        if not nodes:
            raise ConfigSourceNotFound(f"no node is known to serve {service!r}")
        results = await asyncio.gather(*(sync.verify_node(service, n) for n in nodes))
        return _json({"service": service, "nodes": list(results)})

    async def _report(self, request: HttpRequest) -> HttpResponse:
        return _json(gateway_report(self.gateway))


async def _body(request: HttpRequest) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    data = msgspec.json.decode(raw)
    if not isinstance(data, dict):
        raise ConfigError("the body must be a JSON object")
    return data


@admin_routes
def _provide(console: AdminConsole) -> Sequence[BaseRoute]:
    return _ConfigRoutes(console).routes()
