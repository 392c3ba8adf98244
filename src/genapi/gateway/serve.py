"""Running a gateway with uvicorn, with a graceful drain on shutdown.

Plain ``uvicorn`` closes every WebSocket (code 1012) before the application hears about
the shutdown, so calls in flight lose their answers. :func:`serve` stops accepting first,
lets the gateway drain (in-flight calls finish up to ``ConnectionLimits.drain_timeout``,
then sockets close with 1012 and phoenix.js reconnects), and only then lets uvicorn
finish.
"""

from __future__ import annotations

import socket
from typing import Any

import uvicorn

from .app import Gateway

__all__ = ["serve"]


class _DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, gateway: Gateway | None) -> None:
        super().__init__(config)
        self.gateway = gateway

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
    **uvicorn_options: Any,
) -> None:
    """Serve ``app`` (a :class:`~genapi.Gateway` or any ASGI app) until interrupted."""
    gateway = app if isinstance(app, Gateway) else None
    options: dict[str, Any] = {"ws_max_size": 16 * 1024 * 1024}
    if gateway is not None:
        options["ws_max_size"] = gateway.limits.max_frame_bytes
    options.update(uvicorn_options)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, **options)
    _DrainingServer(config, gateway).run()
