"""The security suite: identity, injection, hostile payloads, admin actions, admission."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import jwt
import pytest
import websockets

from genapi import (
    AdminGate,
    Gateway,
    GatewaySettings,
    JWTAuthenticator,
    RequestInfo,
    Service,
)
from genapi.cluster.sync import ConfigSync
from genapi.functions.registry import Registry
from genapi.gateway import AdmissionLimits
from genapi.ratelimit import RateLimit, RateLimitConfig, RateLimiter
from genapi.security import AdminActionDenied
from genapi.telemetry.events import Telemetry
from genapi.transport.nats.link import Link
from genapi.transport.nats.wire import PushMessage
from tests.gateway.conftest import ws_url
from tests.support.servers import running_app

SECRET = "a-test-secret-that-is-long-enough-for-hs256"
svc = Service("svc")


@svc.function()
async def whoami(*, info: RequestInfo) -> dict[str, Any]:
    return {"user_id": info.user_id, "roles": list(info.user_roles)}


@svc.function(check_permission=("role", ["admin"]))
async def admin_only() -> str:
    return "secret"


@svc.function()
async def echo(text: str, items: list[str], data: dict[str, Any]) -> int:
    return len(text)


def token(sub: str, roles: list[str]) -> str:
    return jwt.encode({"sub": sub, "roles": roles, "exp": int(time.time()) + 60}, SECRET)


ANONYMOUS_OK = GatewaySettings(allow_anonymous=True)


def gateway(**options: Any) -> Gateway:
    return Gateway([svc], authenticator=JWTAuthenticator(SECRET), **options)


async def call(ws: Any, payload: dict[str, Any]) -> dict[str, Any]:
    await ws.send(json.dumps(["1", "2", "api:lobby", "api", payload]))
    while True:
        frame = json.loads(await ws.recv())
        if frame[3] == "api":
            return dict(frame[4])


async def close_code(ws: Any) -> int | None:
    """Read until the server closes the socket; its close code."""
    try:
        while True:
            await ws.recv()
    except websockets.ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


async def joined(url: str, query: str) -> Any:
    ws = await websockets.connect(ws_url(url, query))
    await ws.send('["1","1","api:lobby","phx_join",{}]')
    await ws.recv()
    return ws


async def test_payload_identity_and_role_injection_are_ignored() -> None:
    """user_id and user_roles in payloads, and roles in connect params, are ignored."""
    async with running_app(gateway()) as url:
        ws = await joined(url, f"vsn=2.0.0&token={token('u1', ['viewer'])}&roles=admin")
        who = await call(ws, {"request_id": "a", "service": "svc", "request_type": "whoami",
                              "user_id": "root", "user_roles": ["admin"]})
        assert who["result"] == {"user_id": "u1", "roles": ["viewer"]}
        denied = await call(ws, {"request_id": "b", "service": "svc",
                                 "request_type": "admin_only", "user_roles": ["admin"]})
        assert denied["error"] == "Permission denied"
        await ws.close()
        async with httpx.AsyncClient(base_url=url) as http:
            response = await http.post("/api/svc/admin_only", json={"user_roles": ["admin"]},
                                       headers={"Authorization": f"Bearer {token('u', [])}"})
        assert response.status_code == 403  # roles smuggled in the arguments do not count
        assert response.json()["error"] == "Permission denied"


async def test_denylisted_callables_via_push_are_refused() -> None:
    """A pushed config naming a dangerous hook or callback is refused and logged."""
    sync = ConfigSync(Registry(telemetry=Telemetry()), Link("nats://unused", name="g"),
                      name="g", gate=AdminGate({"push_config"}), telemetry=Telemetry())
    for field, value in [("before_execute", "os:system"),
                         ("permission_callback", "subprocess:run"),
                         ("after_execute", ["builtins:eval", []])]:
        push = PushMessage(service="svc", node="n", config_version=field, fun_configs=[
            {"request_type": "f", field: value, "arg_types": {}}])
        result = sync.apply_push(push)
        assert result.status == "rejected"
        assert "deny list" in " ".join(result.reasons)
    assert len(sync.registry) == 0
    assert sync.failed.count() == 3


async def test_oversize_payloads_and_frames() -> None:
    """A payload over the limit is refused before decoding; a frame over it closes."""
    from genapi import ConnectionLimits, Limits

    small = Gateway([svc], registry=Registry(limits=Limits(max_payload_bytes=200)),
                    settings=GatewaySettings(limits=ConnectionLimits(max_frame_bytes=5000)))
    async with running_app(small, ws_max_size=100_000) as url:
        ws = await joined(url, "vsn=2.0.0")
        big = await call(ws, {"request_id": "r", "service": "svc", "request_type": "echo",
                              "args": {"text": "x" * 500, "items": [], "data": {}}})
        assert big["error"].startswith("Invalid request: Request payload exceeds maximum size")
        await ws.send(json.dumps(["1", "3", "api:lobby", "api", {"x": "y" * 10_000}]))
        assert await close_code(ws) == 1009


async def test_deeply_nested_json_never_crashes() -> None:
    """Absurd nesting is refused (or the socket closed) and the gateway keeps serving."""
    nested = "[" * 200_000 + "]" * 200_000
    async with running_app(gateway(settings=ANONYMOUS_OK), ws_max_size=10_000_000) as url:
        ws = await joined(url, "vsn=2.0.0")
        await ws.send('["1","2","api:lobby","api",{"request_id":"r","service":"svc",'
                      '"request_type":"whoami","args":{"x":' + nested + "}}]")
        # the ref is readable: an error reply to it, and the socket stays open (never 1011)
        reply = json.loads(await ws.recv())
        assert reply[:4] == ["1", "2", "api:lobby", "phx_reply"]
        assert reply[4] == {"status": "error", "response": {
            "reason": "Invalid request: payload nested too deeply"}}
        assert (await call(ws, {"request_id": "ok", "service": "svc",
                                "request_type": "whoami"}))["success"] is True
        await ws.close()
        async with httpx.AsyncClient(base_url=url) as http:
            response = await http.post("/api/svc/whoami", content=b'{"x":' + nested.encode()
                                       + b"}")
            assert response.status_code in (400, 413)
        ws2 = await joined(url, "vsn=2.0.0")
        assert (await call(ws2, {"request_id": "ok", "service": "svc",
                                 "request_type": "whoami"}))["success"] is True
        await ws2.close()


async def test_invalid_utf8() -> None:
    """Invalid UTF-8 closes a socket (1007) or answers 400 over HTTP; nothing crashes."""
    async with running_app(gateway(settings=ANONYMOUS_OK)) as url:
        ws = await joined(url, "vsn=2.0.0")
        await ws.send(b'["1","2","api:lobby","api",{"request_id":"\xff\xfe"}]')  # binary frame
        assert await close_code(ws) == 1007
        async with httpx.AsyncClient(base_url=url) as http:
            response = await http.post("/api/svc/whoami", content=b'{"x":"\xff"}')
        assert response.status_code == 400


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"text": "x" * 3001, "items": [], "data": {}},
         "Invalid argument text: exceeds max 3000 bytes"),
        ({"text": "", "items": ["a"] * 1001, "data": {}},
         "Invalid argument items: exceeds max 1000 items"),
        ({"text": "", "items": [], "data": {str(i): i for i in range(1001)}},
         "Invalid argument data: exceeds max 1000 items"),
        ({"text": "", "items": ["x" * 3001], "data": {}},
         "Invalid argument items: item 0 exceeds max 3000 bytes"),
        ({"text": "", "items": [], "data": {}, "extra": 1}, "Unknown argument: extra"),
    ],
)
async def test_huge_and_unknown_arguments(args: dict[str, Any], message: str) -> None:
    """Huge strings, lists and maps hit the global caps; unknown arguments are refused."""
    async with running_app(gateway(settings=ANONYMOUS_OK)) as url, \
            httpx.AsyncClient(base_url=url) as http:
        response = await http.post("/api/svc/echo", json=args)
    assert response.status_code == 422
    assert response.json()["error"] == message


async def test_unknown_payload_fields_are_ignored() -> None:
    """Extra payload fields do nothing (they are not arguments and not identity)."""
    async with running_app(gateway(settings=ANONYMOUS_OK)) as url:
        ws = await joined(url, "vsn=2.0.0")
        answer = await call(ws, {"request_id": "r", "service": "svc", "request_type": "whoami",
                                 "ip_address": "10.0.0.1", "whatever": {"a": 1}})
        assert answer["result"] == {"user_id": None, "roles": []}
        await ws.close()


async def test_many_connections_from_one_address_are_throttled() -> None:
    """Connect and join rates per address are bounded (429 at the upgrade)."""
    gw = gateway(settings=GatewaySettings(allow_anonymous=True,
                                    admission=AdmissionLimits(connects=5, joins=3)))
    async with running_app(gw) as url:
        opened, statuses = [], []
        for _ in range(8):
            try:
                opened.append(await websockets.connect(ws_url(url)))
            except websockets.InvalidStatus as exc:
                statuses.append(exc.response.status_code)
        assert len(opened) == 5
        assert statuses == [429, 429, 429]
        replies = []
        for ref in range(5):
            await opened[0].send(json.dumps([str(ref), str(ref), f"api:t{ref}", "phx_join", {}]))
            replies.append(json.loads(await opened[0].recv())[4])
        assert [r["status"] for r in replies] == ["ok"] * 3 + ["error"] * 2
        assert replies[-1]["response"] == {"reason": "too many joins"}
        for ws in opened:
            await ws.close()
    assert gw.stats.connects_throttled == 3
    assert gw.stats.joins_throttled == 2


async def test_admin_actions_are_enforced() -> None:
    """detail_error and rate-limit changes need their admin actions (closed by default)."""
    closed = gateway()
    with pytest.raises(AdminActionDenied):
        closed.set_detail_error(True)
    assert closed.executor.detail_error is False
    opened = gateway(admin=AdminGate({"change_detail_error"}))
    opened.set_detail_error(True)
    assert opened.executor.detail_error is True

    limiter = RateLimiter(RateLimitConfig(), gate=AdminGate())
    with pytest.raises(AdminActionDenied):
        limiter.add_global_limit(RateLimit("user_id", 1, 1000))
    allowed = RateLimiter(RateLimitConfig(), gate=AdminGate({"update_rate_limit_config"}))
    allowed.add_global_limit(RateLimit("user_id", 1, 1000))
    assert len(allowed.config.global_limits) == 1


@pytest.mark.parametrize(("header", "expected"), [
    ("Bearer abc", "abc"), ("bearer abc", "abc"), ("BEARER  abc ", "abc"),
    (b"Bearer abc", "abc"), ("Basic abc", None), ("Bearer", None), ("Bearer   ", None),
    ("", None), (None, None),
])
def test_bearer_credentials_one_parser(header: str | bytes | None, expected: str | None) -> None:
    """One Bearer parser for the admin console and /metrics: the scheme in any case."""
    from genapi.security import bearer_credentials

    assert bearer_credentials(header) == expected
