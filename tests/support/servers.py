"""Helpers that start real servers for tests: uvicorn in-process, on free loopback ports."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import uvicorn

from genapi.gateway.wsserver import GenapiWebSocketProtocol


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _QuietServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # tests own the signals
        return None

    @contextlib.contextmanager
    def capture_signals(self) -> Any:  # uvicorn >= 0.29 name
        yield


@contextlib.asynccontextmanager
async def running_app(
    app: Any, port: int | None = None, *, driver: str = "direct", **options: Any
) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn in this event loop; yields ``http://127.0.0.1:port``.

    ``driver="direct"`` uses genapi's WebSocket protocol (as ``genapi serve`` does);
    ``driver="asgi"`` uses uvicorn's own, so the gateway speaks plain ASGI messages.
    """
    port = port or free_port()
    if driver == "direct":
        options.setdefault("ws", GenapiWebSocketProtocol)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            lifespan="on", **options)
    server = _QuietServer(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
