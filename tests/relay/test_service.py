"""The built-in relay functions through the executor: wire shapes, identity, errors."""

from __future__ import annotations

from typing import Any

import pytest

from genapi import Executor, Registry, Request, Response
from genapi.relay import (
    PRESENCE_REQUEST_ID,
    Endpoint,
    RelayError,
    RelayHub,
    RelayLimits,
    relay_service,
)
from genapi.relay.service import add_relay


class Conn:
    """A fake connection: an owner, and a sink recording the pushes it gets."""

    def __init__(self, user_id: str | None) -> None:
        self.user_id = user_id
        self.pushed: list[Response] = []
        self.calls = 0
        self.closing = False

    async def sink(self, response: Response) -> None:
        self.pushed.append(response)


class Api:
    """An executor serving the relay functions of one hub."""

    def __init__(self, hub: RelayHub | None = None) -> None:
        self.hub = hub or RelayHub()
        registry = Registry()
        registry.add_service(relay_service(self.hub))
        self.executor = Executor(registry)
        self.executor.on_owner_closed(self.hub.owner_closed)

    async def call(self, conn: Conn, request_type: str, *, http: bool = False,
                   **args: Any) -> tuple[Response, dict[str, Any]]:
        """Run a call as ``conn``; the response and the error's details."""
        conn.calls += 1
        request = Request(request_id=f"{conn.user_id}-{conn.calls}", service="relay",
                          request_type=request_type, args=args, user_id=conn.user_id)
        if http:  # as the HTTP endpoint calls: a queue's put, an owner nobody closes
            response, error = await self.executor.run(request, conn.sink, object())
        else:
            response, error = await self.executor.run(request, conn.sink, conn)
        assert response is not None
        return response, (error.details if error is not None else {})

    async def ok(self, conn: Conn, request_type: str, **args: Any) -> Any:
        response, _ = await self.call(conn, request_type, **args)
        assert response.success, response.error
        return response.result


async def test_wire_shapes_of_a_conversation() -> None:
    """create, join, send, presence, info and leave answer the documented shapes."""
    api = Api()
    alice, bob = Conn("alice"), Conn("bob")
    assert await api.ok(alice, "create_group", group_id="room") == {
        "group_id": "room", "group_type": "public", "status": "active", "role": "admin"}
    assert await api.ok(bob, "join_group", group_id="room") == {
        "group_id": "room", "status": "active", "role": "member", "offset": 0}
    sent = await api.ok(alice, "send_message", group_id="room", message={"text": "hi"})
    assert sent["status"] == "relayed"
    assert (sent["recipients_count"], sent["offset"]) == (2, 1)
    delivered = bob.pushed[-1]
    assert delivered.request_id == "alice-2"  # the sender's request id
    assert delivered.result == {"group_id": "room", "from_user_id": "alice",
                                "message": {"text": "hi"}, "timestamp": sent["timestamp"],
                                "offset": 1}
    diff = Response.sync(PRESENCE_REQUEST_ID, {
        "group_id": "room", "presence": "diff",
        "joins": {"bob": {"status": "active", "role": "member"}}, "leaves": {}})
    assert alice.pushed == [diff]  # flushed by the message, ahead of it
    assert bob.pushed == [diff, delivered]
    here = await api.ok(bob, "presence", group_id="room")
    assert here["count"] == 2
    assert set(here["members"][0]) == {"user_id", "role", "status", "joined_at",
                                       "connections"}
    info = await api.ok(bob, "group_info", group_id="room")
    assert {k: info[k] for k in ("group_id", "group_type", "persistent", "member_count",
                                 "online_count")} == {
        "group_id": "room", "group_type": "public", "persistent": False, "member_count": 2,
        "online_count": 2}
    assert await api.ok(bob, "leave_group", group_id="room") == {"group_id": "room",
                                                                 "left": True}


async def test_join_with_last_offset_answers_messages_and_recovered() -> None:
    """join_group with last_offset recovers what was missed while away."""
    api = Api()
    alice, bob = Conn("alice"), Conn("bob")
    await api.ok(alice, "create_group", group_id="room")
    await api.ok(bob, "join_group", group_id="room")
    await api.ok(alice, "send_message", group_id="room", message="one")
    api.executor.owner_closed(bob)
    await api.hub.idle()
    await api.ok(alice, "send_message", group_id="room", message="two")
    back = await api.ok(Conn("bob"), "join_group", group_id="room", last_offset=1)
    assert back["recovered"] is True and back["offset"] == 2
    assert [m["message"] for m in back["messages"]] == ["two"]
    assert set(back["messages"][0]) == {"group_id", "from_user_id", "message", "timestamp",
                                        "offset"}
    fresh = await api.ok(Conn("carol"), "join_group", group_id="room", last_offset=9)
    assert (fresh["messages"], fresh["recovered"]) == ([], False)


async def test_moderation_functions() -> None:
    """accept, mute and unmute answer the target's new status; refusals carry a code."""
    api = Api()
    admin, member = Conn("admin"), Conn("m")
    await api.ok(admin, "create_group", group_id="s", group_type="strict_private")
    assert (await api.ok(member, "join_group", group_id="s", last_offset=0)) == {
        "group_id": "s", "status": "pending", "role": "member", "messages": [],
        "recovered": False}
    response, details = await api.call(member, "send_message", group_id="s", message="x")
    assert response.error == "Pending membership: wait for acceptance"
    assert details == {"code": "pending"}
    for request_type, status in (("accept_member", "active"), ("mute_member", "muted"),
                                 ("unmute_member", "active")):
        assert await api.ok(admin, request_type, group_id="s", user_id="m") == {
            "group_id": "s", "user_id": "m", "status": status, "role": "member"}
    response, details = await api.call(member, "mute_member", group_id="s", user_id="admin")
    assert (response.error, details) == ("Only admins can mute members", {"code": "not_admin"})
    response, _ = await api.call(member, "delete_group", group_id="s")
    assert response.error == "Only admins can delete the group"
    assert await api.ok(admin, "delete_group", group_id="s") == {"group_id": "s",
                                                                 "deleted": True}


async def test_identity_comes_from_the_connection_not_the_arguments() -> None:
    """Anonymous callers are refused; a user_id argument never changes who acts."""
    api = Api()
    anonymous = Conn(None)
    response, _ = await api.call(anonymous, "create_group", group_id="g")
    assert response.error == "Authentication required"
    mallory = Conn("mallory")
    await api.ok(Conn("alice"), "create_group", group_id="g", group_type="private")
    await api.ok(mallory, "join_group", group_id="g")
    response, _ = await api.call(mallory, "accept_member", group_id="g", user_id="mallory")
    assert response.error == "Only active members can accept members"
    response, _ = await api.call(mallory, "send_message", group_id="g", message="x",
                                 from_user_id="alice")
    assert response.error == "Unknown argument: from_user_id"


async def test_argument_and_size_errors() -> None:
    """Bad offsets, oversized messages and group ids are refused with precise messages."""
    api = Api(RelayHub(limits=RelayLimits(max_message_bytes=16, max_group_id_bytes=8)))
    alice = Conn("alice")
    await api.ok(alice, "create_group", group_id="g")
    for args, error in (
        ({"group_id": "g", "last_offset": -1},
         "Invalid argument last_offset: expected a non-negative integer"),
        ({"group_id": "g", "last_offset": 1.5},
         "Invalid argument last_offset: expected a non-negative integer"),
        ({"group_id": "g", "last_offset": "1"}, "Invalid argument last_offset: expected num"),
        ({"group_id": "far-too-long"}, "Invalid argument group_id: exceeds max 8 bytes"),
    ):
        response, _ = await api.call(Conn("bob"), "join_group", **args)
        assert response.error == error
    response, _ = await api.call(alice, "send_message", group_id="g", message="x" * 20)
    assert response.error == "Message exceeds max 16 bytes"
    response, _ = await api.call(alice, "send_message", group_id="g", message=None)
    assert response.error == "Invalid argument message: must not be null"
    response, _ = await api.call(alice, "create_group", group_id="h", group_type="open")
    assert response.error == (
        "Invalid group type: open (expected public, private or strict_private)")
    assert (await api.ok(Conn("bob"), "join_group", group_id="g", last_offset=0.0))[
        "recovered"] is True


async def test_membership_needs_a_connection() -> None:
    """Over HTTP (no sink) create and join are refused; sending works."""
    api = Api()
    alice = Conn("alice")
    await api.ok(alice, "create_group", group_id="g")
    response, details = await api.call(Conn("bob"), "join_group", http=True, group_id="g")
    assert response.error == "Relay groups need a WebSocket connection"
    assert details == {"code": "no_connection"}
    response, _ = await api.call(alice, "send_message", http=True, group_id="g", message="m")
    assert response.success


async def test_a_closing_connection_does_not_become_a_member() -> None:
    """A connection already closing when its join lands is not registered."""
    api = Api()
    await api.ok(Conn("alice"), "create_group", group_id="g")
    bob = Conn("bob")
    bob.closing = True
    response, details = await api.call(bob, "join_group", group_id="g")
    assert (response.error, details) == ("The connection closed", {"code": "no_connection"})
    response, _ = await api.call(bob, "create_group", group_id="h")
    assert response.error == "The connection closed"
    assert list((await api.hub.info("g")).members) == ["alice"]
    assert api.hub.local.groups_of(bob) == 0
    with pytest.raises(RelayError):
        await api.hub.info("h")


async def test_unknown_groups() -> None:
    """Every function answers Group not found for an unknown group."""
    api = Api()
    alice = Conn("alice")
    for request_type, args in (("join_group", {}), ("leave_group", {}), ("group_info", {}),
                               ("presence", {}), ("delete_group", {}),
                               ("send_message", {"message": "m"}),
                               ("accept_member", {"user_id": "b"})):
        response, details = await api.call(alice, request_type, group_id="nope", **args)
        assert (response.error, details) == ("Group not found", {"code": "not_found"})


async def test_add_relay_wires_a_gateway_like_host() -> None:
    """add_relay registers the service and the owner-closed cleanup."""

    class Host:
        def __init__(self) -> None:
            self.registry = Registry()
            self.executor = Executor(self.registry)

    host = Host()
    hub = add_relay(host)
    assert isinstance(hub, RelayHub)
    assert host.registry.resolve("relay", "send_message", None) is not None
    owner = Conn("alice")
    await hub.create("g", "public", "alice", Endpoint(owner.sink, owner=owner))
    host.executor.owner_closed(owner)
    await hub.idle()
    with pytest.raises(RelayError):
        await hub.info("g")
