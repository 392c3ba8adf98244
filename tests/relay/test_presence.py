"""Presence: connection counts per member, O(1) counts, join and leave transitions."""

from __future__ import annotations

from genapi.relay import groups, presence
from genapi.relay.groups import GroupType


def test_connections_are_counted_per_member() -> None:
    """The first connection is a join, the last disconnection removes the member."""
    group = groups.new_group("g", GroupType.PUBLIC, creator="a", now=0.0, connected=True)
    group, _ = groups.join(group, "b", now=0.0, max_members=10, connected=True)
    group, first = presence.connect(group, "b")
    assert first is False
    assert group.members["b"].connections == 2
    assert presence.count(group) == 2
    group, gone = presence.disconnect(group, "b")
    assert gone is None and group.members["b"].connections == 1
    group, gone = presence.disconnect(group, "b")
    assert gone is not None and gone.user_id == "b" and gone.connections == 1
    assert "b" not in group.members
    assert presence.count(group) == 1


def test_a_member_without_connection_is_not_present() -> None:
    """Members joined without a connection count as members, not as present."""
    group = groups.new_group("g", GroupType.PUBLIC, creator="a", now=0.0)
    group, _ = groups.join(group, "b", now=0.0, max_members=10, connected=True)
    assert [m.user_id for m in presence.present(group)] == ["b"]
    assert presence.count(group) == 1
    group, first = presence.connect(group, "a")
    assert first is True
    assert [m.user_id for m in presence.present(group)] == ["a", "b"]


def test_disconnecting_an_unknown_member_changes_nothing() -> None:
    """A member already gone (left meanwhile) is ignored."""
    group = groups.new_group("g", GroupType.PUBLIC, creator="a", now=0.0)
    after, gone = presence.disconnect(group, "nobody")
    assert after is group and gone is None


def test_count_is_kept_not_recomputed() -> None:
    """count() reads the maintained counter (it agrees with a recount)."""
    group = groups.new_group("g", GroupType.PUBLIC, creator=None, now=0.0)
    for n in range(50):
        group, _ = groups.join(group, f"u{n}", now=0.0, max_members=100, connected=n % 2 == 0)
    assert group.online == 25 == len(presence.present(group)) == presence.count(group)
