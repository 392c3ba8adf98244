"""The call in progress, for functions that work with the caller's connection.

Annotate a parameter with :class:`CallContext` to receive it::

    @chat.function()
    async def join_room(room: str, call: CallContext) -> dict:
        hub.join(room, call.request.user_id, deliver=call.sink, owner=call.owner)
        return {"joined": room}

``sink`` pushes further Responses to the caller (``None`` over plain HTTP); ``owner`` is
the connection that made the call (``None`` when there is none); ``node`` is the name of
the service node running the call (``None`` in the gateway's own process). Owners are announced to
:meth:`genapi.Executor.on_owner_closed` callbacks when they go away.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from ..messages import Request, Response

__all__ = ["CallContext"]


@dataclass(frozen=True, slots=True)
class CallContext:
    """The request being served, where later answers go, and who asked."""

    __genapi_inject__: ClassVar[str] = "call"

    request: Request
    sink: Callable[[Response], Awaitable[None]] | None = None
    owner: Any = None
    node: str | None = None
