"""Running a gateway with uvicorn, with a graceful drain on shutdown.

:func:`serve` also installs genapi's WebSocket protocol (:mod:`genapi.gateway.wsserver`),
which lets the gateway read and write frames without per-message ASGI overhead.

Plain ``uvicorn`` closes every WebSocket (code 1012) before the application hears about
the shutdown, so calls in flight lose their answers. :func:`serve` stops accepting first,
lets the gateway drain (in-flight calls finish up to ``ConnectionLimits.drain_timeout``,
then sockets close with 1012 and phoenix.js reconnects), and only then lets uvicorn
finish. Its logs redact tokens (the access log's ``?token=…`` included) and show genapi's
own warnings (:mod:`genapi.gateway.logs`).
"""

from __future__ import annotations

import contextlib
import gc
import signal
import socket
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn

from .app import Gateway
from .logs import log_config

__all__ = ["serve"]


class _DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, gateway: Gateway | None) -> None:
        super().__init__(config)
        self.gateway = gateway

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn re-raises the signal after shutting down, so the process "dies" of it
        # (exit 130 / -15); a requested, graceful stop is a success: exit 0.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        # Everything loaded so far lives as long as the process: keep it out of the
        # collector's way (fewer objects to scan on every full collection).
        gc.freeze()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()  # stop accepting before draining
        if self.gateway is not None and not self.force_exit:
            await self.gateway.drain()
        await super().shutdown(sockets)


def serve(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 4000,
    log_level: str = "info",
    reuse_port: bool = False,
    **uvicorn_options: Any,
) -> None:
    """Serve ``app`` (a :class:`~genapi.Gateway` or any ASGI app) until interrupted.

    ``reuse_port`` binds with ``SO_REUSEPORT``: several processes serve one port, the
    kernel spreading connections over them (``genapi serve --workers``).
    """
    from .wsserver import GenapiWebSocketProtocol

    gateway = app if isinstance(app, Gateway) else None
    options: dict[str, Any] = {"ws_max_size": 16 * 1024 * 1024, "ws": GenapiWebSocketProtocol}
    if gateway is not None:
        options["ws_max_size"] = gateway.limits.max_frame_bytes
    options["log_config"] = log_config(log_level)
    options.update(uvicorn_options)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, **options)
    sockets = [_reuse_port_socket(host, port)] if reuse_port else None
    _DrainingServer(config, gateway).run(sockets=sockets)


def _reuse_port_socket(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    return sock
