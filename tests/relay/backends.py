"""The two relay backends behind one interface, for the shared behavioural suite.

``memory``: hubs share one :class:`MemoryGroupStore` and one :class:`LocalBus` (one
process). ``nats``: each hub has its own NATS connection — as separate gateways do — and
they share a key-value bucket and a stream on a real nats-server, under a prefix of their
own so that tests sharing the server stay apart.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from genapi import Response
from genapi.relay import (
    PRESENCE_REQUEST_ID,
    Endpoint,
    GroupStore,
    LocalBus,
    MemoryGroupStore,
    RelayBus,
    RelayHub,
)
from genapi.relay.nats_bus import NatsRelayBus
from genapi.relay.nats_store import NatsGroupStore
from genapi.transport.nats.link import Link

_prefixes = itertools.count(1)


class Clock:
    """A settable wall clock."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Conn:
    """A fake connection: the owner of an endpoint that records what it is given."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.got: list[Response] = []

    def endpoint(self) -> Endpoint:
        return Endpoint(self.got.append, owner=self)

    def messages(self) -> list[Any]:
        return [r.result["message"] for r in self.got if r.request_id != PRESENCE_REQUEST_ID]

    def offsets(self) -> list[int]:
        return [r.result["offset"] for r in self.got if r.request_id != PRESENCE_REQUEST_ID]

    def notices(self) -> list[tuple[str, Any]]:
        """(kind, user_id) of each notice; a presence diff counts as its leaves, then its
        joins (a user is in one of them only)."""
        seen: list[tuple[str, Any]] = []
        for r in self.got:
            if r.request_id != PRESENCE_REQUEST_ID:
                continue
            if r.result["presence"] == "diff":
                seen += [("leave", user) for user in r.result["leaves"]]
                seen += [("join", user) for user in r.result["joins"]]
            else:
                seen.append((r.result["presence"], r.result.get("user_id")))
        return seen

    def others(self) -> list[tuple[str, Any]]:
        """:meth:`notices` about users other than this connection's own (``name``)."""
        return [n for n in self.notices() if n[1] != self.name]

    def presence(self) -> set[str]:
        """The present users, as a client applying every diff in turn sees them."""
        here: set[str] = set()
        for r in self.got:
            if r.request_id == PRESENCE_REQUEST_ID and r.result["presence"] == "diff":
                here -= set(r.result["leaves"])
                here |= set(r.result["joins"])
        return here


class Backend:
    """Makes hubs (gateways) that share state; ``settle()`` waits for deliveries."""

    def __init__(self, kind: str, nats_url: str | None, clock: Callable[[], float]) -> None:
        self.kind = kind
        self.nats_url = nats_url
        self.clock = clock
        self.prefix = f"t{next(_prefixes)}"
        self.hubs: list[RelayHub] = []
        self.links: list[Link] = []
        self._memory_store = MemoryGroupStore()
        self._memory_bus: LocalBus | None = None

    async def store(self, *, max_groups: int = 10_000) -> GroupStore:
        """A store on the shared state (a fresh connection for NATS)."""
        if self.kind == "memory":
            if max_groups != self._memory_store.max_groups:
                self._memory_store = MemoryGroupStore(max_groups=max_groups)
            return self._memory_store
        return NatsGroupStore(await self._link(), bucket=f"{self.prefix}_groups",
                              max_groups=max_groups, storage="memory")

    async def bus(self, *, history_size: int = 100,
                  history_age: float | None = 300.0) -> RelayBus:
        """A bus on the shared state."""
        if self.kind == "memory":
            if self._memory_bus is None:
                self._memory_bus = LocalBus(history_size=history_size,
                                            history_age=history_age, clock=self.clock)
            return self._memory_bus
        return NatsRelayBus(await self._link(), prefix=self.prefix, history_size=history_size,
                            history_age=history_age, storage="memory", clock=self.clock,
                            purge_delay=0.1)

    async def hub(self, *, history_size: int = 100, history_age: float | None = 300.0,
                  **options: Any) -> RelayHub:
        """A hub — one gateway — sharing groups and messages with the others."""
        hub = RelayHub(store=await self.store(),
                       bus=await self.bus(history_size=history_size, history_age=history_age),
                       clock=self.clock, **options)
        self.hubs.append(hub)
        return hub

    async def settle(self) -> None:
        """Wait until every hub has delivered everything published so far."""
        for hub in self.hubs:
            await hub.bus.settle()
        for hub in self.hubs:
            hub.flush_presence()  # diffs wait for their interval otherwise

    async def aclose(self) -> None:
        """Close the hubs and the connections."""
        for hub in self.hubs:
            await hub.aclose()
        for link in self.links:
            await link.close()

    async def _link(self) -> Link:
        assert self.nats_url is not None
        link = Link(self.nats_url, name=f"{self.prefix}-{len(self.links)}")
        await link.ready(timeout=10)
        self.links.append(link)
        return link
