"""A raw Phoenix client for the durable-call tests: it records every ``api`` push by request
id, so a test can count the terminal responses a caller received."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from tests.support.phoenix_socket import JoinedSocket

TOPIC = "api:lobby"


def is_terminal(response: dict[str, Any]) -> bool:
    """An async call's final answer: not its ack (``async: true`` and successful)."""
    return not (response["async"] and response["success"])


class Caller(JoinedSocket):
    """One WebSocket of ``user_id`` joined to ``topic``; records the api pushes."""

    def __init__(self, base_url: str, user_id: str | None = "alice", *,
                 topic: str = TOPIC) -> None:
        params = "vsn=2.0.0" + (f"&user_id={user_id}" if user_id else "")
        super().__init__(base_url.replace("http", "ws", 1) + "/socket/websocket?" + params,
                         topic)
        self.pushes: dict[str, list[dict[str, Any]]] = {}
        self.replies: dict[str, dict[str, Any]] = {}
        self._changed = asyncio.Event()

    def on_frame(self, ref: str | None, event: str, payload: Any) -> None:
        if event == "phx_reply" and ref is not None:
            self.replies[ref] = payload
        elif event == "api":
            self.pushes.setdefault(payload["request_id"], []).append(payload)
        self._changed.set()

    async def push(self, request_id: str, service: str, request_type: str,
                   args: dict[str, Any] | None = None, **extra: Any) -> str:
        """Push one call; returns the push's ref (its phx_reply is ``replies[ref]``)."""
        ref = self.next_ref()
        await self.send_push(ref, {"request_id": request_id, "service": service,
                                   "request_type": request_type, "args": args or {},
                                   **extra})
        return ref

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"condition not met in {timeout} s; pushes {self.pushes}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.2))

    def terminals(self, request_id: str) -> list[dict[str, Any]]:
        """The terminal responses received for ``request_id``."""
        return [r for r in self.pushes.get(request_id, []) if is_terminal(r)]

    def acks(self, request_id: str) -> list[dict[str, Any]]:
        """The acks received for ``request_id``."""
        return [r for r in self.pushes.get(request_id, []) if not is_terminal(r)]

    async def terminal(self, request_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """Wait for the first terminal response of ``request_id``."""
        await self.wait_for(lambda: bool(self.terminals(request_id)), timeout)
        return self.terminals(request_id)[0]

    async def ack(self, request_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """Wait for the ack of ``request_id``."""
        await self.wait_for(lambda: bool(self.acks(request_id)), timeout)
        return self.acks(request_id)[0]

    async def call(self, request_id: str, service: str, request_type: str,
                   args: dict[str, Any] | None = None, timeout: float = 10.0,
                   **extra: Any) -> dict[str, Any]:
        """A sync call: push and wait for its (first) answer."""
        await self.push(request_id, service, request_type, args, **extra)
        await self.wait_for(lambda: bool(self.pushes.get(request_id)), timeout)
        return self.pushes[request_id][0]
