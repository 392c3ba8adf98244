"""RelayHub, the Python API: delivery, cleanup, recovery, presence, limits, CAS, two hubs."""

from __future__ import annotations

from typing import Any

import pytest

from genapi import Telemetry
from genapi.relay import (
    Group,
    LocalBus,
    MemoryGroupStore,
    RelayError,
    RelayHub,
    RelayLimits,
    StoreConflict,
)
from genapi.relay.groups import GroupType, new_group
from tests.relay.backends import Clock, Conn


def hub(**options: Any) -> RelayHub:
    """A hub with a fixed clock."""
    clock = options.pop("clock", Clock())
    return RelayHub(clock=clock, bus=options.pop("bus", LocalBus(clock=clock)), **options)


async def room(h: RelayHub, kind: str = "public", **members: Conn) -> dict[str, Conn]:
    """Group "g" created by "admin" with the given members joined (each on a connection)."""
    conns = {"admin": Conn("admin"), **members}
    await h.create("g", kind, "admin", conns["admin"].endpoint())
    for user, conn in members.items():
        await h.join("g", user, conn.endpoint())
    return conns


async def test_messages_reach_active_and_muted_members_but_not_pending_ones() -> None:
    """Fan-out skips pending members and the sending connection (it has the answer)."""
    h = hub()
    c = await room(h, "strict_private", m=Conn(), mu=Conn(), p=Conn())
    await h.accept("g", "admin", "m")
    await h.accept("g", "admin", "mu")
    await h.mute("g", "admin", "mu")
    sent = await h.send("g", "admin", "hello", request_id="r1", origin=c["admin"])
    assert (sent.offset, sent.recipients) == (1, 3)  # admin, m and mu: sender included
    assert c["m"].messages() == c["mu"].messages() == ["hello"]
    assert c["p"].messages() == [] and c["admin"].messages() == []
    delivered = c["m"].got[-1]
    assert delivered.request_id == "r1"
    assert delivered.result == {"group_id": "g", "from_user_id": "admin", "message": "hello",
                                "timestamp": sent.timestamp, "offset": 1}
    assert sent.timestamp.endswith("Z")


async def test_pending_members_receive_once_accepted() -> None:
    """Accepting a pending member starts its deliveries (it also gets the status notice)."""
    h = hub()
    c = await room(h, "private", p=Conn())
    await h.send("g", "admin", "before")
    await h.accept("g", "admin", "p", origin=c["admin"])
    await h.send("g", "admin", "after")
    assert c["p"].messages() == ["after"]
    assert c["p"].notices() == [("status", "p")]
    assert ("status", "p") not in c["admin"].notices()  # the actor has the answer


async def test_the_senders_other_connections_get_its_message() -> None:
    """Only the sending connection is skipped, not the user's other tabs."""
    h = hub()
    c = await room(h, m=Conn())
    tab2 = Conn()
    await h.join("g", "admin", tab2.endpoint())
    await h.send("g", "admin", "hi", origin=c["admin"])
    assert tab2.messages() == ["hi"] and c["admin"].messages() == []


async def test_the_same_connection_cannot_join_twice() -> None:
    """A second join from the same connection is already_member."""
    h = hub()
    c = await room(h, m=Conn())
    with pytest.raises(RelayError) as info:
        await h.join("g", "m", c["m"].endpoint())
    assert info.value.code == "already_member"


async def test_members_without_connection() -> None:
    """The Python API may add members without an endpoint; they send but receive nothing."""
    h = hub()
    c = await room(h)
    joined = await h.join("g", "bot")
    assert joined.member.connections == 0
    await h.send("g", "bot", "beep")
    assert c["admin"].messages() == ["beep"]
    with pytest.raises(RelayError):
        await h.join("g", "bot")


# -- cleanup ----------------------------------------------------------------------------


async def test_closing_a_connection_removes_its_memberships_creator_included() -> None:
    """owner_closed removes the creator too; the others get a leave notice (ref. item 46)."""
    h = hub()
    c = await room(h, m=Conn())
    h.owner_closed(c["admin"])
    await h.idle()
    h.flush_presence()
    group = await h.info("g")
    assert list(group.members) == ["m"]
    assert ("leave", "admin") in c["m"].notices()


async def test_the_last_connection_closing_deletes_a_non_persistent_group() -> None:
    """An emptied group goes away (and its history with it)."""
    h = hub()
    c = await room(h, m=Conn())
    await h.send("g", "m", "hi")
    await h.close_owner(c["admin"])
    await h.close_owner(c["m"])
    with pytest.raises(RelayError) as info:
        await h.info("g")
    assert info.value.message == "Group not found"
    await h.create("g", "public", "x")
    assert (await h.history("g", 0)).offset == 0


async def test_a_persistent_group_stays_empty() -> None:
    """Persistent groups survive their last member."""
    h = hub()
    await h.create("lobby", "public", None, persistent=True)
    conn = Conn()
    await h.join("lobby", "u", conn.endpoint())
    await h.close_owner(conn)
    assert (await h.info("lobby")).members == {}


async def test_a_user_stays_while_one_of_its_connections_is_open() -> None:
    """Two connections of one user: the member goes with the second close only."""
    h = hub()
    c = await room(h, m=Conn())
    tab2 = Conn()
    await h.join("g", "m", tab2.endpoint())
    h.flush_presence()
    assert c["admin"].notices() == [("join", "m")]  # one join for the first connection
    await h.close_owner(c["m"])
    assert (await h.info("g")).members["m"].connections == 1
    await h.send("g", "admin", "still here?")
    assert tab2.messages() == ["still here?"]
    await h.close_owner(tab2)
    assert "m" not in (await h.info("g")).members
    h.flush_presence()
    assert c["admin"].notices() == [("join", "m"), ("leave", "m")]


async def test_leave_and_delete_notices() -> None:
    """Leaving notifies the rest; deletion notifies every member and drops their endpoints."""
    h = hub()
    c = await room(h, a=Conn(), b=Conn())
    await h.leave("g", "a")
    h.flush_presence()
    # one diff: a joined and left within the interval, so only a's leave is in it
    assert c["b"].notices() == [("leave", "a"), ("join", "b")]
    assert ("leave", "a") not in c["a"].notices()  # a's endpoint went with a
    with pytest.raises(RelayError) as info:
        await h.delete("g", "b")
    assert info.value.code == "not_admin"
    await h.delete("g", "admin", origin=c["admin"])
    assert c["b"].notices()[-1] == ("deleted", None)
    assert ("deleted", None) not in c["admin"].notices()
    assert h.local.count("g") == 0


# -- recovery ---------------------------------------------------------------------------


async def test_rejoin_with_last_offset_recovers_missed_messages() -> None:
    """A member that comes back with its last offset gets what it missed."""
    h = hub()
    c = await room(h, m=Conn())
    await h.send("g", "admin", "one")
    await h.close_owner(c["m"])
    await h.send("g", "admin", "two")
    await h.send("g", "admin", "three")
    back = await h.join("g", "m", Conn().endpoint(), last_offset=1)
    assert back.recovery is not None
    assert [m.message for m in back.recovery.messages] == ["two", "three"]
    assert (back.recovery.recovered, back.recovery.offset) == (True, 3)


async def test_rejoin_after_the_history_moved_on_is_not_recovered() -> None:
    """Evicted (by size or age) messages make recovered False."""
    clock = Clock()
    h = hub(clock=clock, bus=LocalBus(history_size=2, history_age=60.0, clock=clock))
    await room(h)
    for n in range(4):
        await h.send("g", "admin", n)
    back = await h.join("g", "m", Conn().endpoint(), last_offset=1)
    assert back.recovery is not None and back.recovery.recovered is False
    assert [m.message for m in back.recovery.messages] == [2, 3]
    clock.now += 61
    late = await h.join("g", "n", Conn().endpoint(), last_offset=3)
    assert late.recovery is not None
    assert (late.recovery.messages, late.recovery.recovered) == ([], False)


async def test_pending_members_get_no_history() -> None:
    """Joining a private group with last_offset reveals nothing until accepted."""
    h = hub()
    await room(h, "private")
    await h.send("g", "admin", "secret")
    joined = await h.join("g", "p", Conn().endpoint(), last_offset=0)
    assert joined.recovery is None
    with pytest.raises(RelayError) as info:
        await h.history("g", 0, actor="p")
    assert info.value.code == "pending"


# -- presence ---------------------------------------------------------------------------


async def test_presence_counts_and_notices() -> None:
    """Presence lists connected members; a join reaches the members in the interval's diff
    (the joiner too: diffs are one frame for every member, as in Phoenix)."""
    h = hub()
    c = await room(h, a=Conn())
    await h.join("g", "bot")  # a member, not present
    info = await h.presence("g", "a")
    assert info.count == 2
    assert [m.user_id for m in info.members] == ["admin", "a"]
    assert c["admin"].notices() == []  # batched: nothing until the interval ends
    h.flush_presence()
    assert c["admin"].notices() == c["a"].notices() == [("join", "a")]


async def test_private_groups_are_visible_to_members_only() -> None:
    """info and presence of non-public groups need membership."""
    h = hub()
    await room(h, "private")
    with pytest.raises(RelayError) as info:
        await h.presence("g", "stranger")
    assert info.value.message == "Not a member of this group"
    assert isinstance(await h.info("g"), Group)  # the server sees everything


# -- limits and validation --------------------------------------------------------------


async def test_limits() -> None:
    """Members per group, groups per connection, message size and group id length."""
    h = hub(limits=RelayLimits(max_members=2, max_groups_per_connection=1,
                               max_message_bytes=10, max_group_id_bytes=4))
    conn = Conn()
    await h.create("g", "public", "a", conn.endpoint())
    codes = []
    for attempt in (
        lambda: h.create("h", "public", "a", conn.endpoint()),
        lambda: h.create("toolong", "public", "b"),
        lambda: h.create("", "public", "b"),
        lambda: h.send("g", "a", "x" * 20),
        lambda: h.send("g", "a", object()),
    ):
        with pytest.raises(RelayError) as info:
            await attempt()
        codes.append(info.value.code)
    await h.join("g", "b")
    await h.join("g", "c")  # max_members counts receivers: a sender and two others
    with pytest.raises(RelayError) as info:
        await h.join("g", "d")
    codes.append(info.value.code)
    assert codes == ["too_many_groups", "invalid_group_id", "invalid_group_id",
                     "message_too_large", "invalid_message", "group_full"]


async def test_create_refusals() -> None:
    """Duplicate ids, unknown types and a full store are refused."""
    h = hub(store=MemoryGroupStore(max_groups=1))
    await h.create("g", "public", "a")
    for call, code in (
        (h.create("g", "public", "b"), "already_exists"),
        (h.create("x", "secret", "b"), "invalid_group_type"),
        (h.create("y", "public", "b"), "too_many_groups"),
    ):
        with pytest.raises(RelayError) as info:
            await call
        assert info.value.code == code
    with pytest.raises(RelayError):
        await h.send("nope", "a", "hi")


@pytest.mark.parametrize("bad", [0, -1, True, 1.5])
def test_limits_must_be_positive_integers(bad: Any) -> None:
    """RelayLimits refuses non-positive or non-integer values."""
    with pytest.raises(ValueError):
        RelayLimits(max_members=bad)


# -- compare-and-set --------------------------------------------------------------------


class RacingStore(MemoryGroupStore):
    """A memory store where another writer changes the group just before some puts."""

    def __init__(self, races: int) -> None:
        super().__init__()
        self.races = races

    async def put(self, group_id: str, group: Group, expected_revision: int) -> int:
        if expected_revision and self.races:
            self.races -= 1
            current, revision = await self.get(group_id)
            assert current is not None
            await super().put(group_id, current, revision)  # the other writer wins
            raise StoreConflict("raced")
        return await super().put(group_id, group, expected_revision)


async def test_conflicting_writes_are_retried() -> None:
    """A concurrent write makes the hub read again and re-decide."""
    store = RacingStore(races=3)
    h = hub(store=store)
    await h.create("g", "public", "a")
    await h.join("g", "b")
    assert set((await h.info("g")).members) == {"a", "b"}
    assert store.races == 0


async def test_endless_conflicts_answer_busy() -> None:
    """A hub that never wins the race gives up with a retryable busy error."""
    h = hub(store=RacingStore(races=10_000))
    await h.create("g", "public", "a")
    with pytest.raises(RelayError) as info:
        await h.join("g", "b")
    assert (info.value.code, info.value.can_retry) == ("busy", True)


# -- two gateways -----------------------------------------------------------------------


async def test_two_hubs_sharing_a_store_and_a_bus_behave_as_one() -> None:
    """Members on different hubs (gateways) exchange messages, notices and cleanup."""
    clock = Clock()
    store, bus = MemoryGroupStore(), LocalBus(clock=clock)
    one = RelayHub(store=store, bus=bus, clock=clock, hub_id="one")
    two = RelayHub(store=store, bus=bus, clock=clock, hub_id="two")
    alice, bob = Conn(), Conn()
    await one.create("g", "public", "alice", alice.endpoint())
    await two.join("g", "bob", bob.endpoint())
    await two.send("g", "bob", "hi from two", origin=bob)
    await one.send("g", "alice", "hi from one", origin=alice)
    assert alice.messages() == ["hi from two"] and bob.messages() == ["hi from one"]
    assert alice.notices() == [("join", "bob")]  # flushed by bob's message, before it
    await two.close_owner(bob)
    one.flush_presence()
    assert alice.notices()[-1] == ("leave", "bob")
    assert list((await one.info("g")).members) == ["alice"]
    await one.aclose()
    await two.aclose()


async def test_telemetry_events() -> None:
    """create, join, send, leave and delete emit the relay events."""
    telemetry = Telemetry()
    seen: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    telemetry.attach("t", "relay.*", lambda e, m, md: seen.append((e, dict(m), dict(md))))
    h = hub(telemetry=telemetry)
    conn = Conn()
    await h.create("g", "public", "a", conn.endpoint())
    await h.join("g", "b", Conn().endpoint())
    await h.send("g", "a", "hi")
    await h.leave("g", "b")
    await h.close_owner(conn)
    names = [name for name, _, _ in seen]
    assert names == ["relay.group.create", "relay.member.join", "relay.member.join",
                     "relay.message.sent", "relay.member.leave", "relay.member.leave",
                     "relay.group.delete"]
    sent = seen[3]
    assert sent[1]["recipients"] == 2 and sent[1]["duration_us"] >= 0
    assert sent[2] == {"group_id": "g", "from_user_id": "a", "offset": 1}
    assert [md["reason"] for name, _, md in seen if name == "relay.member.leave"] == [
        "leave", "closed"]
    assert seen[-1][2] == {"group_id": "g", "reason": "empty"}


async def test_seeded_groups_are_served() -> None:
    """A group seeded into the store before start is used like any other."""
    store = MemoryGroupStore()
    store.seed(new_group("lobby", GroupType.PUBLIC, creator=None, now=0.0, persistent=True))
    h = hub(store=store)
    joined = await h.join("lobby", "u", Conn().endpoint())
    assert joined.member.status.value == "active"
    assert h.status()["deliveries_failed"] == 0
