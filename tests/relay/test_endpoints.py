"""Local endpoints: the index by group and connection, and the fair fan-out."""

from __future__ import annotations

import asyncio

from genapi import Response
from genapi.relay import Endpoint
from genapi.relay.endpoints import LocalEndpoints

RESPONSE = Response.sync("r1", {"message": "hi"})


class Owner:
    """A stand-in for a connection."""


class Inbox:
    """A synchronous deliver that records what arrives."""

    def __init__(self) -> None:
        self.got: list[Response] = []

    def __call__(self, response: Response) -> None:
        self.got.append(response)


def test_index_by_group_and_owner() -> None:
    """Endpoints are found by group and by owner; connection ids are stable per owner."""
    local = LocalEndpoints("hub")
    owner = Owner()
    conn = local.add("a", "alice", Endpoint(Inbox(), owner=owner), receives=True)
    assert local.add("b", "alice", Endpoint(Inbox(), owner=owner), receives=True) == conn
    assert conn.startswith("hub:")
    assert local.has("a", owner) and local.groups_of(owner) == 2
    assert sorted(local.owner_groups(owner)) == [("a", "alice"), ("b", "alice")]
    assert local.discard("a", owner) == "alice"
    assert local.discard("a", owner) is None
    local.remove_user("b", "alice")
    assert local.conn_id(owner) is None and local.groups_of(owner) == 0


def test_endpoints_without_owner_are_separate_connections() -> None:
    """Two owner-less endpoints of one user are two connections."""
    local = LocalEndpoints("hub")
    first, second = Endpoint(Inbox()), Endpoint(Inbox())
    assert local.add("g", "u", first, receives=True) != local.add("g", "u", second,
                                                                  receives=True)
    assert local.count("g") == 2


def test_fan_out_skips_pending_and_the_origin() -> None:
    """Non-receiving (pending) links and the origin connection get nothing."""
    local = LocalEndpoints("hub")
    inboxes = {name: Inbox() for name in ("a", "b", "c")}
    conns = {name: local.add("g", name, Endpoint(inbox), receives=name != "c")
             for name, inbox in inboxes.items()}
    assert local.deliver("g", RESPONSE, skip=conns["a"]) == 1
    assert [len(i.got) for i in inboxes.values()] == [0, 1, 0]
    local.set_receives("g", "c", True)
    assert local.deliver("g", RESPONSE) == 3
    assert local.deliver("nope", RESPONSE) == 0


async def test_a_waiting_member_never_delays_the_others() -> None:
    """A deliver that suspends is finished in the background; the rest got it already."""
    local = LocalEndpoints("hub")
    release = asyncio.Event()
    slow_got: list[Response] = []

    async def slow(response: Response) -> None:
        await release.wait()
        slow_got.append(response)

    fast = Inbox()
    local.add("g", "slow", Endpoint(slow), receives=True)
    local.add("g", "fast", Endpoint(fast), receives=True)
    assert local.deliver("g", RESPONSE) == 2
    assert fast.got == [RESPONSE] and slow_got == []
    release.set()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert slow_got == [RESPONSE]


async def test_async_delivers_that_do_not_wait_finish_inline() -> None:
    """A connection-like async sink (push into a queue) completes during the fan-out."""
    local = LocalEndpoints("hub")
    got: list[Response] = []

    async def sink(response: Response) -> None:
        got.append(response)

    local.add("g", "u", Endpoint(sink), receives=True)
    local.deliver("g", RESPONSE)
    assert got == [RESPONSE]


async def test_failures_are_counted_and_contained() -> None:
    """A deliver that raises (now or later) is counted; the others still receive."""
    local = LocalEndpoints("hub")

    def broken(response: Response) -> None:
        raise RuntimeError("gone")

    async def broken_later(response: Response) -> None:
        await asyncio.sleep(0)
        raise RuntimeError("gone later")

    inbox = Inbox()
    local.add("g", "a", Endpoint(broken), receives=True)
    local.add("g", "b", Endpoint(broken_later), receives=True)
    local.add("g", "c", Endpoint(inbox), receives=True)
    local.deliver("g", RESPONSE)
    assert inbox.got == [RESPONSE]
    for _ in range(3):
        await asyncio.sleep(0)
    assert local.failures == 2


async def test_waiting_deliveries_are_bounded() -> None:
    """Beyond max_pending, deliveries that would wait are dropped and counted."""
    local = LocalEndpoints("hub", max_pending=1)
    never = asyncio.Event()

    async def stuck(response: Response) -> None:
        await never.wait()

    local.add("g", "a", Endpoint(stuck), receives=True)
    local.add("g", "b", Endpoint(stuck), receives=True)
    local.deliver("g", RESPONSE)
    assert local.dropped == 1
    await local.aclose()  # cancels the one still waiting
