"""A gateway for the admin-action tests: a small versioned service, a rate limit, and
an admin token. ``python -m genapi serve tests.support.ops_app:gateway --nats URL`` runs it
as a process; the environment gives the token (``OPS_TOKEN``), the admin actions the
gate allows (``OPS_ACTIONS``, comma separated; default: all of them) and a Redis for the
rate-limit counts (``OPS_REDIS``, ``OPS_REDIS_PREFIX``; default: in memory)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from genapi import AdminGate, AdminSettings, Gateway, Service
from genapi.gateway.ops import AdminChange, Operations
from genapi.ratelimit import RateLimit, RateLimitConfig, RateLimiter, RedisStore
from genapi.security import AdminAction

TOKEN = "ops-test-token-0123456789"
ALL = frozenset({AdminAction.VIEW_DIAGNOSTICS, AdminAction.MANAGE_FUNCTIONS,
                 AdminAction.UPDATE_RATE_LIMIT_CONFIG, AdminAction.PUSH_CONFIG})


def shop_service() -> Service:
    """``shop.price`` in versions 1.0.0 and 2.0.0, ``shop.stock`` unversioned."""
    shop = Service("shop")

    @shop.function("price", version="1.0.0")
    async def price_v1(item: str) -> int:
        return 1

    @shop.function("price", version="2.0.0")
    async def price_v2(item: str) -> int:
        return 2

    @shop.function()
    async def stock(item: str) -> int:
        return 10

    return shop


def build(*, token: str = TOKEN, actions: frozenset[str] = ALL, name: str = "ops",
          **options: Any) -> Gateway:
    """The gateway: ``user_id`` 5 a minute globally, the given admin actions allowed
    (``options`` go to :class:`Gateway`)."""
    redis = os.environ.get("OPS_REDIS")  # counts shared by the gateways of a test
    store = (RedisStore(redis, prefix=os.environ.get("OPS_REDIS_PREFIX", "ops:"))
             if redis else None)
    limiter = RateLimiter(RateLimitConfig(global_limits=[RateLimit("user_id", 5, 60_000)]),
                          store=store)
    return Gateway([shop_service()], rate_limiter=limiter,
                   admin=AdminSettings(token=token, gate=AdminGate(actions), name=name),
                   **options)


def _env_actions() -> frozenset[str]:
    raw = os.environ.get("OPS_ACTIONS")
    return ALL if raw is None else frozenset(a for a in raw.split(",") if a)


gateway = build(token=os.environ.get("OPS_TOKEN", TOKEN), actions=_env_actions(),
                name=os.environ.get("OPS_NAME", "ops"))


# -- the actions, as the tests drive them ----------------------------------------------

Step = tuple[str, str, dict[str, Any] | None, dict[str, Any] | None]


@dataclasses.dataclass(frozen=True)
class Case:
    """One admin action: its HTTP request, Python call, what must be true before it,
    and how to see (over the admin API) that it was applied."""

    action: str
    needs: str
    request: Step
    python: Callable[[Operations], Awaitable[AdminChange]]
    #: Done first, on the gateway the action is asked of (HTTP, through admin actions).
    prepare: tuple[Step, ...] = ()
    #: Done first on the gateway that must see the change (counts are per gateway).
    prepare_seer: tuple[Step, ...] = ()
    cluster_wide: bool = True


PRICE_V1 = "/admin/functions/shop/price"
COUNT_U1: Step = ("POST", "/admin/rate-limits/check", None, {"value": "u1"})

CASES = [
    Case("disable_function", "manage_functions",
         ("POST", PRICE_V1 + "/disable", {"version": "1.0.0"}, None),
         lambda ops: ops.disable_function("shop", "price", "1.0.0")),
    Case("enable_function", "manage_functions",
         ("POST", PRICE_V1 + "/enable", {"version": "1.0.0"}, None),
         lambda ops: ops.enable_function("shop", "price", "1.0.0"),
         prepare=(("POST", PRICE_V1 + "/disable", {"version": "1.0.0"}, None),)),
    Case("delete_function", "manage_functions",
         ("DELETE", PRICE_V1, {"version": "1.0.0"}, None),
         lambda ops: ops.delete_function("shop", "price", "1.0.0")),
    Case("set_rate_limit", "update_rate_limit_config",
         ("PUT", "/admin/rate-limits", None,
          {"key": "user_id", "max_requests": 3, "window_ms": 60_000}),
         lambda ops: ops.set_rate_limit(RateLimit("user_id", 3, 60_000))),
    Case("clear_rate_limit", "update_rate_limit_config",
         ("DELETE", "/admin/rate-limits", {"key": "user_id"}, None),
         lambda ops: ops.clear_rate_limit("user_id")),
    Case("reset_rate_limit", "update_rate_limit_config",
         ("POST", "/admin/rate-limits/reset", None, {"value": "u1"}),
         lambda ops: ops.reset_rate_limit("u1"),
         prepare_seer=(COUNT_U1, COUNT_U1)),
    Case("check_rate_limit", "update_rate_limit_config", COUNT_U1,
         lambda ops: ops.check_rate_limit("u1"), cluster_wide=False),
    Case("clear_rate_limit_counts", "update_rate_limit_config",
         ("POST", "/admin/rate-limits/clear", None, None),
         lambda ops: ops.clear_rate_limit_counts(),
         prepare_seer=(COUNT_U1, COUNT_U1)),
]


async def state(client: httpx.AsyncClient) -> dict[str, Any]:
    """What the admin actions change, read over the admin API: shop.price 1.0.0
    (``missing``, ``disabled`` or ``enabled``), the global limits and u1's usage."""
    functions = (await client.get("/admin/functions")).json()["functions"]
    found = [f for f in functions if f["service"] == "shop" and f["request_type"] == "price"
             and f["version"] == "1.0.0"]
    limits = (await client.get("/admin/rate-limits", params={"user_id": "u1"})).json()
    used = [entry["current_requests"] for entry in limits["user"]["global"]]
    return {"price_v1": "missing" if not found else
            "disabled" if found[0]["disabled"] else "enabled",
            "limits": [(g["key"], g["max_requests"]) for g in
                       limits["config"]["global_limits"]],
            "u1_used": used}


async def send(client: httpx.AsyncClient, step: Step) -> httpx.Response:
    """One admin request."""
    method, path, params, body = step
    return await client.request(method, path, params=params, json=body)


EXPECTED_AFTER: dict[str, dict[str, Any]] = {
    "disable_function": {"price_v1": "disabled"},
    "enable_function": {"price_v1": "enabled"},
    "delete_function": {"price_v1": "missing"},
    "set_rate_limit": {"limits": [("user_id", 3)]},
    "clear_rate_limit": {"limits": []},
    "reset_rate_limit": {"u1_used": [0]},
    "check_rate_limit": {"u1_used": [1]},
    "clear_rate_limit_counts": {"u1_used": [0]},
}
