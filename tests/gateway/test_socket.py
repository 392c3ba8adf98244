"""The Phoenix socket of the gateway, frame by frame."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
import websockets

from genapi import Gateway, GatewaySettings, InsecureDemoAuthenticator, Service
from genapi.demo import SERVICES
from genapi.demo.app import build_demo_gateway
from tests.gateway.conftest import ws_url
from tests.support.servers import running_app


async def test_join_call_and_reply_frames(raw_client: Any, driver: str) -> None:
    """A call answers with the api push (seven keys) and a phx_reply naming the request type."""
    async with running_app(build_demo_gateway(), driver=driver) as url, raw_client(url) as client:
        assert await client.join() == ["1", "1", "api:lobby", "phx_reply",
                                       {"status": "ok", "response": {}}]
        push, reply = await client.call({"request_id": "r1", "service": "user_service",
                                         "request_type": "get_user", "args": {"user_id": "2"}})
        assert push["result"]["name"] == "Bob"
        assert reply == {"status": "ok", "response": {"request_type": "get_user"}}


async def test_error_reply_carries_reason(raw_client: Any) -> None:
    """A failed call pushes the error Response and replies status error with the reason."""
    async with running_app(build_demo_gateway()) as url, raw_client(url) as client:
        await client.join()
        push, reply = await client.call({"request_id": "r1", "service": "nope",
                                         "request_type": "x"})
        unknown = ("Unknown service: nope (known: admin_service, blog_service, chat_service, "
                   "durable, event_service, relay, report_service, search_service, "
                   "signup_service, user_service)")
        assert push["error"] == unknown
        assert reply == {"status": "error", "response": {"reason": unknown}}


async def test_invalid_payloads(raw_client: Any, driver: str) -> None:
    """Undecodable payloads answer 'Invalid request: …' with the request id when known."""
    async with running_app(build_demo_gateway(), driver=driver) as url, raw_client(url) as client:
        await client.join()
        push, reply = await client.call({"request_id": "r9", "service": "user_service"})
        assert push["error"] == "Invalid request: Missing required fields: request_type"
        assert reply["status"] == "error"
        await client.push({"request_id": 5})  # wrong type: request id unknown
        frame = await client.recv()
        assert frame[4]["request_id"] == "unknown"
        assert frame[4]["error"].startswith("Invalid request: Malformed request payload")


async def test_identity_from_connection_not_payload(raw_client: Any) -> None:
    """A payload's user_id and roles are ignored; the socket identity decides."""
    async with running_app(build_demo_gateway()) as url, \
            raw_client(url, "vsn=2.0.0&user_id=1&roles=viewer") as client:
        await client.join()
        push, _ = await client.call({
            "request_id": "r1", "service": "user_service", "request_type": "delete_user",
            "args": {"user_id": "2"}, "user_id": "2", "user_roles": ["admin"]})
        assert push["error"] == "Permission denied"


async def test_unknown_event_and_unmatched_topic(raw_client: Any) -> None:
    """Other events get an error reply; topics outside the patterns are unmatched."""
    async with running_app(build_demo_gateway()) as url, raw_client(url) as client:
        await client.join()
        ref = await client.push({}, event="shout")
        assert await client.recv() == ["1", ref, "api:lobby", "phx_reply",
                                       {"status": "error",
                                        "response": {"reason": "unknown event: shout"}}]
        await client.send(["9", "9", "room:1", "phx_join", {}])
        assert await client.recv() == [None, "9", "room:1", "phx_reply",
                                       {"status": "error",
                                        "response": {"reason": "unmatched topic",
                                                     "topics": ["api:*", "chat:*"]}}]


async def test_join_authorizer() -> None:
    """A join authorizer can refuse a topic with a reason, or crash (join crashed)."""

    def authorize(topic: str, payload: Any, identity: Any) -> Any:
        if topic == "api:secret":
            return {"reason": "unauthorized"}
        if topic == "api:boom":
            raise RuntimeError("bug")
        return True

    gateway = Gateway(SERVICES, settings=GatewaySettings(join_authorizer=authorize))
    async with running_app(gateway) as url, websockets.connect(ws_url(url)) as ws:
        for topic, expected in [("api:secret", {"reason": "unauthorized"}),
                                ("api:boom", {"reason": "join crashed"})]:
            await ws.send(f'["1","1","{topic}","phx_join",{{}}]')
            frame = await ws.recv()
            assert '"status":"error"' in frame
            assert str(expected["reason"]) in frame
        await ws.send('["2","2","api:lobby","phx_join",{}]')
        assert '"status":"ok"' in await ws.recv()


async def test_anonymous_refused_when_not_allowed() -> None:
    """With allow_anonymous=False a socket without identity is refused at the upgrade:
    401, saying why."""
    gateway = Gateway(authenticator=InsecureDemoAuthenticator(),
                      settings=GatewaySettings(allow_anonymous=False))
    async with running_app(gateway) as url:
        with pytest.raises(websockets.InvalidStatus) as info:
            async with websockets.connect(ws_url(url)):
                pass
        assert info.value.response.status_code == 401
        assert json.loads(info.value.response.body) == {"reason": "missing token"}
        async with websockets.connect(ws_url(url, "vsn=2.0.0&user_id=1")):
            pass


@pytest.mark.parametrize("query", ["vsn=3.0.0", "vsn=garbage"])
async def test_unsupported_vsn_is_403(query: str) -> None:
    """An unsupported serializer version is refused with HTTP 403."""
    async with running_app(build_demo_gateway()) as url:
        with pytest.raises(websockets.InvalidStatus) as info:
            async with websockets.connect(ws_url(url, query)):
                pass
        assert info.value.response.status_code == 403


async def test_v1_clients_are_served(driver: str) -> None:
    """A client without vsn speaks V1 (object frames)."""
    async with running_app(build_demo_gateway(), driver=driver) as url, \
            websockets.connect(ws_url(url, "user_id=1")) as ws:
        await ws.send('{"topic":"api:lobby","event":"phx_join","payload":{},"ref":"1"}')
        assert await ws.recv() == ('{"topic":"api:lobby","event":"phx_reply",'
                                   '"payload":{"status":"ok","response":{}},"ref":"1"}')


async def test_auth_token_subprotocol_is_answered_with_phoenix() -> None:
    """phoenix.js's authToken subprotocol is accepted and 'phoenix' selected."""
    gateway = Gateway(authenticator=InsecureDemoAuthenticator())
    token = base64.b64encode(b"5:admin").decode().rstrip("=")
    async with running_app(gateway) as url, websockets.connect(
        ws_url(url), subprotocols=["phoenix", f"base64url.bearer.phx.{token}"]  # type: ignore[list-item]
    ) as ws:
        assert ws.subprotocol == "phoenix"


async def test_malformed_frame_closes_with_1007(driver: str) -> None:
    """Garbage closes only that connection with 1007 (invalid payload data) and a reason,
    never 1011 (a server error); the gateway keeps serving."""
    gateway = build_demo_gateway()
    async with running_app(gateway, driver=driver) as url:
        async with websockets.connect(ws_url(url)) as ws:
            await ws.send("not json")
            with pytest.raises(websockets.ConnectionClosed) as info:
                await ws.recv()
            assert info.value.rcvd is not None
            assert (info.value.rcvd.code, info.value.rcvd.reason) == (
                1007, "malformed Phoenix frame")
        async with websockets.connect(ws_url(url)) as ws:
            await ws.send('[null,"1","phoenix","heartbeat",{}]')
            heartbeat_reply = '[null,"1","phoenix","phx_reply",{"status":"ok","response":{}}]'
            assert await ws.recv() == heartbeat_reply
        assert gateway.stats.malformed_frames == 1


async def test_concurrent_calls_on_one_connection(raw_client: Any, driver: str) -> None:
    """Calls on one connection run concurrently: a slow one does not hold back fast ones."""
    svc = Service("svc")
    release = asyncio.Event()

    @svc.function()
    async def slow() -> str:
        await release.wait()
        return "slow"

    @svc.function()
    async def fast() -> str:
        return "fast"

    async with running_app(Gateway([svc]), driver=driver) as url, raw_client(url) as client:
        await client.join()
        await client.push({"request_id": "s", "service": "svc", "request_type": "slow"})
        push, _ = await client.call({"request_id": "f", "service": "svc", "request_type": "fast"})
        assert push["result"] == "fast"
        release.set()
        frame = await client.recv()
        assert frame[4]["result"] == "slow"


async def test_rate_limited_reply_carries_retry_after(raw_client: Any) -> None:
    """A rate-limited push answers can_retry and the reply details give retry_after_ms."""
    from genapi.ratelimit import RateLimit, RateLimitConfig, RateLimiter

    limiter = RateLimiter(RateLimitConfig(global_limits=[RateLimit("ip_address", 1, 60_000)]))
    gateway = Gateway(SERVICES, rate_limiter=limiter)
    async with running_app(gateway) as url, raw_client(url) as client:
        await client.join()
        first, _ = await client.call({"request_id": "a", "service": "user_service",
                                      "request_type": "list_users"})
        assert first["success"] is True
        push, reply = await client.call({"request_id": "b", "service": "user_service",
                                         "request_type": "list_users"})
    assert push["can_retry"] is True
    assert push["error"] == "Rate limit exceeded. Please retry after 60 seconds."
    assert reply["status"] == "error"
    assert 0 < reply["response"]["retry_after_ms"] <= 60_000
    assert reply["response"]["key"] == "ip_address"


@pytest.mark.parametrize("size", [0, 90, 125, 126, 65_000, 65_536, 200_000])
async def test_answers_of_every_length_arrive_whole(raw_client: Any, driver: str,
                                                    size: int) -> None:
    """Answers cross the 7-bit, 16-bit and 64-bit WebSocket length forms intact."""
    svc = Service("svc")

    @svc.function()
    async def text(n: int) -> str:
        return "é" * n  # two bytes each in UTF-8

    async with running_app(Gateway([svc]), driver=driver) as url, raw_client(url) as client:
        await client.join()
        push, reply = await client.call({"request_id": "r", "service": "svc",
                                         "request_type": "text", "args": {"n": size // 2}})
        assert push["result"] == "é" * (size // 2)
        assert reply["status"] == "ok"


async def test_a_fragmented_push_is_reassembled(raw_client: Any, driver: str) -> None:
    """A push sent in several WebSocket fragments is one message."""
    async with running_app(build_demo_gateway(), driver=driver) as url, raw_client(url) as client:
        await client.join()
        frame = ('["1","2","api:lobby","api",{"request_id":"r","service":"user_service",'
                 '"request_type":"get_user","args":{"user_id":"2"}}]')
        await client.ws.send([frame[:10], frame[10:50], frame[50:]])
        while (answer := await client.recv())[3] != "api":
            pass
        assert answer[4]["result"]["name"] == "Bob"
