"""What the client needs of a WebSocket, and the real one (``websockets``).

A :data:`Connector` opens a connection to a URL with extra headers and yields a
:class:`WireSocket`; :func:`websockets_connector` is the default. ``genapi.testing``
passes an in-process connector that drives a gateway's ASGI app directly (no port).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Protocol

from websockets.asyncio.client import connect

__all__ = ["Connector", "WireSocket", "websockets_connector"]


class WireSocket(Protocol):
    """An open WebSocket: iterate it for incoming messages, send, close."""

    def __aiter__(self) -> AsyncIterator[str | bytes]:
        """Incoming messages until the connection closes."""

    async def send(self, message: str | bytes) -> None:
        """Send one message."""

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection."""


#: ``connector(url, headers)`` → an async context manager yielding a :class:`WireSocket`;
#: it raises ``OSError`` (or a ``websockets`` exception) when it cannot connect.
Connector = Callable[[str, Mapping[str, str]],
                     contextlib.AbstractAsyncContextManager[WireSocket]]


@contextlib.asynccontextmanager
async def websockets_connector(url: str, headers: Mapping[str, str]
                               ) -> AsyncIterator[WireSocket]:
    """A real WebSocket connection (the ``websockets`` library)."""
    async with connect(url, additional_headers=dict(headers), max_size=None) as ws:
        yield ws
