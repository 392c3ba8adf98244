"""The original walkthrough's examples, through the executor (the demo's functions)."""

from __future__ import annotations

from typing import Any

import pytest

from genapi import Executor, Registry, Request, Response
from genapi.demo import SERVICES
from genapi.telemetry.events import Telemetry


@pytest.fixture
def executor() -> Executor:
    registry = Registry(telemetry=Telemetry())
    for service in SERVICES:
        registry.add_service(service)
    return Executor(registry)


async def call(executor: Executor, service: str, rt: str, args: dict[str, Any] | None = None,
               **identity: Any) -> Response:
    response = await executor.execute(
        Request(request_id="test_1", service=service, request_type=rt, args=args or {},
                **identity)
    )
    assert response is not None
    return response


async def test_list_users(executor: Executor) -> None:
    """list_users returns every user."""
    response = await call(executor, "user_service", "list_users")
    assert response.success
    assert [u["name"] for u in response.result] == ["Alice", "Bob"]


async def test_get_user_found_and_not_found(executor: Executor) -> None:
    """get_user returns the user, or an error for an unknown id."""
    found = await call(executor, "user_service", "get_user", {"user_id": "1"})
    assert found.success
    assert found.result["name"] == "Alice"
    missing = await call(executor, "user_service", "get_user", {"user_id": "nonexistent"})
    assert missing == Response.fail("test_1", "User not found")


async def test_get_user_missing_argument(executor: Executor) -> None:
    """The walkthrough's validation example: the function is never called."""
    response = await call(executor, "user_service", "get_user", {})
    assert response.success is False
    assert response.error == "Missing required argument: user_id"


async def test_get_user_versions(executor: Executor) -> None:
    """Version 2.0.0 filters fields; 1.0.0 returns all; no version uses the default."""
    v2 = await executor.execute(Request(
        request_id="r", service="user_service", request_type="get_user", version="2.0.0",
        args={"user_id": "1", "fields": ["name", "email"]}))
    assert v2 is not None
    assert v2.result == {"name": "Alice", "email": "alice@example.com"}
    v1 = await executor.execute(Request(
        request_id="r", service="user_service", request_type="get_user", version="1.0.0",
        args={"user_id": "1"}))
    assert v1 is not None
    assert v1.result["id"] == "1"


async def test_create_post_extended_constraints(executor: Executor) -> None:
    """create_post applies the extended constraints and defaults."""
    args = {"title": "Hello", "body": "World", "tags": ["a", "b"],
            "metadata": {"author": "al", "category": "x"}}
    ok = await call(executor, "blog_service", "create_post", args)
    assert ok.success
    assert ok.result["published"] is False
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
        response = await call(executor, "blog_service", "create_post", {**args, **change})
        assert response.error == message


async def test_search_map_arguments(executor: Executor) -> None:
    """search receives one map with defaults limit 20 and offset 0."""
    response = await call(executor, "search_service", "search", {"query": "python"})
    assert response.success
    assert response.result["total"] == 20
    assert len(response.result["results"]) == 20
    page = await call(executor, "search_service", "search",
                      {"query": "python", "limit": 5, "offset": 18})
    assert len(page.result["results"]) == 2


async def test_get_user_profile_arg_permission(executor: Executor) -> None:
    """Users reach only their own profile."""
    own = await call(executor, "user_service", "get_user_profile", {"user_id": "1"}, user_id="1")
    assert own.success
    other = await call(executor, "user_service", "get_user_profile", {"user_id": "2"},
                       user_id="1")
    assert other.error == "Permission denied"
    anonymous = await call(executor, "user_service", "get_user_profile", {"user_id": "1"})
    assert anonymous.error == "Authentication required"


async def test_delete_user_admin_role(executor: Executor) -> None:
    """Only callers with the admin role may delete users."""
    admin = await call(executor, "user_service", "delete_user", {"user_id": "2"},
                       user_id="u", user_roles=("admin", "editor"))
    assert admin.success
    assert admin.result == {"deleted": "2"}
    viewer = await call(executor, "user_service", "delete_user", {"user_id": "2"},
                        user_id="u", user_roles=("viewer",))
    assert viewer.error == "Permission denied"
