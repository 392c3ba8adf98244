"""Headless Chromium drives the admin dashboard against a live gateway."""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from genapi import (
    AdminSettings,
    ApiError,
    Client,
    DurableSettings,
    Gateway,
    GatewaySettings,
    InsecureDemoAuthenticator,
    Service,
)
from genapi.demo import SERVICES
from genapi.ratelimit import RateLimit, RateLimitConfig, RateLimiter
from genapi.security import AdminAction, AdminGate
from tests.e2e.conftest import by_key, run_browser_script
from tests.support.servers import running_app

pytestmark = pytest.mark.e2e

TOKEN = secrets.token_urlsafe(32)


@contextlib.asynccontextmanager
async def steady_calls(url: str, every: float = 0.05) -> AsyncIterator[list[int]]:
    """Call the gateway every ``every`` seconds until the block ends (as user alice)."""
    done = [0]

    async def run() -> None:
        async with httpx.AsyncClient(base_url=url) as client:
            while True:
                await client.post("/api/user_service/get_user", json={"user_id": "1"},
                                  headers={"Authorization": "Bearer alice"})
                done[0] += 1
                await asyncio.sleep(every)

    task = asyncio.create_task(run())
    try:
        yield done
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_dashboard_shows_services_and_live_calls(node: str, chromium: str) -> None:
    """The token unlocks the board: services, a moving chart, call flows, rate limits."""
    limiter = RateLimiter(RateLimitConfig(global_limits=[RateLimit("user_id", 100_000,
                                                                   60_000)]))
    gateway = Gateway(SERVICES, authenticator=InsecureDemoAuthenticator(), rate_limiter=limiter,
                      settings=GatewaySettings(allow_anonymous=True),
                      admin=AdminSettings(token=TOKEN))
    async with running_app(gateway) as url, steady_calls(url) as done:
        while done[0] < 5:
            await asyncio.sleep(0.05)
        lines = await run_browser_script(node, "dashboard_browser.mjs", url, TOKEN, chromium,
                                         timeout=90.0)
    errors = [line for line in lines if "page_error" in line or "csp_violation" in line]
    assert not errors, errors
    seen = by_key(lines)
    assert seen["first_state"] == "login"
    assert seen["board_visible_before_login"] is False  # not drawn under the login form
    assert seen["wrong_token"] == "the gateway refused the token"
    assert seen["stored_after_wrong"] == 0
    assert {"user_service", "event_service", "blog_service"} <= set(seen["services"])
    assert seen["health"] == "ok"
    assert re.fullmatch(r"RSS \d+\.\d MB · loop lag \d+\.\d ms \(max \d+\.\d\) · \d+ fds · "
                        r"\d+ tasks", seen["process"]), seen["process"]
    assert seen["call_rate"] > 0
    assert seen["chart_max_calls"] > 0
    assert seen["chart_points"] == 60
    assert seen["chart_advanced"] is True
    assert seen["total_grew"] is True
    assert seen["chart_inked_pixels"] > 0
    assert seen["flow_title"] == "user_service.get_user (2.0.0, sync)"
    assert seen["flow_phases"][0] == "channel" and seen["flow_phases"][-1] == "response"
    assert "rate_limit" in seen["flow_phases"]
    [usage] = seen["usage_rows"]
    assert usage[0] == "global" and usage[1] == "user_id" and int(usage[2]) > 0
    assert seen["durable_panel"] is False
    assert seen["after_reload"] == "live"
    assert seen["token_in_page"] is False
    assert seen["after_logout"] == 0


@pytest.mark.parametrize("manage", [True, False], ids=["manage_durable", "read_only"])
async def test_dashboard_shows_durable_calls(node: str, chromium: str, tmp_path: Path,
                                             manage: bool) -> None:
    """With durable calls the board shows the queue by state and the dead calls; a dead
    call's Retry button, confirmed, runs it again when the gate allows manage_durable."""
    jobs = Service("jobs", response_type="async", durable=True, max_attempts=1)
    actions = {AdminAction.VIEW_DIAGNOSTICS} | ({AdminAction.MANAGE_DURABLE} if manage else set())

    @jobs.function()
    async def fine(n: int) -> int:
        return n

    @jobs.function()
    async def broken(n: int) -> int:
        raise ApiError(f"no good: {n}")

    gateway = Gateway([jobs], authenticator=InsecureDemoAuthenticator(),
                      admin=AdminSettings(token=TOKEN, gate=AdminGate(actions)),
                      durable=DurableSettings(url=f"sqlite:///{tmp_path / 'jobs.db'}",
                                              poll_interval=0.05))
    async with running_app(gateway) as url:
        socket = url.replace("http://", "ws://") + "/socket"
        async with Client(socket, params={"user_id": "alice"}) as client:
            assert await client.call("jobs", "fine", {"n": 1}) == 1
            with pytest.raises(ApiError, match="no good: 2"):
                await client.call("jobs", "broken", {"n": 2})
        lines = await run_browser_script(node, "durable_browser.mjs", url, TOKEN, chromium)
    assert not [line for line in lines if "page_error" in line], lines
    seen = by_key(lines)
    assert seen["states"]["succeeded"] == 1 and seen["states"]["dead"] == 1
    assert seen["states"]["pending"] == 0
    [dead] = seen["dead"]
    assert dead[1] == "jobs.broken" and dead[2] == "alice" and dead[3] == "1/1"
    assert dead[4] == "no good: 2"
    assert seen["dialog"] == f"Run durable call {dead[0]} again?"
    if manage:
        assert seen["action"] == f"call {dead[0]} is pending again"
    else:
        assert seen["action"] == "retry refused: the admin gate does not allow manage_durable"


@pytest.mark.parametrize("allowed", [True, False], ids=["allowed", "refused"])
async def test_dashboard_admin_buttons(node: str, chromium: str, allowed: bool) -> None:
    """Disable / enable a function version and set a rate limit from the dashboard: each
    confirmed in a dialog (a dismissed one sends nothing), applied when the gate allows
    it, refused in the gate's words otherwise."""
    from tests.support.ops_app import TOKEN as OPS_TOKEN
    from tests.support.ops_app import build

    gateway = build(actions=frozenset({AdminAction.VIEW_DIAGNOSTICS, *(
        (AdminAction.MANAGE_FUNCTIONS, AdminAction.UPDATE_RATE_LIMIT_CONFIG)
        if allowed else ())}))
    async with running_app(gateway) as url:
        lines = await run_browser_script(node, "ops_browser.mjs", url, OPS_TOKEN, chromium)
    assert not [line for line in lines if "page_error" in line], lines
    seen = by_key(lines)
    assert seen["after_dismiss"] == ""
    assert seen["dialogs"][:2] == ["Disable shop.price 1.0.0 on every gateway?"] * 2
    assert seen["dialogs"][-1] == ("Set the rate limit user_id 7 per 60000 ms (global) "
                                   "on every gateway?")
    limiter = gateway.executor.rate_limiter
    assert isinstance(limiter, RateLimiter)
    if allowed:
        assert seen["disable"] == "shop.price 1.0.0 disabled (by ops)"
        assert seen["status_cell"] == "disabled"
        assert seen["dialogs"][2] == "Enable shop.price 1.0.0 on every gateway?"
        assert seen["enable"] == "shop.price 1.0.0 enabled (by ops)"
        assert seen["set_limit"] == "limit set: user_id 7 per 60000 ms (global)"
        assert seen["limit_rows"] == [["global", "user_id", "7", "60000"]]
        assert [limit.max_requests for limit in limiter.config.global_limits] == [7]
    else:
        assert seen["disable"] == "disable refused: Admin action denied: manage_functions"
        assert seen["set_limit"] == ("set limit refused: Admin action denied: "
                                     "update_rate_limit_config")
        assert len(seen["dialogs"]) == 3
        assert [limit.max_requests for limit in limiter.config.global_limits] == [5]
    route = gateway.registry.get_route("shop", "price", "1.0.0")
    assert route is not None and not route.disabled
