"""The official phoenix npm client against a real gateway."""

from __future__ import annotations

import time

import jwt

from genapi import Gateway, JWTAuthenticator
from genapi.demo import SERVICES
from genapi.demo.app import build_demo_gateway
from tests.e2e.conftest import by_key, run_scenario
from tests.support.servers import free_port, running_app

SECRET = "a-test-secret-that-is-long-enough-for-hs256"


async def test_join_calls_validation_and_permission_errors(node: str) -> None:
    """Join, list_users, get_user, a validation error and permission errors."""
    async with running_app(build_demo_gateway()) as url:
        seen = by_key(await run_scenario(node, "basic", url))
    assert seen["join"] == {}
    users = seen["list_users"]
    assert users["response"]["success"] is True
    assert [u["name"] for u in users["response"]["result"]] == ["Alice", "Bob", "Carol"]
    assert users["reply"] == {"status": "ok", "response": {"request_type": "list_users"}}
    assert set(users["response"]) == {"request_id", "result", "success", "error", "async",
                                      "has_more", "can_retry"}
    assert seen["get_user"]["response"]["result"]["name"] == "Alice"
    validation = seen["validation"]
    assert validation["response"]["error"] == "Missing required argument: user_id"
    assert validation["reply"] == {  # the reason, and every problem with its path
        "status": "error", "response": {
            "reason": "Missing required argument: user_id",
            "errors": [{"path": ["user_id"], "message": "Missing required argument: user_id"}]}
    }
    assert seen["own_profile"]["response"]["success"] is True
    assert seen["denied"]["response"]["error"] == "Permission denied"
    assert seen["not_admin"]["response"]["error"] == "Permission denied"


async def test_anonymous_connection(node: str) -> None:
    """Anonymous sockets reach public functions; protected ones need authentication."""
    async with running_app(build_demo_gateway()) as url:
        seen = by_key(await run_scenario(node, "anonymous", url))
    assert seen["public"]["response"]["success"] is True
    assert seen["protected"]["response"]["error"] == "Authentication required"


async def test_refused_connect_retries_and_never_joins(node: str) -> None:
    """A refused connect (403 at the upgrade) makes phoenix.js retry; no channel joins."""
    gateway = Gateway(SERVICES, authenticator=JWTAuthenticator(SECRET))
    async with running_app(gateway) as url:
        refused = by_key(await run_scenario(node, "refused", url, {"params": {"token": "bad"}}))
        anonymous = by_key(await run_scenario(node, "refused", url, {"params": {}}))
        token = jwt.encode({"sub": "7", "exp": int(time.time()) + 60}, SECRET)
        accepted = by_key(await run_scenario(node, "refused", url, {"params": {"token": token}}))
    assert refused["joined"] is False
    assert refused["errors"] >= 2  # it kept retrying
    assert anonymous["joined"] is False
    assert accepted == {"errors": 0, "joined": True, "connected": True}
    assert gateway.stats.connections_refused >= 4


async def test_heartbeat(node: str) -> None:
    """Heartbeats are answered and keep the connection alive."""
    async with running_app(build_demo_gateway()) as url:
        seen = by_key(await run_scenario(node, "heartbeat", url))
    assert seen["heartbeat_replies"] >= 3
    assert seen["connected"] is True
    assert seen["after"]["response"]["success"] is True


async def test_leave_and_join_again(node: str) -> None:
    """Leaving answers ok and closes the channel; joining again works."""
    async with running_app(build_demo_gateway()) as url:
        seen = by_key(await run_scenario(node, "leave", url))
    assert seen["left"] == "ok"
    assert seen["state"] == "closed"
    assert seen["after_rejoin"]["response"]["success"] is True


async def test_stale_join_ref_is_dropped(node: str) -> None:
    """A push carrying an old join_ref gets no reply and harms nothing."""
    async with running_app(build_demo_gateway()) as url:
        seen = by_key(await run_scenario(node, "stale", url))
    assert seen["old"] != seen["current"]
    assert seen["stale_answered"] is False
    assert seen["still_works"]["response"]["success"] is True


async def test_reconnect_and_rejoin_after_drain(node: str) -> None:
    """After the server drains (close 1012) phoenix.js reconnects to the new instance."""
    port = free_port()
    first = build_demo_gateway()
    servers: list[object] = []

    async def restart(step: str) -> None:
        assert step == "drain"
        await first.drain()
        await servers[0].__aexit__(None, None, None)  # type: ignore[attr-defined]
        replacement = running_app(build_demo_gateway(), port=port)
        await replacement.__aenter__()
        servers[0] = replacement

    server = running_app(first, port=port)
    url = await server.__aenter__()
    servers.append(server)
    try:
        seen = by_key(await run_scenario(node, "reconnect", url, on_wait=restart))
    finally:
        await servers[0].__aexit__(None, None, None)  # type: ignore[attr-defined]
    assert seen["before"]["response"]["success"] is True
    assert 1012 in seen["closes"]
    assert seen["joins"] >= 2
    assert seen["after"]["response"]["result"]["name"] == "Bob"


def terminators(pushes: list[dict[str, object]]) -> list[dict[str, object]]:
    """Pushes that end a call (not the init ack, not a chunk with more to come)."""
    return [p for p in pushes[1:] if not p["has_more"]]


async def test_async_stream_cancel_and_timeout_each_end_once(node: str) -> None:
    """Async, stream, a cancelled stream and a timed-out stream: one terminator each."""
    from genapi import Service

    slow = Service("slow_service")

    @slow.function(response_type="stream", timeout=300)
    async def endless():  # type: ignore[no-untyped-def]
        import asyncio

        while True:
            yield "tick"
            await asyncio.sleep(0.02)

    gateway = build_demo_gateway()
    gateway.registry.add_service(slow)
    async with running_app(gateway) as url:
        seen = by_key(await run_scenario(
            node, "modes", url,
            {"timeout_service": "slow_service", "timeout_function": "endless"}))
    async_pushes = seen["async"]["pushes"]
    assert [p["async"] for p in async_pushes] == [True, False]
    assert async_pushes[1]["result"] == {"report_url": "https://example.com/reports/123.pdf"}

    stream = seen["stream"]["pushes"]
    assert stream[0]["result"] == "init"
    assert [p["result"]["number"] for p in stream[1:11]] == list(range(1, 11))
    assert all(p["has_more"] for p in stream[1:11])
    assert terminators(stream) == [stream[-1]]
    assert stream[-1]["result"] == {"event": "done", "total": 10}

    cancelled = seen["cancel"]["pushes"]
    assert terminators(cancelled) == [cancelled[-1]]
    assert cancelled[-1]["error"] == "Cancelled"

    timed_out = seen["timeout"]["pushes"]
    assert terminators(timed_out) == [timed_out[-1]]
    assert timed_out[-1]["error"] == "Request timed out after 300ms"
    assert timed_out[-1]["can_retry"] is True
