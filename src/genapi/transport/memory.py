"""An in-memory multi-node transport, for tests and examples without a broker.

Each node is a :class:`FakeNode`: a name, an executor-like handler and switches that make
it fail the ways real nodes fail (down, slow, flaky)::

    transport = FakeTransport()
    transport.add(FakeNode("n1", handler))
    transport.nodes["n1"].down = True      # now answers NoResponders
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import CallTimeout, NoResponders
from ..messages import Request

__all__ = ["FakeNode", "FakeTransport"]

Handler = Callable[[str, Request], Awaitable[Any]]
StreamHandler = Callable[[str, Request], AsyncIterator[Any]]


@dataclass
class FakeNode:
    """One pretend node. ``handler(node_name, request)`` computes the result.

    ``down`` makes calls fail with NoResponders; ``delay`` (seconds) slows every call;
    ``fail_next`` fails that many upcoming calls with NoResponders; ``raises`` makes every
    call fail with that exception (a :class:`~genapi.NodeLost`, a
    :class:`~genapi.TransportUnavailable` …); ``calls`` counts the requests that reached
    the node.
    """

    name: str
    handler: Handler
    stream_handler: StreamHandler | None = None
    down: bool = False
    delay: float = 0.0
    fail_next: int = 0
    raises: Exception | None = None
    calls: list[str] = field(default_factory=list)

    def _admit(self, request: Request) -> None:
        if self.raises is not None:
            raise self.raises
        if self.down:
            raise NoResponders(f"no responders for node {self.name}")
        if self.fail_next > 0:
            self.fail_next -= 1
            raise NoResponders(f"node {self.name} dropped the request")
        self.calls.append(request.request_id)


class FakeTransport:
    """A :class:`~genapi.transport.Transport` over in-memory :class:`FakeNode` objects."""

    def __init__(self, *nodes: FakeNode) -> None:
        self.nodes: dict[str, FakeNode] = {}
        for node in nodes:
            self.add(node)

    def add(self, node: FakeNode) -> None:
        """Add (or replace) a node."""
        self.nodes[node.name] = node

    def _node(self, name: str, request: Request) -> FakeNode:
        node = self.nodes.get(name)
        if node is None:
            raise NoResponders(f"no responders for node {name}")
        node._admit(request)
        return node

    async def call(self, node: str, request: Request, *, timeout: float | None) -> Any:
        """Run the request on the named fake node."""
        target = self._node(node, request)
        try:
            async with asyncio.timeout(timeout):
                if target.delay:
                    await asyncio.sleep(target.delay)
                return await target.handler(node, request)
        except TimeoutError:
            raise CallTimeout(int((timeout or 0) * 1000)) from None

    async def stream(self, node: str, request: Request, *, timeout: float | None
                     ) -> AsyncIterator[Any]:
        """Yield the chunks of the named fake node's stream handler."""
        target = self._node(node, request)
        if target.stream_handler is None:
            raise NoResponders(f"node {node} serves no streams")
        async for chunk in target.stream_handler(node, request):
            yield chunk
