"""The :class:`Diagnostics` views of a running gateway."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Protocol

from .._version import __version__
from ..messages import Request
from ..ratelimit import RateLimiter as LimiterImpl
from ..ratelimit.limits import GLOBAL, Scope
from ..schema.catalog import function_catalog
from ..schema.plain import plain
from .flow import call_flow, list_call_flows
from .process import ProcessHealth
from .redact import redact
from .view import GatewayView

__all__ = ["CallSummary", "Diagnostics"]


class CallSummary(Protocol):
    """What reports call counts and latencies (:class:`~genapi.CallStats`)."""

    def summary(self) -> dict[str, Any]:
        """Totals, per-function counts and recent latency percentiles."""


class Diagnostics:
    """Read-only, JSON-ready views of a :class:`~genapi.Gateway`.

    ::

        diag = Diagnostics(gateway)
        diag.call_flow("user_service", "get_user")["steps"]   # channel … response
        diag.snapshot()                                       # what GET /admin/status serves

    Nothing secret is reported: no admin or push token, no authenticator, no hook or
    function arguments (only their count); refused node configs have secret-looking keys
    masked. ``calls`` (a :class:`~genapi.CallStats`) adds live call figures.
    """

    def __init__(self, gateway: GatewayView, *, calls: CallSummary | None = None) -> None:
        self.gateway = gateway
        self.calls = calls

    # -- functions ----------------------------------------------------------------------

    def config_cache(self) -> dict[str, Any]:
        """Every registered function (disabled ones too): count, services, and per version
        its main traits (``default``: what a request without a version gets)."""
        catalog = function_catalog(self.gateway, include_disabled=True)
        registry = self.gateway.registry
        functions = []
        for function in catalog["functions"]:
            route = registry.get_route(function["service"], function["request_type"],
                                       function["version"])
            local = route is not None and route.is_local
            timeout = route.config.timeout if route is not None else None
            functions.append({**{k: v for k, v in function.items() if k != "arguments"},
                              "local": local, "timeout_ms": timeout,
                              "arguments": [a["name"] for a in function["arguments"]]})
        return {"count": len(functions), "services": registry.services(),
                "functions": functions}

    def call_flow(self, service: str, request_type: str,
                  version: str | None = None) -> dict[str, Any]:
        """The phases a call takes (see :mod:`genapi.diagnostics.flow`)."""
        return call_flow(self.gateway, service, request_type, version)

    def list_call_flows(self, *, include_disabled: bool = False) -> list[dict[str, Any]]:
        """A call flow for every registered version (disabled ones as stubs, if asked)."""
        return list_call_flows(self.gateway, include_disabled=include_disabled)

    def inspect_request(self, request: Request | Mapping[str, Any]) -> dict[str, Any]:
        """:meth:`call_flow` of a request, with the request's identifying fields."""
        get = (request.get if isinstance(request, Mapping)
               else lambda name: getattr(request, name, None))
        fields = {name: get(name) for name in ("service", "request_type", "version",
                                                "request_id", "user_id", "device_id")}
        flow = self.call_flow(str(fields["service"]), str(fields["request_type"]),
                              fields["version"])
        return {**flow, "request": plain(fields)}

    # -- policies -----------------------------------------------------------------------

    def pools(self) -> dict[str, Any]:
        """Worker pools (occupancy, counters, breaker) and the per-node circuit breakers."""
        status: dict[str, Any] = plain(self.gateway.executor.pool_status())
        return status

    def rate_limits(self) -> dict[str, Any]:
        """The limiter's switches and limits (``configured`` is False without a limiter)."""
        limiter = self.gateway.executor.rate_limiter
        if limiter is None:
            return {"configured": False, "enabled": False, "config": None, "global": []}
        if not isinstance(limiter, LimiterImpl):
            return {"configured": True, "enabled": True, "custom": type(limiter).__name__,
                    "config": None, "global": []}
        config = limiter.config.to_dict()
        return {"configured": True, "enabled": limiter.enabled, "config": config,
                "global": config["global_limits"]}

    async def rate_limit_status(self, value: str, *, scope: Scope = GLOBAL,
                                key: str | None = None) -> list[dict[str, Any]]:
        """How much of each limit of ``scope`` ``value`` has used ([] without a limiter)."""
        limiter = self.gateway.executor.rate_limiter
        if not isinstance(limiter, LimiterImpl):
            return []
        return [plain(s) for s in await limiter.status(value, scope=scope, key=key)]

    async def user_rate_limits(self, user_id: str) -> dict[str, Any]:
        """A user's usage of every ``user_id`` limit: the global ones and each function's."""
        limiter = self.gateway.executor.rate_limiter
        out: dict[str, Any] = {"user_id": user_id, "global": [], "api": []}
        if not isinstance(limiter, LimiterImpl):
            return out
        out["global"] = await self.rate_limit_status(user_id, key="user_id")
        scopes = {limit.scope for limit in limiter.config.api_limits
                  if limit.key_name == "user_id"}
        for scope in sorted(scopes, key=str):
            out["api"].extend(await self.rate_limit_status(user_id, scope=scope,
                                                           key="user_id"))
        return out

    # -- cluster ------------------------------------------------------------------------

    def failed_configs(self, *, service: str | None = None, limit: int = 100) -> dict[str, Any]:
        """Refused configs (newest first, secrets masked) and totals; empty without a cluster."""
        cluster = self.gateway.cluster
        if cluster is None:
            return {"summary": {"total": 0, "push": 0, "pull": 0, "by_service": {}},
                    "entries": []}
        failed = cluster.sync.failed
        entries = []
        for entry in failed.list(service=service, limit=limit):
            item = plain(entry)
            item["config"] = redact(entry.config)
            entries.append(item)
        return {"summary": plain(failed.summary()), "entries": entries}

    def cluster(self) -> dict[str, Any]:
        """Connection, pushed services and versions, nodes and their health, failed configs."""
        cluster = self.gateway.cluster
        if cluster is None:
            return {"enabled": False, "name": None, "connected": False, "reconnects": 0,
                    "services": [], "nodes": {}, "health": {"nodes": 0, "alive": 0},
                    "failed_configs": self.failed_configs(limit=20)}
        status = cluster.status()
        nodes = plain(status["nodes"])
        pulled = cluster.sync.pull_configs
        services = [{"service": s, "version": v, "auto_pull": s in pulled}
                    for s, v in sorted(status["versions"].items())]
        return {"enabled": True, "name": status["name"], "connected": status["connected"],
                "reconnects": status["reconnects"], "services": services, "nodes": nodes,
                "health": {"nodes": len(nodes),
                           "alive": sum(1 for n in nodes.values() if n["alive"])},
                "failed_configs": self.failed_configs(limit=20)}

    # -- connections and health ---------------------------------------------------------

    def connections(self, *, limit: int = 100) -> dict[str, Any]:
        """The gateway's connection counters and up to ``limit`` open connections (the
        most recently active first): user, address, topics, calls in flight, queue."""
        now = time.monotonic()
        open_ = sorted(self.gateway.connections, key=lambda c: -c.last_activity)
        listed = [{"user_id": c.user_id, "ip_address": c.ip_address,
                   "topics": sorted(c.topics)[:20], "inflight": c.inflight,
                   "queued": c.queued, "queued_bytes": c.queued_bytes,
                   "idle_s": round(max(0.0, now - c.last_activity), 1)}
                  for c in open_[:limit]]
        return {**self.gateway.stats.as_dict(), "draining": self.gateway.draining,
                "open": listed}

    def health(self) -> dict[str, Any]:
        """``ok`` / ``degraded`` / ``error`` and the reasons (pools, breakers, nodes, the
        process's thresholds), with the process's figures under ``process``."""
        return self._health(self.pools(), self.cluster())

    def process(self) -> dict[str, Any] | None:
        """The process's figures (:mod:`genapi.diagnostics.process`): memory, CPU, loop
        lag, file descriptors, tasks, GC; None when the gateway has no probe."""
        probe = self._probe()
        return probe.snapshot() if probe is not None else None

    def _probe(self) -> ProcessHealth | None:
        # Read by name: GatewayView stays the small protocol other hosts implement.
        probe = getattr(self.gateway, "process_health", None)
        return probe if isinstance(probe, ProcessHealth) else None

    def _health(self, pools: dict[str, Any], cluster: dict[str, Any]) -> dict[str, Any]:
        problems: list[tuple[str, str]] = []
        probe = self._probe()
        process = probe.snapshot() if probe is not None else None
        if probe is not None and process is not None:
            problems.extend(probe.problems(process))
        for name, pool in pools["pools"].items():
            if pool["state"] != "open":
                problems.append(("error", f"{name} pool is {pool['state']}"))
            elif pool["breaker"] != "closed":
                problems.append(("degraded", f"{name} pool breaker is {pool['breaker']}"))
        for name, breaker in pools["nodes"].items():
            if breaker["state"] != "closed":
                problems.append(("degraded", f"node {name} breaker is {breaker['state']}"))
        if cluster["enabled"]:
            if not cluster["connected"]:
                problems.append(("degraded", "not connected to NATS"))
            for name, node in cluster["nodes"].items():
                if not node["alive"]:
                    problems.append(("degraded", f"node {name} is not alive"))
        if self.gateway.draining:
            problems.append(("degraded", "draining"))
        worst = "error" if any(p[0] == "error" for p in problems) else (
            "degraded" if problems else "ok")
        return {"status": worst, "problems": [p[1] for p in problems], "process": process}

    def snapshot(self) -> dict[str, Any]:
        """Everything above in one JSON-ready dict (what ``GET /admin/status`` serves)."""
        pools = self.pools()
        cluster = self.cluster()
        return {
            "generated_at_ms": int(time.time() * 1000),
            "genapi_version": __version__,
            "health": self._health(pools, cluster),
            "config_cache": self.config_cache(),
            "pools": pools,
            "rate_limits": self.rate_limits(),
            "cluster": cluster,
            "connections": self.connections(),
            "calls": self.calls.summary() if self.calls is not None else None,
        }
