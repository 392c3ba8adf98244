"""Running a gateway with uvicorn, with a graceful drain on shutdown.

:func:`serve` also installs genapi's WebSocket protocol (:mod:`genapi.gateway.wsserver`),
which lets the gateway read and write frames without per-message ASGI overhead.

Plain ``uvicorn`` closes every WebSocket (code 1012) before the application hears about
the shutdown, so calls in flight lose their answers. :func:`serve` stops accepting first,
lets the gateway drain (in-flight calls finish up to ``ConnectionLimits.drain_timeout``,
then sockets close with 1012 and phoenix.js reconnects), and only then lets uvicorn
finish. Its logs redact tokens (the access log's ``?token=…`` included) and show genapi's
own warnings (:mod:`genapi.gateway.logs`).

Edge bounds it sets, whichever WebSocket driver serves: uvicorn's ``ws_max_size`` is the
gateway's ``ConnectionLimits.max_frame_bytes`` (uvicorn's default, 16 MB, would let every
connection buffer a 16 MB message before the gateway's limit applied), request heads are
at most ``max_head_bytes`` and must arrive within ``head_timeout`` seconds, request
bodies within ``body_timeout`` seconds (:mod:`genapi.gateway.httpserver`).
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

from ..errors import ConfigError
from .app import Gateway
from .logs import log_config

__all__ = ["WS_DRIVERS", "serve"]

#: ``ws=`` choices: genapi's own frame layer, or uvicorn's websockets-sansio protocol.
WS_DRIVERS = ("genapi", "uvicorn")
#: Request-head bounds (:mod:`genapi.gateway.httpserver`): bytes, and seconds to send it.
DEFAULT_MAX_HEAD_BYTES = 16 * 1024
DEFAULT_HEAD_TIMEOUT = 10.0
DEFAULT_BODY_TIMEOUT = 30.0


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
    ws: str = "genapi",
    max_head_bytes: int = DEFAULT_MAX_HEAD_BYTES,
    head_timeout: float = DEFAULT_HEAD_TIMEOUT,
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
    **uvicorn_options: Any,
) -> None:
    """Serve ``app`` (a :class:`~genapi.Gateway` or any ASGI app) until interrupted.

    ``reuse_port`` binds with ``SO_REUSEPORT``: several processes serve one port, the
    kernel spreading connections over them (``genapi serve --workers``). ``ws`` picks the
    WebSocket driver (:data:`WS_DRIVERS`); ``max_head_bytes`` and ``head_timeout`` bound
    each request head (431, or the connection closed), ``body_timeout`` each request body
    (the connection closed).
    """
    config = uvicorn.Config(app, **server_options(
        app, host=host, port=port, log_level=log_level, ws=ws, max_head_bytes=max_head_bytes,
        head_timeout=head_timeout, body_timeout=body_timeout, **uvicorn_options))
    gateway = app if isinstance(app, Gateway) else None
    sockets = [_reuse_port_socket(host, port)] if reuse_port else None
    _DrainingServer(config, gateway).run(sockets=sockets)


def server_options(
    app: Any, *, host: str = "127.0.0.1", port: int = 4000, log_level: str = "info",
    ws: str = "genapi", max_head_bytes: int = DEFAULT_MAX_HEAD_BYTES,
    head_timeout: float = DEFAULT_HEAD_TIMEOUT, body_timeout: float = DEFAULT_BODY_TIMEOUT,
    **uvicorn_options: Any,
) -> dict[str, Any]:
    """The ``uvicorn.Config`` keyword arguments :func:`serve` uses (``app`` excluded)."""
    from .wsserver import GenapiWebSocketProtocol

    if ws not in WS_DRIVERS:
        raise ConfigError(f"ws must be one of {', '.join(WS_DRIVERS)}, not {ws!r}")
    options: dict[str, Any] = {
        "host": host, "port": port, "log_level": log_level,
        "ws": GenapiWebSocketProtocol if ws == "genapi" else "websockets-sansio",
        # Whichever driver reads frames, a message is refused (1009) at the gateway's
        # limit, before the server has buffered more than that.
        "ws_max_size": (app.limits.max_frame_bytes if isinstance(app, Gateway)
                        else 16 * 1024 * 1024),
        # h11 (when httptools is missing) has its own head bound; httptools has none, so
        # genapi's protocol adds it, and a deadline for the head (against slowloris).
        "h11_max_incomplete_event_size": max_head_bytes,
        "log_config": log_config(log_level),
    }
    if _has_httptools():
        from .httpserver import GenapiHttpProtocol

        options["http"] = GenapiHttpProtocol.configured(max_head_bytes=max_head_bytes,
                                                        head_timeout=head_timeout,
                                                        body_timeout=body_timeout)
    options.update(uvicorn_options)
    return options


def _has_httptools() -> bool:
    try:
        import httptools  # noqa: F401
    except ImportError:
        return False
    return True


def _reuse_port_socket(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    return sock
