"""The admin console over real HTTP: mounting, auth, gate, endpoints, dashboard headers."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest

from genapi import AdminAction, AdminGate, AdminSettings, Gateway
from genapi.demo import SERVICES
from genapi.gateway.admin import DASHBOARD_CSP
from tests.support.servers import running_app

TOKEN = secrets.token_urlsafe(32)
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ENDPOINTS = ["/admin/status", "/admin/health", "/admin/functions", "/admin/call-flows",
             "/admin/pools", "/admin/rate-limits", "/admin/cluster", "/admin/failed-configs",
             "/admin/connections", "/admin/calls", "/admin/schema",
             "/admin/call-flow?service=user_service&request_type=get_user"]


def gateway(**options: Any) -> Gateway:
    return Gateway(SERVICES, **options)


async def test_not_mounted_without_a_token() -> None:
    """Without admin_token there is no /admin and no /dashboard at all."""
    async with running_app(gateway()) as url, httpx.AsyncClient(base_url=url) as client:
        for path in ["/admin/status", "/dashboard", "/dashboard/static/dashboard.js"]:
            assert (await client.get(path, headers=AUTH)).status_code == 404, path


@pytest.mark.parametrize("header", [
    None, "Bearer", "bearer x", "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x",
    f"Bearer {TOKEN[:-1]}", TOKEN,
], ids=["none", "bearer-empty", "bearer-x", "bearer-wrong", "basic-token", "token-longer",
        "token-shorter", "token-without-scheme"])
async def test_wrong_or_missing_token_is_a_bare_401(header: str | None) -> None:
    """Anything but the exact Bearer token: 401, an empty body, no hint."""
    headers = {"Authorization": header} if header is not None else {}
    async with running_app(gateway(admin=AdminSettings(token=TOKEN))) as url, \
            httpx.AsyncClient(base_url=url) as client:
        for path in ["/admin/status", "/admin/calls", "/admin/no-such-page"]:
            response = await client.get(path, headers=headers)
            assert response.status_code == 401
            assert response.content == b""
            assert response.headers["www-authenticate"] == "Bearer"


async def test_every_endpoint_answers_json_and_never_the_token() -> None:
    """With the token every endpoint answers JSON, uncached, without the token in it."""
    async with running_app(gateway(admin=AdminSettings(token=TOKEN))) as url, \
            httpx.AsyncClient(base_url=url) as client:
        await client.post("/api/user_service/get_user", json={"user_id": "1"})
        for path in ENDPOINTS:
            response = await client.get(path, headers=AUTH)
            assert response.status_code == 200, path
            assert response.headers["content-type"] == "application/json"
            assert response.headers["cache-control"] == "no-store"
            assert TOKEN not in response.text
            response.json()
        status = (await client.get("/admin/status", headers=AUTH)).json()
        assert status["calls"]["total"]["calls"] == 1
        assert "user_service" in status["config_cache"]["services"]


async def test_call_flow_statuses() -> None:
    """call-flow: 404 with the explanation when unknown, 400 without parameters."""
    async with running_app(gateway(admin=AdminSettings(token=TOKEN))) as url, \
            httpx.AsyncClient(base_url=url, headers=AUTH) as client:
        missing = await client.get("/admin/call-flow?service=user_service&request_type=nope")
        assert missing.status_code == 404
        assert missing.json()["error"] == (
        "Unknown function nope in service user_service "
        "(known: delete_user, get_profile, get_user, get_user_profile, list_users)")
        assert (await client.get("/admin/call-flow")).status_code == 400
        v2 = await client.get("/admin/call-flow", params={
            "service": "user_service", "request_type": "get_user", "version": "2.0.0"})
        assert v2.json()["version"] == "2.0.0"
        flows = (await client.get("/admin/call-flows")).json()
        assert {f["service"] for f in flows} >= {"user_service", "event_service"}


async def test_an_explicit_gate_decides() -> None:
    """admin_token alone allows view_diagnostics; an explicit gate must list it."""
    assert gateway(admin=AdminSettings(token=TOKEN)).admin.allows(AdminAction.VIEW_DIAGNOSTICS)
    assert not gateway().admin.allows(AdminAction.VIEW_DIAGNOSTICS)
    closed = gateway(admin=AdminSettings(token=TOKEN, gate=AdminGate({AdminAction.PUSH_CONFIG})))
    async with running_app(closed) as url, httpx.AsyncClient(base_url=url) as client:
        denied = await client.get("/admin/status", headers=AUTH)
        assert (denied.status_code, denied.content) == (403, b"")
        assert (await client.get("/admin/status")).status_code == 401  # token first
    opened = gateway(admin=AdminSettings(token=TOKEN,
                                         gate=AdminGate({AdminAction.VIEW_DIAGNOSTICS})))
    async with running_app(opened) as url, httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/admin/status", headers=AUTH)).status_code == 200


def test_an_empty_token_is_refused() -> None:
    """admin_token="" is a mistake, not "no token"."""
    with pytest.raises(ValueError, match="admin_token"):
        gateway(admin=AdminSettings(token="  "))


async def test_dashboard_is_static_with_a_strict_policy() -> None:
    """The page and its files need no token, hold no data, and carry a strict CSP."""
    async with running_app(gateway(admin=AdminSettings(token=TOKEN))) as url, \
            httpx.AsyncClient(base_url=url) as client:
        page = await client.get("/dashboard")
        script = await client.get("/dashboard/static/dashboard.js")
        style = await client.get("/dashboard/static/dashboard.css")
    for response in (page, script, style):
        assert response.status_code == 200
        assert response.headers["content-security-policy"] == DASHBOARD_CSP
        assert response.headers["x-content-type-options"] == "nosniff"
        assert TOKEN not in response.text
    assert page.headers["x-frame-options"] == "DENY"
    assert "<script>" not in page.text and "<style" not in page.text  # nothing inline
    assert 'src="dashboard/static/dashboard.js"' in page.text
    assert "user_service" not in page.text  # the data comes from /admin, with the token
    assert "script-src 'self'" in DASHBOARD_CSP and "unsafe-inline" not in DASHBOARD_CSP


async def test_call_stats_follow_the_gateway_lifecycle() -> None:
    """CallStats is attached while the gateway runs and detached when it stops."""
    gw = gateway(admin=AdminSettings(token=TOKEN))
    console = gw.admin_console
    assert console is not None
    assert console.calls.attached is False
    async with running_app(gw) as url, httpx.AsyncClient(base_url=url) as client:
        assert console.calls.attached is True
        for _ in range(3):
            await client.post("/api/user_service/get_user", json={"user_id": "1"})
        calls = (await client.get("/admin/calls", headers=AUTH)).json()
    assert calls["total"]["calls"] == 3
    assert calls["functions"][0]["request_type"] == "get_user"
    assert console.calls.attached is False
    assert "genapi-callstats" not in " ".join(gw.executor.telemetry.handler_ids())


async def test_connections_are_listed(raw_client: Any) -> None:
    """Open sockets appear with their user, topics and calls in flight."""
    async with running_app(gateway(admin=AdminSettings(token=TOKEN))) as url, \
            raw_client(url) as ws, httpx.AsyncClient(base_url=url, headers=AUTH) as client:
        await ws.join("api:lobby")
        data = (await client.get("/admin/connections")).json()
    assert data["connections_open"] == 1
    assert data["open"][0]["topics"] == ["api:lobby"]
    assert data["open"][0]["user_id"] is None


async def test_other_modules_add_guarded_admin_routes() -> None:
    """admin_routes: a provider's routes are served before the console's /admin mount,
    behind the token, and refused with 'Admin action denied' when the gate says no."""
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import BaseRoute, Route

    from genapi.gateway.admin import AdminConsole, admin_routes

    async def hello(request: Request) -> Response:
        return JSONResponse({"hello": True})

    @admin_routes
    def provider(console: AdminConsole) -> list[BaseRoute]:
        return [Route("/admin/test-hook", console.guarded(hello, AdminAction.MANAGE_FUNCTIONS),
                      methods=["POST"]),
                Route("/admin/test-hook-read", console.guarded(hello), methods=["GET"])]

    try:
        allowed = AdminGate({"view_diagnostics", "manage_functions"})
        for gate, status in [(allowed, 200), (AdminGate({"view_diagnostics"}), 403)]:
            async with running_app(gateway(admin=AdminSettings(token=TOKEN, gate=gate))) \
                    as url, httpx.AsyncClient(base_url=url) as client:
                assert (await client.post("/admin/test-hook")).status_code == 401
                response = await client.post("/admin/test-hook", headers=AUTH)
                assert response.status_code == status
                if status == 403:
                    assert response.json() == {
                        "error": "Admin action denied: manage_functions"}
                assert (await client.get("/admin/test-hook-read", headers=AUTH)
                        ).status_code == 200
    finally:
        from genapi.gateway import admin

        admin._PROVIDERS.remove(provider)
