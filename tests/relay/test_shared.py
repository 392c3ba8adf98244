"""One behavioural suite for both relay backends: in-process, and NATS between gateways.

Every test runs twice (see the ``backend`` fixture): with hubs sharing memory, and with
hubs that are separate NATS clients sharing a key-value bucket and a stream on a real
nats-server — the cross-gateway setup. ``settle()`` waits until every hub has delivered
what was published (a no-op in memory, where delivery is synchronous).
"""

from __future__ import annotations

import asyncio

import pytest

from genapi.relay import RelayError, StoreConflict, StoreFull
from genapi.relay.groups import GroupType, new_group
from tests.relay.backends import Backend, Clock, Conn

pytestmark = pytest.mark.integration


def group(group_id: str = "g", creator: str | None = "a"):  # type: ignore[no-untyped-def]
    """A small public group."""
    return new_group(group_id, GroupType.PUBLIC, creator=creator, now=0.0)


# -- the store --------------------------------------------------------------------------


async def test_store_compare_and_set(backend: Backend) -> None:
    """Create with revision 0, update with the read revision; stale writes conflict."""
    store = await backend.store()
    assert await store.get("nope") == (None, 0)
    first = await store.put("g", group(), 0)
    second = await store.put("g", group(creator="b"), first)
    stored, revision = await store.get("g")
    assert revision == second > first
    assert stored is not None and stored.creator == "b"
    for stale in (lambda: store.put("g", group(creator="c"), first),
                  lambda: store.put("g", group(), 0),
                  lambda: store.delete("g", first)):
        with pytest.raises(StoreConflict):
            await stale()
    await store.delete("g", second)
    assert await store.get("g") == (None, 0)
    again = await store.put("g", group(creator="d"), 0)  # a deleted group may come back
    assert again > second
    assert await store.group_ids() == ["g"]


async def test_store_is_shared_and_bounded(backend: Backend) -> None:
    """A second gateway's store sees the first one's groups; max_groups bounds creation."""
    one, two = await backend.store(max_groups=2), await backend.store(max_groups=2)
    await one.put("a", group("a"), 0)
    revision = await two.put("b", group("b"), 0)
    with pytest.raises(StoreFull):
        await one.put("c", group("c"), 0)
    await two.put("b", group("b", creator="x"), revision)  # updates still go through
    stored, _ = await one.get("b")
    assert stored is not None and stored.creator == "x"
    assert sorted(await one.group_ids()) == ["a", "b"]


async def test_unusual_group_ids_are_kept_apart(backend: Backend) -> None:
    """Ids with dots, spaces, wildcards or non-ASCII letters are stored as given."""
    store = await backend.store()
    ids = ["a.b", "a b", "a*", "a>", "ünïcode", "a/b=c"]
    for group_id in ids:
        await store.put(group_id, group(group_id), 0)
    assert sorted(await store.group_ids()) == sorted(ids)
    stored, _ = await store.get("a.b")
    assert stored is not None and stored.group_id == "a.b"


# -- delivery across gateways -----------------------------------------------------------


async def test_members_on_two_gateways_exchange_messages(backend: Backend) -> None:
    """Each gateway delivers to its own members; senders skip themselves; offsets grow."""
    one, two = await backend.hub(), await backend.hub()
    alice, bob, bob_tab = Conn(), Conn(), Conn()
    await one.create("g", "public", "alice", alice.endpoint())
    await two.join("g", "bob", bob.endpoint())
    await one.join("g", "bob", bob_tab.endpoint())  # bob's second tab, on the other gateway
    first = await two.send("g", "bob", "hi from two", request_id="r1", origin=bob)
    second = await one.send("g", "alice", "hi from one", origin=alice)
    await backend.settle()
    assert alice.messages() == ["hi from two"]
    assert bob.messages() == ["hi from one"]
    assert bob_tab.messages() == ["hi from two", "hi from one"]
    assert second.offset > first.offset > 0
    assert bob_tab.offsets() == [first.offset, second.offset]
    delivered = alice.got[-1]
    assert delivered.request_id == "r1"
    assert delivered.result == {"group_id": "g", "from_user_id": "bob",
                                "message": "hi from two", "timestamp": first.timestamp,
                                "offset": first.offset}
    assert alice.notices() == [("join", "bob")]
    assert first.recipients == second.recipients == 2


async def test_permission_matrix_across_gateways(backend: Backend) -> None:
    """Pending members get nothing until accepted on another gateway; muted ones receive
    but cannot send; only admins moderate."""
    one, two = await backend.hub(), await backend.hub()
    admin, member, muted = Conn(), Conn(), Conn()
    await one.create("g", "strict_private", "admin", admin.endpoint())
    await two.join("g", "m", member.endpoint())
    await two.join("g", "mu", muted.endpoint())
    await one.send("g", "admin", "while pending")
    with pytest.raises(RelayError) as info:
        await two.send("g", "m", "pending cannot send")
    assert info.value.code == "pending"
    with pytest.raises(RelayError) as info:
        await two.accept("g", "m", "mu")
    assert info.value.code == "not_admin"
    await one.accept("g", "admin", "m", origin=admin)
    await one.accept("g", "admin", "mu", origin=admin)
    await one.mute("g", "admin", "mu", origin=admin)
    await one.send("g", "admin", "after")
    with pytest.raises(RelayError) as info:
        await two.send("g", "mu", "muted cannot send")
    assert info.value.code == "muted"
    await backend.settle()
    assert member.messages() == muted.messages() == ["after"]
    assert ("status", "mu") in muted.notices()
    await one.unmute("g", "admin", "mu")
    await two.send("g", "mu", "unmuted")
    await backend.settle()
    assert admin.messages() == ["while pending", "after", "unmuted"]  # no origin given


# -- cleanup ----------------------------------------------------------------------------


async def test_closing_connections_cleans_up_across_gateways(backend: Backend) -> None:
    """A closed connection leaves (a leave notice elsewhere); the last one deletes a
    non-persistent group, creator included."""
    one, two = await backend.hub(), await backend.hub()
    alice, bob = Conn(), Conn()
    await one.create("g", "public", "alice", alice.endpoint())
    await two.join("g", "bob", bob.endpoint())
    await two.close_owner(bob)
    await backend.settle()
    assert alice.notices()[-1] == ("leave", "bob")
    assert list((await one.info("g")).members) == ["alice"]
    await one.close_owner(alice)  # the creator's connection
    await backend.settle()
    with pytest.raises(RelayError) as info:
        await two.info("g")
    assert info.value.code == "not_found"
    assert one.local.count("g") == two.local.count("g") == 0


async def test_deleting_a_group_reaches_every_gateway(backend: Backend) -> None:
    """Members elsewhere get the deleted notice; a group created again under the same id
    starts afresh and its members are not dropped by the old deletion."""
    one, two = await backend.hub(), await backend.hub()
    alice, bob, carol = Conn(), Conn(), Conn()
    await one.create("g", "public", "alice", alice.endpoint())
    await two.join("g", "bob", bob.endpoint())
    await one.send("g", "alice", "old")
    await one.delete("g", "alice", origin=alice)
    await two.create("g", "public", "carol", carol.endpoint())
    await one.join("g", "dave", (dave := Conn()).endpoint())
    await backend.settle()
    assert bob.notices()[-1] == ("deleted", None)
    assert two.local.count("g") == 1  # carol only; bob went with the old group
    await two.send("g", "carol", "new", origin=carol)
    await backend.settle()
    assert dave.messages() == ["new"] and bob.messages() == ["old"]
    recovery = await one.history("g", 0)
    assert [m.message for m in recovery.messages] == ["new"]


async def test_concurrent_joins_on_two_gateways_all_count(backend: Backend) -> None:
    """Compare-and-set: simultaneous joins through two gateways all land."""
    one, two = await backend.hub(), await backend.hub()
    await one.create("g", "public", "admin", Conn().endpoint())
    users = [f"u{n}" for n in range(12)]
    await asyncio.gather(*((one if n % 2 else two).join("g", user, Conn().endpoint())
                           for n, user in enumerate(users)))
    info = await two.presence("g")
    assert info.count == 13
    assert sorted(m.user_id for m in info.members) == sorted(["admin", *users])


async def test_seeded_groups_are_created_once(backend: Backend) -> None:
    """Two gateways seeding the same persistent lobby share one group."""
    lobby = new_group("lobby", GroupType.PUBLIC, creator=None, now=0.0, persistent=True)
    one, two = await backend.hub(seed=[lobby]), await backend.hub(seed=[lobby])
    alice, bob = Conn(), Conn()
    await one.join("lobby", "alice", alice.endpoint())
    await two.join("lobby", "bob", bob.endpoint())
    await two.send("lobby", "bob", "hello", origin=bob)
    await backend.settle()  # delivered to the other gateway before alice goes
    assert alice.messages() == ["hello"]
    await one.close_owner(alice)
    await two.close_owner(bob)
    await backend.settle()
    assert (await one.info("lobby")).members == {}  # persistent: empty, not deleted


# -- recovery ---------------------------------------------------------------------------


async def test_rejoining_recovers_what_was_missed(backend: Backend) -> None:
    """A member back (on another gateway) with its last offset gets the messages after it."""
    one, two = await backend.hub(), await backend.hub()
    alice, bob = Conn(), Conn()
    await one.create("g", "public", "alice", alice.endpoint())
    await two.join("g", "bob", bob.endpoint())
    await one.send("g", "alice", "one")
    await backend.settle()
    seen = bob.offsets()[-1]
    await two.close_owner(bob)
    await one.send("g", "alice", "two")
    last = await one.send("g", "alice", "three")
    back = await one.join("g", "bob", Conn().endpoint(), last_offset=seen)
    assert back.recovery is not None
    assert [m.message for m in back.recovery.messages] == ["two", "three"]
    assert (back.recovery.recovered, back.recovery.offset) == (True, last.offset)
    assert [m.offset for m in back.recovery.messages][-1] == last.offset
    current = await one.join("g", "carol", Conn().endpoint(), last_offset=last.offset)
    assert current.recovery is not None
    assert (current.recovery.messages, current.recovery.recovered) == ([], True)


async def test_recovery_without_enough_history(backend: Backend, clock: Clock) -> None:
    """Messages evicted by count or by age make ``recovered`` False; an offset from the
    future is not covered either."""
    one = await backend.hub(history_size=2, history_age=60.0)
    await one.create("g", "public", "alice", Conn().endpoint())
    sent = [await one.send("g", "alice", n) for n in range(4)]
    back = await one.join("g", "bob", Conn().endpoint(), last_offset=sent[0].offset)
    assert back.recovery is not None and back.recovery.recovered is False
    assert [m.message for m in back.recovery.messages] == [2, 3]
    kept = await one.join("g", "carol", Conn().endpoint(), last_offset=sent[1].offset)
    assert kept.recovery is not None and kept.recovery.recovered is True
    assert [m.message for m in kept.recovery.messages] == [2, 3]
    clock.now += 61
    late = await one.join("g", "dave", Conn().endpoint(), last_offset=sent[1].offset)
    assert late.recovery is not None
    assert (late.recovery.messages, late.recovery.recovered) == ([], False)
    future = await one.history("g", sent[-1].offset + 1000)
    assert future.recovered is False


# -- presence ---------------------------------------------------------------------------


async def test_presence_across_gateways(backend: Backend) -> None:
    """Presence counts members connected anywhere; several connections count once."""
    one, two = await backend.hub(), await backend.hub()
    alice, bob, bob_again = Conn(), Conn(), Conn()
    await one.create("g", "public", "alice", alice.endpoint())
    await two.join("g", "bob", bob.endpoint())
    await one.join("g", "bob", bob_again.endpoint())
    await one.join("g", "bot")  # a member without a connection is not present
    await backend.settle()
    assert alice.notices() == [("join", "bob")]  # bob's second connection is no news
    info = await one.presence("g")
    assert info.count == 2
    assert [m.user_id for m in info.members] == ["alice", "bob"]
    await two.close_owner(bob)
    assert (await two.presence("g")).count == 2  # bob is still here on gateway one
    await one.close_owner(bob_again)
    await backend.settle()
    assert (await two.presence("g")).count == 1
    assert alice.notices() == [("join", "bob"), ("leave", "bob")]
