"""The relay behind a real gateway: pushes on the caller's topic, cleanup on socket close."""

from __future__ import annotations

from typing import Any

import httpx
import websockets

from genapi import Gateway, InsecureDemoAuthenticator
from genapi.relay import PRESENCE_REQUEST_ID, add_relay
from tests.gateway.conftest import RawClient, ws_url
from tests.support.servers import running_app


async def next_push(client: RawClient, topic: str = "api:lobby") -> Any:
    """The next api push on ``topic`` (skipping replies)."""
    while True:
        frame = await client.recv()
        if frame[3] == "api" and frame[2] == topic:
            return frame[4]


async def next_message(client: RawClient, topic: str = "api:lobby") -> Any:
    """The next api push on ``topic`` that is not a presence notice."""
    while True:
        push = await next_push(client, topic)
        if push["request_id"] != PRESENCE_REQUEST_ID:
            return push


def request(request_id: str, request_type: str, **args: Any) -> dict[str, Any]:
    """A relay call payload."""
    return {"request_id": request_id, "service": "relay", "request_type": request_type,
            "args": args}


async def test_messages_and_cleanup_over_websockets(driver: str) -> None:
    """B gets A's message on its topic; when B's socket closes, A gets the leave notice."""
    gateway = Gateway(authenticator=InsecureDemoAuthenticator())
    hub = add_relay(gateway)
    async with running_app(gateway, driver=driver) as url:
        async with websockets.connect(ws_url(url, "vsn=2.0.0&user_id=alice")) as ws_a:
            alice = RawClient(ws_a)
            await alice.join()
            push, reply = await alice.call(request("a1", "create_group", group_id="g"))
            assert push["success"] and reply["status"] == "ok"
            async with websockets.connect(ws_url(url, "vsn=2.0.0&user_id=bob")) as ws_b:
                bob = RawClient(ws_b)
                await bob.join("api:room")
                bob_topic_push = await bob.push(request("b1", "join_group", group_id="g"),
                                                topic="api:room")
                assert bob_topic_push
                joined = await next_push(bob, "api:room")
                assert joined["result"]["status"] == "active"
                notice = await next_push(alice)
                assert notice["request_id"] == PRESENCE_REQUEST_ID
                assert notice["result"] == {
                    "group_id": "g", "presence": "diff", "leaves": {},
                    "joins": {"bob": {"status": "active", "role": "member"}}}
                push, _ = await alice.call(request("a2", "send_message", group_id="g",
                                                   message="hello"))
                assert push["result"]["recipients_count"] == 2
                delivered = await next_message(bob, "api:room")
                assert delivered["request_id"] == "a2"
                assert delivered["result"]["message"] == "hello"
            left = await next_push(alice)
            assert left["result"] == {"group_id": "g", "presence": "diff", "joins": {},
                                      "leaves": {"bob": {"status": None, "role": "member"}}}
            await hub.idle()
            assert list((await hub.info("g")).members) == ["alice"]
        await hub.idle()
    await gateway.aclose()


async def test_joining_over_http_is_refused() -> None:
    """The HTTP API has no connection to deliver to."""
    gateway = Gateway(authenticator=InsecureDemoAuthenticator())
    add_relay(gateway)
    async with running_app(gateway) as url, httpx.AsyncClient(base_url=url) as client:
        answer = await client.post("/api/relay/create_group", json={"group_id": "g"},
                                   headers={"authorization": "Bearer alice"})
    body = answer.json()
    assert body["error"] == "Relay groups need a WebSocket connection"


async def test_leaving_the_topic_leaves_its_groups(driver: str) -> None:
    """Memberships belong to the channel they were made on: phx_leave of that topic leaves
    the group (a leave notice for the others) while the socket stays open."""
    gateway = Gateway(authenticator=InsecureDemoAuthenticator())
    hub = add_relay(gateway)
    async with (
        running_app(gateway, driver=driver) as url,
        websockets.connect(ws_url(url, "vsn=2.0.0&user_id=alice")) as ws_a,
        websockets.connect(ws_url(url, "vsn=2.0.0&user_id=bob")) as ws_b,
    ):
        alice, bob = RawClient(ws_a), RawClient(ws_b)
        await alice.join()
        await alice.call(request("a1", "create_group", group_id="g"))
        await bob.join()  # api:lobby stays joined throughout
        await bob.join("api:room")
        await bob.push(request("b1", "join_group", group_id="g"), topic="api:room")
        assert (await next_push(bob, "api:room"))["result"]["status"] == "active"
        assert list((await next_push(alice))["result"]["joins"]) == ["bob"]
        await bob.send([bob.join_ref, "99", "api:room", "phx_leave", {}])
        left = await next_push(alice)
        assert list(left["result"]["leaves"]) == ["bob"]
        await hub.idle()
        assert list((await hub.info("g")).members) == ["alice"]
        await bob.join("api:room")  # the same socket joins the topic and the group again
        await bob.push(request("b2", "join_group", group_id="g"), topic="api:room")
        assert (await next_message(bob, "api:room"))["result"]["status"] == "active"
        await alice.call(request("a2", "send_message", group_id="g", message="again"))
        assert (await next_message(bob, "api:room"))["result"]["message"] == "again"
    await gateway.aclose()
