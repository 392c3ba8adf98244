"""The built-in functions callers use to find their durable calls (service ``"durable"``).

==============  =========================================  ==================================
request_type    args                                       result
==============  =========================================  ==================================
get_result      request_id, or idempotency_key             found, call_id, request_id,
                                                           service, request_type, state,
                                                           attempts, max_attempts, result,
                                                           error, created_at, finished_at
pending         (none)                                     calls: the caller's pending and
                                                           running calls, newest first
==============  =========================================  ==================================

Both need an authenticated caller and only ever show the caller's own calls (a call of
someone else answers ``found: false``, as an unknown one does). ``get_result`` of a
finished call counts as its delivery: it is not pushed again on the next join.
"""

from __future__ import annotations

from typing import Any, Protocol

from ..errors import ArgumentError, AuthenticationRequired
from ..execution.context import CallContext
from ..functions.service import Service
from ..messages import MAX_IDEMPOTENCY_KEY_CHARS
from .calls import StoredCall, client_idempotency_key, default_idempotency_key
from .results import result_view

__all__ = ["durable_service"]


class _Calls(Protocol):
    """What the functions need of :class:`~genapi.durable.DurableCalls`."""

    async def find(self, key: str) -> StoredCall | None: ...

    async def unfinished(self, user_id: str, limit: int) -> list[StoredCall]: ...

    def fetched(self, call: StoredCall) -> None: ...

    @property
    def detail(self) -> bool: ...


def _user(call: CallContext) -> str:
    user_id = call.request.user_id
    if not user_id:
        raise AuthenticationRequired()
    return user_id


def durable_service(calls: _Calls, *, name: str = "durable") -> Service:
    """The built-in functions over ``calls`` (see the module docs)."""

    async def get_result(request_id: str | None, idempotency_key: str | None,
                         call: CallContext) -> dict[str, Any]:
        user_id = _user(call)
        if idempotency_key:
            key = client_idempotency_key(user_id, idempotency_key)
        elif request_id:
            key = default_idempotency_key(user_id, request_id)
        else:
            raise ArgumentError("Missing required argument: request_id or idempotency_key")
        stored = await calls.find(key)
        if stored is None or stored.user_id != user_id:
            return {"found": False, "request_id": request_id,
                    "idempotency_key": idempotency_key}
        if stored.state.terminal:
            calls.fetched(stored)
        return result_view(stored, detail=calls.detail)

    async def pending(call: CallContext) -> dict[str, Any]:
        found = await calls.unfinished(_user(call), 100)
        return {"calls": [{"call_id": c.id, "request_id": c.request_id,
                           "service": c.service, "request_type": c.request_type,
                           "state": c.state.value, "attempts": c.attempts,
                           "due_at": c.due_at, "created_at": c.created_at} for c in found]}

    service = Service(name, check_permission="any_authenticated", timeout=10_000)
    text = {"type": "string", "max_bytes": MAX_IDEMPOTENCY_KEY_CHARS * 4, "allow_nil": True,
            "default_value": None}
    service.add(get_result, "get_result",
                arg_types={"request_id": text, "idempotency_key": text},
                description="The state and result of one of the caller's durable calls.")
    service.add(pending, "pending", arg_types={},
                description="The caller's durable calls still pending or running.")
    return service
