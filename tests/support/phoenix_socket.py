"""A raw Phoenix v2 JSON client for tests that record what a gateway sends: one websockets
connection joined to one topic, every frame handed to :meth:`JoinedSocket.on_frame` by a
reader task. Subclasses decide what to keep."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from typing import Any, Self

import websockets


class JoinedSocket:
    """Joined to ``topic`` on entry (the join reply awaited), closed on exit."""

    def __init__(self, ws_url: str, topic: str) -> None:
        self.ws_url = ws_url
        self.topic = topic
        self.close_code: int | None = None
        self._ws: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._refs = itertools.count(2)
        self._joined = asyncio.Event()

    async def __aenter__(self) -> Self:
        self._ws = await websockets.connect(self.ws_url, max_size=None)
        self._reader = asyncio.create_task(self._read())
        await self._ws.send(json.dumps(["1", "1", self.topic, "phx_join", {}]))
        await asyncio.wait_for(self._joined.wait(), 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._reader, 5)

    def next_ref(self) -> str:
        return str(next(self._refs))

    async def send_push(self, ref: str, payload: dict[str, Any], event: str = "api") -> None:
        await self._ws.send(json.dumps(["1", ref, self.topic, event, payload]))

    def on_frame(self, ref: str | None, event: str, payload: Any) -> None:
        """Called for every frame received, the join's reply included."""

    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                _join_ref, ref, _topic, event, payload = json.loads(raw)
                self.on_frame(ref, event, payload)
                if event == "phx_reply" and ref == "1":
                    self._joined.set()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self._ws.close_code
