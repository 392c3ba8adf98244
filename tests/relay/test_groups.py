"""The pure group model: joining by type, the permission matrix, counts, encoding."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from genapi import ApiError
from genapi.relay import groups
from genapi.relay.groups import Group, GroupType, MemberStatus, RelayError, Role

ACTIVE, PENDING, MUTED = MemberStatus.ACTIVE, MemberStatus.PENDING, MemberStatus.MUTED


def make(kind: GroupType, *members: tuple[str, MemberStatus, Role]) -> Group:
    """A group created by "admin" with extra members in the given states."""
    group = groups.new_group("g", kind, creator="admin", now=1.0)
    for user_id, status, role in members:
        group = groups.put_member(group, groups.Member(user_id=user_id, status=status, role=role))
    return group


def refused(fn: Callable[[], Any]) -> tuple[str, str]:
    """The code and message of the RelayError ``fn`` raises."""
    with pytest.raises(RelayError) as info:
        fn()
    return info.value.code, info.value.message


def test_relay_error_is_an_api_error_with_a_code() -> None:
    """RelayError is an ApiError whose code travels in details."""
    error = RelayError("not_found", "Group not found")
    assert isinstance(error, ApiError)
    assert error.details == {"code": "not_found"}
    assert error.can_retry is False


@pytest.mark.parametrize("kind", list(GroupType))
def test_creator_is_an_active_admin(kind: GroupType) -> None:
    """Whatever the type, the creator is an active admin (RY-01)."""
    group = groups.new_group("g", kind, creator="alice", now=5.0, connected=True)
    alice = group.members["alice"]
    assert (alice.role, alice.status, alice.joined_at, alice.connections) == (
        Role.ADMIN, ACTIVE, 5.0, 1)
    assert (group.online, group.receivers) == (1, 1)


def test_a_group_without_creator_has_no_members() -> None:
    """A server-made group (creator None) starts empty."""
    group = groups.new_group("lobby", GroupType.PUBLIC, creator=None, now=0.0, persistent=True)
    assert group.members == {}
    assert not groups.is_disposable(group)


@pytest.mark.parametrize(("kind", "status"), [
    (GroupType.PUBLIC, ACTIVE), (GroupType.PRIVATE, PENDING),
    (GroupType.STRICT_PRIVATE, PENDING),
])
def test_join_status_by_group_type(kind: GroupType, status: MemberStatus) -> None:
    """Public joins are active; private and strict_private joins are pending (RY-03)."""
    group, member = groups.join(make(kind), "bob", now=2.0, max_members=10)
    assert (member.status, member.role) == (status, Role.MEMBER)
    assert group.members["bob"] == member
    assert group.receivers == (2 if status is ACTIVE else 1)


@pytest.mark.parametrize("status", [ACTIVE, PENDING, MUTED])
def test_joining_twice_is_refused(status: MemberStatus) -> None:
    """A member of any status cannot join again (muting cannot be escaped)."""
    group = make(GroupType.STRICT_PRIVATE, ("bob", status, Role.MEMBER))
    assert refused(lambda: groups.join(group, "bob", now=0, max_members=10)) == (
        "already_member", "Already a member of this group")


def test_the_creator_comes_back_as_admin() -> None:
    """After leaving, the creator rejoins a private group as an active admin."""
    group, _ = groups.leave(make(GroupType.PRIVATE, ("bob", ACTIVE, Role.MEMBER)), "admin")
    group, member = groups.join(group, "admin", now=3.0, max_members=10)
    assert (member.status, member.role) == (ACTIVE, Role.ADMIN)


def test_a_full_group_refuses_joins() -> None:
    """max_members bounds the receivers of a message: a group holds a sender and
    max_members others."""
    group = make(GroupType.PUBLIC, ("bob", ACTIVE, Role.MEMBER))
    assert len(group.members) == 2  # the creator and bob
    carol = groups.join(group, "carol", now=0, max_members=2)[0]
    assert len(carol.members) == 3
    assert refused(lambda: groups.join(carol, "dan", now=0, max_members=2)) == (
        "group_full", "Group is full (max 2 receivers per message)")
    assert refused(lambda: groups.join(group, "carol", now=0, max_members=1))[0] == "group_full"


def test_leave() -> None:
    """Leaving removes the member; a stranger is refused (RY-04)."""
    group, member = groups.leave(make(GroupType.PUBLIC, ("bob", ACTIVE, Role.MEMBER)), "bob")
    assert member.user_id == "bob" and "bob" not in group.members
    assert refused(lambda: groups.leave(group, "bob"))[0] == "user_not_in_group"


# -- the permission matrix --------------------------------------------------------------

PRIVATE, STRICT, PUBLIC = GroupType.PRIVATE, GroupType.STRICT_PRIVATE, GroupType.PUBLIC
MEMBER, ADMIN = Role.MEMBER, Role.ADMIN


@pytest.mark.parametrize(("kind", "actor", "target", "outcome"), [
    # private: any active member accepts (RY-05)
    (PRIVATE, "admin", "p", "active"),
    (PRIVATE, "m", "p", "active"),
    (PRIVATE, "p2", "p", ("not_admin", "Only active members can accept members")),
    (PRIVATE, "mu", "p", ("not_admin", "Only active members can accept members")),
    (PRIVATE, "stranger", "p", ("user_not_in_group", "Not a member of this group")),
    (PRIVATE, "admin", "nobody", ("user_not_in_group", "User is not a member of this group")),
    (PRIVATE, "admin", "m", ("user_not_pending", "User is not pending")),
    # strict: only active admins accept
    (STRICT, "admin", "p", "active"),
    (STRICT, "m", "p", ("not_admin", "Only admins can accept members")),
    (STRICT, "a2", "p", "active"),
    # public: nobody is pending
    (PUBLIC, "admin", "m", ("user_not_pending", "User is not pending")),
])
def test_accept_matrix(kind: GroupType, actor: str, target: str, outcome: Any) -> None:
    """Who may accept whom, with the reference's check order and precise messages."""
    group = make(kind, ("m", ACTIVE, MEMBER), ("p", PENDING, MEMBER), ("p2", PENDING, MEMBER),
                 ("mu", MUTED, MEMBER), ("a2", ACTIVE, ADMIN))
    if isinstance(outcome, tuple):
        assert refused(lambda: groups.accept(group, actor, target)) == outcome
    else:
        after, member = groups.accept(group, actor, target)
        assert member.status == outcome == after.members[target].status
        assert after.receivers == group.receivers + 1


@pytest.mark.parametrize(("kind", "actor", "target", "outcome"), [
    (STRICT, "admin", "m", "muted"),  # RY-06
    (STRICT, "m", "m2", ("not_admin", "Only admins can mute members")),
    (STRICT, "stranger", "m", ("not_admin", "Only admins can mute members")),
    (PUBLIC, "admin", "m", ("not_strict_private", "Only strict_private groups can mute members")),
    (PRIVATE, "admin", "m",
     ("not_strict_private", "Only strict_private groups can mute members")),
    (STRICT, "admin", "nobody", ("user_not_in_group", "User is not a member of this group")),
    (STRICT, "admin", "p", ("cannot_mute", "Only active members can be muted")),
    (STRICT, "admin", "mu", ("cannot_mute", "Only active members can be muted")),
    (STRICT, "mutedadmin", "m", ("not_admin", "Only admins can mute members")),
])
def test_mute_matrix(kind: GroupType, actor: str, target: str, outcome: Any) -> None:
    """Only active admins of strict_private groups mute active members."""
    group = make(kind, ("m", ACTIVE, MEMBER), ("m2", ACTIVE, MEMBER), ("p", PENDING, MEMBER),
                 ("mu", MUTED, MEMBER), ("mutedadmin", MUTED, ADMIN))
    if isinstance(outcome, tuple):
        assert refused(lambda: groups.mute(group, actor, target)) == outcome
    else:
        after, member = groups.mute(group, actor, target)
        assert member.status == outcome == after.members[target].status
        assert after.receivers == group.receivers  # muted members still receive


@pytest.mark.parametrize(("kind", "actor", "target", "outcome"), [
    (STRICT, "admin", "mu", "active"),  # RY-07
    (STRICT, "m", "mu", ("not_admin", "Only admins can unmute members")),
    (PRIVATE, "admin", "mu",
     ("not_strict_private", "Only strict_private groups can unmute members")),
    (STRICT, "admin", "m", ("not_muted", "User is not muted")),
    (STRICT, "admin", "nobody", ("user_not_in_group", "User is not a member of this group")),
])
def test_unmute_matrix(kind: GroupType, actor: str, target: str, outcome: Any) -> None:
    """Only active admins of strict_private groups unmute muted members."""
    group = make(kind, ("m", ACTIVE, MEMBER), ("mu", MUTED, MEMBER))
    if isinstance(outcome, tuple):
        assert refused(lambda: groups.unmute(group, actor, target)) == outcome
    else:
        _, member = groups.unmute(group, actor, target)
        assert member.status == outcome


@pytest.mark.parametrize(("user", "outcome"), [
    ("m", None),
    ("admin", None),
    ("mu", ("muted", "You are muted and cannot send messages")),
    ("p", ("pending", "Pending membership: wait for acceptance")),
    ("stranger", ("not_member", "Not a member of this group")),
])
def test_send_matrix(user: str, outcome: Any) -> None:
    """Active members send; muted, pending and strangers get the reference's wording."""
    group = make(STRICT, ("m", ACTIVE, MEMBER), ("mu", MUTED, MEMBER), ("p", PENDING, MEMBER))
    if outcome is None:
        assert groups.check_sender(group, user).user_id == user
    else:
        assert refused(lambda: groups.check_sender(group, user)) == outcome


@pytest.mark.parametrize(("kind", "user", "allowed"), [
    (PUBLIC, "stranger", True), (PUBLIC, None, True),
    (PRIVATE, "p", True), (PRIVATE, "stranger", False), (STRICT, None, False),
])
def test_viewers(kind: GroupType, user: str | None, allowed: bool) -> None:
    """Public groups are visible to anyone, the others to members only (pending included)."""
    group = make(kind, ("p", PENDING, MEMBER))
    if allowed:
        groups.check_viewer(group, user)
    else:
        assert refused(lambda: groups.check_viewer(group, user))[0] == "not_member"


@pytest.mark.parametrize(("actor", "allowed"), [
    (None, True), ("admin", True), ("m", False), ("mutedadmin", False), ("stranger", False),
])
def test_who_may_delete(actor: str | None, allowed: bool) -> None:
    """Active admins (and the server) delete groups."""
    group = make(PUBLIC, ("m", ACTIVE, MEMBER), ("mutedadmin", MUTED, ADMIN))
    if allowed:
        groups.check_admin(group, actor, "delete the group")
    else:
        assert refused(lambda: groups.check_admin(group, actor, "delete the group")) == (
            "not_admin", "Only admins can delete the group")


def test_counts_follow_every_transition() -> None:
    """online and receivers always equal a recount of the members."""
    group = make(STRICT)
    group, _ = groups.join(group, "a", now=0, max_members=10, connected=True)
    group, _ = groups.join(group, "b", now=0, max_members=10)
    group, _ = groups.accept(group, "admin", "a")
    group, _ = groups.accept(group, "admin", "b")
    group, _ = groups.mute(group, "admin", "b")
    group, _ = groups.leave(group, "a")
    members = group.members.values()
    assert group.online == sum(m.connections > 0 for m in members) == 0
    assert group.receivers == sum(m.receives for m in members) == 2


def test_groups_encode_and_decode() -> None:
    """A group survives a JSON round trip (what a shared store keeps)."""
    group = make(STRICT, ("m", MUTED, MEMBER))
    data = groups.encode_group(group)
    assert groups.decode_group(data) == group
    assert b'"strict_private"' in data and b'"muted"' in data
