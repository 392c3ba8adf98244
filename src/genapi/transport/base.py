"""The transport interface the executor knows (NATS and the in-memory fake implement it).

A transport delivers a trusted :class:`~genapi.Request` (identity already set, arguments
already validated by the gateway) to a named node and brings back the result. It reports
failures with genapi's exceptions only:

* :class:`~genapi.ApiError` (any subclass) — the node ran the request and answered an
  error; its message reaches the client;
* :class:`~genapi.NoResponders` / :class:`~genapi.TransportError` — the node could not be
  reached or did not answer; the executor falls back to the next node;
* :class:`~genapi.CallTimeout` — no answer within ``timeout``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from ..messages import Request

__all__ = ["Transport"]


class Transport(Protocol):
    """Calls functions on remote nodes."""

    async def call(self, node: str, request: Request, *, timeout: float | None) -> Any:
        """Run ``request`` on ``node`` and return the function's result."""

    def stream(self, node: str, request: Request, *, timeout: float | None
               ) -> AsyncIterator[Any]:
        """Run a stream function on ``node``; yield its chunks in order.

        A last chunk carrying data is yielded like the others. Closing the iterator early
        (``aclose``) cancels the stream on the node.
        """
