"""The examples of the original library's walkthrough, written the genapi way.

``user_service`` uses the decorator form with inferred argument types; ``blog_service`` and
``search_service`` spell their argument specs out, as a ``FunConfig`` would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

from ..errors import ApiError, ArgumentError
from ..execution.context import CallContext
from ..execution.streams import StreamHelper
from ..functions.inference import MaxBytes
from ..functions.service import Service
from ..messages import Request

__all__ = [
    "SERVICES",
    "USERS",
    "admin_service",
    "blog_service",
    "event_service",
    "profile_of",
    "report_service",
    "search_service",
    "user_service",
]

#: The user directory. Section 1 of the walkthrough defines users "1" and "2"; section 8's
#: versioned ``get_user`` asks for user "123" — the directory entry of the account
#: ``user_123`` that sections 3 and 15 authenticate as (see :func:`profile_of`).
USERS: list[dict[str, str]] = [
    {"id": "1", "name": "Alice", "email": "alice@example.com"},
    {"id": "2", "name": "Bob", "email": "bob@example.com"},
    {"id": "123", "name": "Carol", "email": "carol@example.com"},
]

user_service = Service("user_service")


def _find_user(user_id: str) -> dict[str, str]:
    for user in USERS:
        if user["id"] == user_id:
            return user
    raise ApiError("User not found")


def profile_of(account: str) -> dict[str, Any]:
    """The profile of an authenticated account.

    The walkthrough's callers are accounts (``user_123``, ``user_42``…) while its directory
    ids are ``"1"``, ``"2"``, ``"123"``; an account ``user_<id>`` (or ``<id>``) is directory
    user ``<id>``. Every authenticated account has a profile (the permission check has
    already decided who may read it), with the directory's name and email when linked.
    """
    linked = next((u for u in USERS if account in (u["id"], f"user_{u['id']}")), None)
    return {
        "user_id": account,
        "id": linked["id"] if linked else None,
        "name": linked["name"] if linked else None,
        "email": linked["email"] if linked else None,
        "profile": {"bio": "", "theme": "light"},
    }


@user_service.function()
async def list_users() -> list[dict[str, str]]:
    """Every user."""
    return USERS


@user_service.function("get_user")
async def get_user(user_id: str) -> dict[str, str]:
    """One user by id (the unversioned default)."""  # walkthrough sections 1, 2, 15
    return _find_user(user_id)


@user_service.function("get_user", version="1.0.0")
async def get_user_v1(id: str | None = None, user_id: str | None = None) -> dict[str, str]:
    """Version 1.0.0: every field; give the user's ``id`` (or ``user_id``)."""
    # The walkthrough's section 8 registers 1.0.0 with "id", sections 1 and 7 with
    # "user_id": it disagrees with itself, so either is accepted (exactly one).
    if (id is None) == (user_id is None):
        raise ArgumentError("Give exactly one of the arguments id and user_id")
    return _find_user(id if id is not None else user_id or "")


@user_service.function(
    "get_user",
    version="2.0.0",
    arg_types={"id": "string", "fields": ("list_string", {"max_items": 10})},
    arg_orders=["id", "fields"],
)
async def get_user_v2(id: str, fields: list[str]) -> dict[str, str]:
    """Version 2.0.0: only the requested fields."""  # walkthrough section 8
    user = _find_user(id)
    return {k: v for k, v in user.items() if k in fields}


@user_service.function(check_permission=("arg", "user_id"))
async def get_user_profile(user_id: str) -> dict[str, Any]:
    """A user's own profile: callers reach only their own."""  # section 3, arg-based
    return profile_of(user_id)


@user_service.function(check_permission="any_authenticated")
async def get_profile(call: CallContext) -> dict[str, Any]:
    """The caller's own profile (any authenticated caller)."""
    # walkthrough section 3, "Any authenticated": the account comes from the authenticated
    # connection, never from the payload
    return profile_of(call.request.user_id or "")


@user_service.function(check_permission=("role", ["admin"]))
async def delete_user(user_id: str) -> dict[str, Any]:
    """Admins only. (The demo does not really delete.)"""
    _find_user(user_id)
    return {"deleted": user_id}


#: Section 3's role-based and custom-callback examples live in ``admin_service``.
admin_service = Service("admin_service")


@admin_service.function("delete_user", check_permission=("role", ["admin"]))
async def admin_delete_user(user_id: str) -> dict[str, Any]:
    """Admins only. (The demo does not really delete.)"""  # section 3, role-based
    _find_user(user_id)
    return {"deleted": user_id}


def authorized(request: Request, _fun_config: Any) -> bool:
    """Section 3's ``MyApp.authorized?``: the demo lets callers with the ``admin`` or
    ``ops`` role run admin actions (the callback sees the trusted request)."""
    return not {"admin", "ops"}.isdisjoint(request.user_roles or ())


@admin_service.function("admin_action", permission_callback=authorized)
async def admin_action(call: CallContext) -> dict[str, Any]:
    """An admin action for callers the permission callback allows; says who acted."""
    return {"done": True, "by": call.request.user_id}


blog_service = Service("blog_service")


async def create_post(
    title: str, body: str, tags: list[str], published: bool, metadata: dict[str, Any]
) -> dict[str, Any]:
    """Create a post (echoed back with an id)."""
    return {
        "id": "post_1",
        "title": title,
        "body": body,
        "tags": tags,
        "published": published,
        "metadata": metadata,
    }


blog_service.add(
    create_post,
    "create_post",
    arg_types={
        "title": {"type": "string", "max_bytes": 200},
        "body": {"type": "string", "max_bytes": 50_000},
        "tags": {"type": "list_string", "max_items": 10, "max_item_bytes": 50},
        "published": {"type": "boolean", "default_value": False},
        "metadata": {
            "type": "map",
            "max_items": 50,
            "required": ["author"],
            "accept": ["author", "category", "thumbnail"],
        },
    },
    arg_orders=["title", "body", "tags", "published", "metadata"],
)

search_service = Service("search_service")

_DOCUMENTS = [f"document {i} about {topic}" for i, topic in
              enumerate(["python", "elixir", "phoenix", "asyncio", "nats"] * 20)]


async def search(params: dict[str, Any]) -> dict[str, Any]:
    """Full-text search over the demo documents; receives one map of arguments."""
    hits = [d for d in _DOCUMENTS if params["query"] in d]
    offset, limit = int(params["offset"]), int(params["limit"])
    return {"total": len(hits), "results": hits[offset : offset + limit]}


search_service.add(
    search,
    "search",
    arg_types={
        "query": {"type": "string", "max_bytes": 500},
        "limit": {"type": "num", "default_value": 20},
        "offset": {"type": "num", "default_value": 0},
    },
    arg_orders="map",
)

report_service = Service("report_service")


@report_service.function(response_type="async", version="1.0.0", timeout=60_000)
async def generate_report(format: Annotated[str, MaxBytes(10)] = "pdf",
                          delay_ms: int = 3000) -> dict[str, str]:
    """Long work (about 3 s): the caller gets an ack at once and the result later."""
    await asyncio.sleep(min(max(delay_ms, 0), 30_000) / 1000)
    return {"report_url": f"https://example.com/reports/123.{format}"}


event_service = Service("event_service")


@event_service.function(response_type="stream", version="1.0.0", timeout=60_000)
async def stream_events(stream: StreamHelper[dict[str, Any]], interval_ms: int = 500) -> None:
    """Ten ticks, then a last chunk with the total."""
    for number in range(1, 11):
        await stream.send_result({"event": "tick", "number": number})
        await asyncio.sleep(min(max(interval_ms, 0), 5000) / 1000)
    await stream.send_last_result({"event": "done", "total": 10})


@event_service.function(response_type="stream", timeout=None)
async def ticker(interval_ms: int = 500, count: int = 1000) -> AsyncIterator[dict[str, int]]:
    """A long stream (one tick per interval): cancel it with the "cancel" event."""
    for number in range(1, min(max(count, 1), 100_000) + 1):
        yield {"tick": number}
        await asyncio.sleep(min(max(interval_ms, 1), 60_000) / 1000)


SERVICES: list[Service] = [
    user_service,
    admin_service,
    blog_service,
    search_service,
    report_service,
    event_service,
]
