"""A WebSocket to an ASGI app in the same event loop: no port, no server.

:func:`asgi_connector` opens a WebSocket the way a server would hand it to the app — an
ASGI ``websocket`` scope, ``websocket.connect``, then ``websocket.receive`` /
``websocket.send`` messages through two queues — and gives the client the other end. The
gateway runs exactly as under uvicorn (authenticator, admission, the Phoenix protocol,
the pipeline); only the bytes never leave the process. A refused upgrade (the gateway's
401 with its reason, a 404 for a wrong path) raises ``ConnectionRefusedError`` with the
status and body, which :class:`genapi.Client` reports as ``NotConnected``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from ..client import Connector, WireSocket

__all__ = ["AsgiWebSocket", "asgi_connector"]

ASGIApp = Callable[[MutableMapping[str, Any], Callable[[], Awaitable[Any]],
                    Callable[[MutableMapping[str, Any]], Awaitable[None]]], Awaitable[None]]

_ports = itertools.count(50_000)


class AsgiWebSocket:
    """The client end of a WebSocket served by an ASGI app in this event loop."""

    def __init__(self, app: ASGIApp, scope: MutableMapping[str, Any]) -> None:
        self._app = app
        self._scope = scope
        self._to_app: asyncio.Queue[MutableMapping[str, Any]] = asyncio.Queue()
        self._from_app: asyncio.Queue[MutableMapping[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.closed = False

    async def open(self) -> None:
        """Run the app's side and wait for it to accept (or refuse) the connection."""
        self._to_app.put_nowait({"type": "websocket.connect"})
        self._task = asyncio.get_running_loop().create_task(self._serve(),
                                                            name="genapi-testing-socket")
        first = await self._from_app.get()
        kind = first["type"]
        if kind == "websocket.accept":
            return
        self.closed = True
        if kind == "websocket.http.response.start":
            body = b""
            while True:
                part = await self._from_app.get()
                if part["type"] != "websocket.http.response.body":
                    break
                body += part.get("body", b"")
                if not part.get("more_body"):
                    break
            await self._finish()
            raise ConnectionRefusedError(f"HTTP {first['status']}: {body.decode()}")
        await self._finish()
        raise ConnectionRefusedError("HTTP 403: the app closed the connection before "
                                     "accepting it")

    async def _serve(self) -> None:
        try:
            await self._app(self._scope, self._receive, self._send)
        finally:
            self._from_app.put_nowait({"type": "websocket.close", "code": 1006})

    async def _receive(self) -> MutableMapping[str, Any]:
        return await self._to_app.get()

    async def _send(self, message: MutableMapping[str, Any]) -> None:
        self._from_app.put_nowait(message)

    async def __aiter__(self) -> AsyncIterator[str | bytes]:
        while not self.closed:
            message = await self._from_app.get()
            kind = message["type"]
            if kind == "websocket.send":
                text = message.get("text")
                yield text if text is not None else message.get("bytes") or b""
            elif kind == "websocket.close":
                self.closed = True

    async def send(self, message: str | bytes) -> None:
        """Deliver one message to the app."""
        if self.closed:
            raise ConnectionResetError("the connection is closed")
        key = "text" if isinstance(message, str) else "bytes"
        self._to_app.put_nowait({"type": "websocket.receive", key: message})

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Tell the app the client went away and wait for it to finish."""
        if not self.closed:
            self.closed = True
            self._to_app.put_nowait({"type": "websocket.disconnect", "code": code})
            self._from_app.put_nowait({"type": "websocket.close", "code": code})
        await self._finish()

    async def _finish(self) -> None:
        task = self._task
        if task is None or task.done():
            return
        try:
            async with asyncio.timeout(5.0):
                await asyncio.shield(task)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def asgi_connector(app: ASGIApp, *, client_ip: str = "127.0.0.1") -> Connector:
    """A :data:`genapi.client.Connector` that opens WebSockets to ``app`` in-process.

    The URL's path and query become the scope's (the host is ignored); each connection
    comes from ``client_ip`` with its own port.
    """

    @contextlib.asynccontextmanager
    async def connect(url: str, headers: Mapping[str, str]) -> AsyncIterator[WireSocket]:
        parts = urlsplit(url)
        path = parts.path or "/"
        scope: dict[str, Any] = {
            "type": "websocket", "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1", "scheme": "ws", "server": ("testserver", 80),
            "client": (client_ip, next(_ports)), "root_path": "", "path": path,
            "raw_path": path.encode(), "query_string": parts.query.encode(),
            "headers": [(b"host", b"testserver"),
                        *((k.lower().encode(), v.encode()) for k, v in headers.items())],
            "subprotocols": [], "state": {}, "extensions": {"websocket.http.response": {}},
        }
        socket = AsgiWebSocket(app, scope)
        await socket.open()
        try:
            yield socket
        finally:
            await socket.close()

    return connect
