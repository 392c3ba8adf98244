"""genapi.testing.InProcessGateway: real clients, real protocol, no port."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator

import jwt
import pytest

from genapi import (
    AuthenticationRequired,
    Depends,
    Gateway,
    JWTAuthenticator,
    NotConnected,
    PermissionDenied,
    Service,
    UsageError,
)
from genapi.demo.app import build_demo_gateway
from genapi.testing import InProcessGateway

SECRET = "a-test-secret-that-is-long-enough-for-hs256"


async def test_each_client_has_its_own_identity() -> None:
    """An admin, a viewer and an anonymous client on one gateway."""
    async with InProcessGateway(build_demo_gateway()) as api:
        admin = await api.connect(user_id="1", roles=["admin"])
        viewer = await api.connect(user_id="2", roles=["viewer"])
        anonymous = await api.connect()
        assert await admin.call("user_service", "delete_user", {"user_id": "2"}) == {
            "deleted": "2"}
        with pytest.raises(PermissionDenied):
            await viewer.call("user_service", "delete_user", {"user_id": "2"})
        with pytest.raises(AuthenticationRequired):
            await anonymous.call("user_service", "get_user_profile", {"user_id": "1"})
        profile = await viewer.call("user_service", "get_user_profile", {"user_id": "2"})
        assert profile["name"] == "Bob"


async def test_params_go_through_the_real_authenticator() -> None:
    """Without an identity the gateway's authenticator decides: a good JWT is accepted, a
    bad one refused with its reason (the harness's own identities still work)."""
    svc = Service("me")

    @svc.function(check_permission="any_authenticated")
    async def whoami() -> str:
        return "ok"

    gateway = Gateway([svc], authenticator=JWTAuthenticator(SECRET))
    good = jwt.encode({"sub": "7", "exp": int(time.time()) + 60}, SECRET)
    async with InProcessGateway(gateway) as api:
        assert await (await api.connect(params={"token": good})).call("me", "whoami") == "ok"
        forged = jwt.encode({"sub": "7", "exp": int(time.time()) + 60}, "x" + SECRET)
        refusal = re.escape('HTTP 401: {"reason": "invalid signature"}')
        with pytest.raises(NotConnected, match=refusal) as info:
            await api.connect(params={"token": forged})
        assert forged not in str(info.value)  # the URL is redacted
        assert await (await api.connect(user_id="9")).call("me", "whoami") == "ok"
    assert isinstance(gateway.authenticator, JWTAuthenticator)  # restored


async def test_async_results_streams_cancellation_and_pushes() -> None:
    """Every kind of answer reaches in-process clients, relay pushes included."""
    async with InProcessGateway(build_demo_gateway()) as api:
        alice = await api.connect(user_id="alice")
        bob = await api.connect(user_id="bob")
        report = await alice.call("report_service", "generate_report", {"delay_ms": 10})
        assert report["report_url"].endswith(".pdf")
        ticks = [t async for t in alice.stream("event_service", "ticker",
                                               {"count": 3, "interval_ms": 1})]
        assert ticks == [{"tick": 1}, {"tick": 2}, {"tick": 3}]
        stream = alice.stream("event_service", "ticker", {"interval_ms": 5})
        async for tick in stream:
            if tick["tick"] == 2:
                break
        await stream.aclose()  # cancels it on the server
        for client in (alice, bob):
            await client.call("relay", "join_group", {"group_id": "lobby"})
        await alice.call("relay", "send_message", {"group_id": "lobby", "message": "hi"})
        push = await bob.next_push(timeout=5)
        while "presence" in push.result:  # the group's presence diffs come first
            push = await bob.next_push(timeout=5)
        assert (push.result["from_user_id"], push.result["message"]) == ("alice", "hi")
        for _ in range(100):
            if not api.gateway.executor.jobs:
                break
            await asyncio.sleep(0.01)
        assert len(api.gateway.executor.jobs) == 0


async def test_http_in_process() -> None:
    """api.http() calls the HTTP routes as a given user."""
    async with InProcessGateway(build_demo_gateway()) as api, \
            api.http(user_id="1", roles=["admin"]) as http:
        answer = await http.post("/api/user_service/delete_user", json={"user_id": "2"})
        assert answer.json()["result"] == {"deleted": "2"}
        assert (await http.get("/healthz")).json()["status"] == "ok"


async def test_overrides_last_as_long_as_they_are_asked_to() -> None:
    """Overrides given to the harness last while it runs; api.override for a block."""

    def real() -> str:
        return "real"

    svc = Service("dep")

    @svc.function()
    async def which(value: str = Depends(real)) -> str:
        return value

    async def fake() -> AsyncIterator[str]:
        yield "fake"

    gateway = Gateway([svc])
    async with InProcessGateway(gateway, overrides={real: lambda: "harness"}) as api:
        client = await api.connect()
        assert await client.call("dep", "which") == "harness"
        with api.override(real, fake):
            assert await client.call("dep", "which") == "fake"
        assert await client.call("dep", "which") == "harness"
    assert gateway.registry.dependency_overrides == {}


async def test_a_gateway_runs_again_after_a_harness() -> None:
    """Harnesses one after another on the same gateway (it drains and starts again)."""
    gateway = build_demo_gateway()
    for _ in range(3):
        async with InProcessGateway(gateway) as api:
            client = await api.connect()
            assert await client.call("user_service", "list_users")
            assert await client.call("report_service", "generate_report", {"delay_ms": 1})
    with pytest.raises(UsageError, match="start the InProcessGateway first"):
        InProcessGateway(gateway).client()


async def test_closing_the_client_ends_its_connection() -> None:
    """A client that leaves is gone from the gateway's connections."""
    gateway = build_demo_gateway()
    async with InProcessGateway(gateway) as api:
        client = await api.connect()
        assert len(gateway.connections) == 1
        await client.close()
        for _ in range(100):
            if not gateway.connections:
                break
            await asyncio.sleep(0.01)
        assert not gateway.connections


async def test_undeclared_pydantic_results_and_relay_error_details() -> None:
    """A pydantic model returned without a declared type is encoded anyway; an error's
    details (a relay error's code) reach the client's exception."""
    import pydantic

    from genapi import ApiError

    class Model(pydantic.BaseModel):
        name: str

    svc = Service("loose")

    @svc.function()
    async def undeclared():  # type: ignore[no-untyped-def]
        return Model(name="x")

    gateway = Gateway([svc])
    from genapi.relay import add_relay

    add_relay(gateway)
    async with InProcessGateway(gateway) as api:
        client = await api.connect(user_id="u1")
        assert await client.call("loose", "undeclared") == {"name": "x"}
        async with api.http() as http:
            answer = await http.post("/api/loose/undeclared", json={})
            assert answer.json()["result"] == {"name": "x"}
        with pytest.raises(ApiError) as info:
            await client.call("relay", "send_message", {"group_id": "nope", "message": "x"})
        assert info.value.message == "Group not found"
        assert info.value.details == {"code": "not_found"}
