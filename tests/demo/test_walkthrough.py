"""The original walkthrough's examples, through the demo gateway, with genapi.testing: real
in-process clients (one identity each) speaking the Phoenix protocol to the gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from genapi import (
    ApiError,
    ArgumentError,
    AuthenticationRequired,
    Client,
    FunctionNotFound,
    PermissionDenied,
)
from genapi.demo.app import build_demo_gateway
from genapi.demo.walkthrough import get_user, list_users
from genapi.testing import InProcessGateway


@pytest.fixture
async def api() -> AsyncIterator[InProcessGateway]:
    async with InProcessGateway(build_demo_gateway()) as running:
        yield running


@pytest.fixture
async def client(api: InProcessGateway) -> Client:
    """An anonymous client."""
    return await api.connect()


async def test_list_users(client: Client) -> None:
    """list_users returns every user (called by name, and by function object)."""
    users = await client.call("user_service", "list_users")
    assert [u["name"] for u in users] == ["Alice", "Bob", "Carol"]
    assert await client.call(list_users) == users


async def test_get_user_found_and_not_found(client: Client) -> None:
    """get_user returns the user, or an error for an unknown id."""
    assert (await client.call(get_user, user_id="1"))["name"] == "Alice"
    with pytest.raises(ApiError, match=r"^User not found$"):
        await client.call("user_service", "get_user", {"user_id": "nonexistent"})


async def test_get_user_missing_argument(client: Client) -> None:
    """The walkthrough's validation example: the function is never called; the error
    lists every problem with its path."""
    with pytest.raises(ArgumentError, match=r"^Missing required argument: user_id$") as info:
        await client.call("user_service", "get_user", {})
    assert info.value.details == {"errors": [
        {"path": ["user_id"], "message": "Missing required argument: user_id"}]}


async def test_get_user_versions(client: Client) -> None:
    """Version 2.0.0 filters fields (by ``id``, as in the walkthrough's section 8); 1.0.0
    returns all (by ``id`` or ``user_id``: the walkthrough uses both); no version uses the
    default."""
    v2 = await client.call("user_service", "get_user",
                           {"id": "123", "fields": ["name", "email"]}, version="2.0.0")
    assert v2 == {"name": "Carol", "email": "carol@example.com"}
    with pytest.raises(ArgumentError, match=r"^Unknown argument: user_id$"):
        await client.call("user_service", "get_user",
                          {"user_id": "1", "fields": ["name"]}, version="2.0.0")
    v1 = await client.call("user_service", "get_user", {"user_id": "1"}, version="1.0.0")
    assert v1["id"] == "1"
    assert await client.call("user_service", "get_user", {"id": "1"}, version="1.0.0") == v1
    for both_or_neither in ({}, {"id": "1", "user_id": "1"}):
        with pytest.raises(ApiError, match="exactly one of the arguments id and user_id"):
            await client.call("user_service", "get_user", both_or_neither, version="1.0.0")
    with pytest.raises(FunctionNotFound, match=r"known versions: 1\.0\.0, 2\.0\.0"):
        await client.call("user_service", "get_user", {"user_id": "1"}, version="3.0.0")


async def test_create_post_extended_constraints(client: Client) -> None:
    """create_post applies the extended constraints and defaults."""
    args = {"title": "Hello", "body": "World", "tags": ["a", "b"],
            "metadata": {"author": "al", "category": "x"}}
    ok = await client.call("blog_service", "create_post", args)
    assert ok["published"] is False
    cases = [
        ({"title": "t" * 201}, "Invalid argument title: exceeds max 200 bytes"),
        ({"tags": ["x"] * 11}, "Invalid argument tags: exceeds max 10 items"),
        ({"tags": ["x" * 51]}, "Invalid argument tags: item 0 exceeds max 50 bytes"),
        ({"metadata": {"category": "x"}},
         "Invalid argument metadata: missing required keys: author"),
        ({"metadata": {"author": "a", "age": 3}},
         "Invalid argument metadata: unexpected keys: age"),
        ({"published": "yes"}, "Invalid argument published: expected boolean"),
    ]
    for change, message in cases:
        with pytest.raises(ArgumentError) as info:
            await client.call("blog_service", "create_post", {**args, **change})
        assert info.value.message == message


async def test_every_create_post_problem_is_listed(client: Client) -> None:
    """Several wrong arguments: the first is the message, all are in the details."""
    with pytest.raises(ArgumentError) as info:
        await client.call("blog_service", "create_post",
                          {"title": 5, "tags": "x", "metadata": {}, "extra": 1})
    assert [e["message"] for e in info.value.details["errors"]] == [
        "Unknown argument: extra",
        "Invalid argument title: expected string",
        "Missing required argument: body",
        "Invalid argument tags: expected list",
        "Invalid argument metadata: missing required keys: author",
    ]


async def test_search_map_arguments(client: Client) -> None:
    """search receives one map with defaults limit 20 and offset 0."""
    result = await client.call("search_service", "search", {"query": "python"})
    assert result["total"] == 20
    assert len(result["results"]) == 20
    page = await client.call("search_service", "search",
                             {"query": "python", "limit": 5, "offset": 18})
    assert len(page["results"]) == 2


async def test_get_user_profile_arg_permission(api: InProcessGateway, client: Client) -> None:
    """Users reach only their own profile; anonymous callers must authenticate."""
    one = await api.connect(user_id="1")
    assert (await one.call("user_service", "get_user_profile", {"user_id": "1"}))["profile"]
    with pytest.raises(PermissionDenied):
        await one.call("user_service", "get_user_profile", {"user_id": "2"})
    with pytest.raises(AuthenticationRequired):
        await client.call("user_service", "get_user_profile", {"user_id": "1"})


async def test_walkthrough_accounts_have_profiles(api: InProcessGateway) -> None:
    """Section 3's callers: user_123 reads its own profile (linked to directory user
    "123"), not user_999's; get_profile answers any authenticated caller with its own."""
    user_123 = await api.connect(user_id="user_123")
    own = await user_123.call("user_service", "get_user_profile", {"user_id": "user_123"})
    assert (own["user_id"], own["id"], own["name"]) == ("user_123", "123", "Carol")
    with pytest.raises(PermissionDenied):
        await user_123.call("user_service", "get_user_profile", {"user_id": "user_999"})
    user_42 = await api.connect(user_id="user_42")
    assert (await user_42.call("user_service", "get_profile"))["user_id"] == "user_42"


async def test_admin_service_role_and_callback(api: InProcessGateway) -> None:
    """Section 3's admin_service: delete_user by role, admin_action by a callback."""
    admin = await api.connect(user_id="user_42", roles=["admin", "editor"])
    assert await admin.call("admin_service", "delete_user", {"user_id": "2"}) == {
        "deleted": "2"}
    assert await admin.call("admin_service", "admin_action") == {"done": True,
                                                                  "by": "user_42"}
    viewer = await api.connect(user_id="user_7", roles=["viewer"])
    for request_type, args in (("delete_user", {"user_id": "2"}), ("admin_action", {})):
        with pytest.raises(PermissionDenied):
            await viewer.call("admin_service", request_type, args)


async def test_delete_user_admin_role(api: InProcessGateway) -> None:
    """Only callers with the admin role may delete users."""
    admin = await api.connect(user_id="u", roles=["admin", "editor"])
    assert await admin.call("user_service", "delete_user", {"user_id": "2"}) == {
        "deleted": "2"}
    viewer = await api.connect(user_id="u", roles=["viewer"])
    with pytest.raises(PermissionDenied):
        await viewer.call("user_service", "delete_user", {"user_id": "2"})


async def test_generate_report_is_async(client: Client) -> None:
    """An async function: the client waits past the ack for the final result."""
    report = await client.call("report_service", "generate_report", {"delay_ms": 20})
    assert report == {"report_url": "https://example.com/reports/123.pdf"}


async def test_stream_events(client: Client) -> None:
    """Ten ticks, then the total as the last chunk; call() on a stream says to stream."""
    events: list[dict[str, Any]] = [
        e async for e in client.stream("event_service", "stream_events", {"interval_ms": 1})]
    assert [e["number"] for e in events[:10]] == list(range(1, 11))
    assert events[-1] == {"event": "done", "total": 10}
    with pytest.raises(Exception, match="is a stream function"):
        await client.call("event_service", "stream_events", {"interval_ms": 1})


async def test_chat_relay_pushes(api: InProcessGateway) -> None:
    """The demo's relay lobby: a message from one member is pushed to the others."""
    alice = await api.connect(user_id="alice")
    bob = await api.connect(user_id="bob")
    for member in (alice, bob):
        await member.call("relay", "join_group", {"group_id": "lobby"})
    sent = await alice.call("relay", "send_message", {"group_id": "lobby", "message": "hi"})
    assert sent["status"] == "relayed"
    push = await bob.next_push(timeout=5)
    if push.request_id == "relay:presence":  # the joins' presence diff comes first
        push = await bob.next_push(timeout=5)
    assert (push.result["from_user_id"], push.result["message"]) == ("alice", "hi")
