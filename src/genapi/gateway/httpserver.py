"""genapi's HTTP/1.1 driver: uvicorn's httptools protocol with bounds on request heads and
a deadline for request bodies.

uvicorn's httptools protocol has no limit on the size of a request's head (its
``h11_max_incomplete_event_size`` applies to the h11 protocol only) and no deadline for
it (``timeout_keep_alive`` runs only between requests), so a client can hold a connection
forever by trickling header bytes (slowloris) or make the server buffer a header line of
any size. This subclass adds both bounds, per request (keep-alive requests included):

* ``max_head_bytes`` — bytes received between the start of a request and the end of its
  headers; beyond, the server answers ``431 Request Header Fields Too Large`` and closes;
* ``head_timeout`` — seconds a connection may take to send a whole request head, from
  the moment it opens (or the next request begins); then it is closed.

* ``body_timeout`` — seconds a request may take to send its body once its head is in;
  then the connection is closed (a body trickled a byte at a time held a connection and
  its request task for as long as the client liked). The body's size is bounded by the
  gateway's own limits.
``genapi serve`` uses this protocol when httptools is installed (``uvicorn[standard]``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["GenapiHttpProtocol"]

logger = logging.getLogger("genapi.gateway")

_TOO_LARGE = (b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; "
              b"charset=utf-8\r\ncontent-length: 31\r\nconnection: close\r\n\r\n"
              b"Request header fields too large")


class GenapiHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with ``max_head_bytes``, ``head_timeout`` and
    ``body_timeout``."""

    #: Browsers send a few KB of headers; 16 KB leaves room for large cookies and tokens.
    max_head_bytes: int = 16 * 1024
    #: A client on a slow link sends a request head in well under a second.
    head_timeout: float = 10.0
    #: The gateway's bodies are JSON of at most a few MB: 30 s is a very slow link.
    body_timeout: float = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # a connection starts waiting for a request head
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None

    @classmethod
    def configured(cls, *, max_head_bytes: int, head_timeout: float,
                   body_timeout: float = 30.0) -> type[GenapiHttpProtocol]:
        """A subclass with these bounds (uvicorn instantiates the class it is given)."""
        return type(cls.__name__, (cls,), {"max_head_bytes": max_head_bytes,
                                           "head_timeout": head_timeout,
                                           "body_timeout": body_timeout})

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # A connection that never sends a complete head must not be held: the deadline
        # runs from the connection's start, not from its first byte.
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        # Checked after parsing: a chunk holding the end of the head and a body is not a
        # long head. The parser buffers at most one read beyond the bound.
        if self._in_head and self._head_bytes > self.max_head_bytes \
                and not self.transport.is_closing():
            logger.info("refusing a request head over %d bytes from %s", self.max_head_bytes,
                        self._peer())
            self._cancel_head_timer()
            self.transport.write(_TOO_LARGE)
            self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._in_head:  # the next request on a keep-alive connection
            self._in_head = True
            self._head_bytes = 0
            self._arm_head_timer()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._cancel_head_timer()
        super().on_headers_complete()
        if self._body_timer is None:
            self._body_timer = self.loop.call_later(self.body_timeout, self._body_timed_out)

    def on_message_complete(self) -> None:
        self._cancel_body_timer()
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        self._cancel_body_timer()  # the socket is the WebSocket protocol's from here
        super().handle_websocket_upgrade()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        self._cancel_body_timer()
        super().connection_lost(exc)

    def _cancel_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_timed_out(self) -> None:
        self._body_timer = None
        transport = self.transport
        if transport.is_closing() or transport.get_protocol() is not self:
            return  # closed already, or upgraded to a WebSocket
        logger.info("closing a connection from %s: request body not complete within %g s",
                    self._peer(), self.body_timeout)
        transport.close()

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            logger.info("closing a connection from %s: no complete request head within %g s",
                        self._peer(), self.head_timeout)
            self.transport.close()

    def _peer(self) -> str:
        client = self.client
        return f"{client[0]}:{client[1]}" if client else "an unknown peer"
