"""The group model: groups, members and the permission decisions, as pure functions.

A :class:`Group` is an immutable value (a msgspec struct, so a shared store can encode
it); every transition returns a new group and raises :class:`RelayError` when the move
is not allowed. No I/O, no clocks: the caller passes ``now``.

Group types and what joining does:

* ``public`` — join → active;
* ``private`` — join → pending; any active member may accept;
* ``strict_private`` — join → pending; only active admins accept, mute and unmute.

The creator is an active admin and, after leaving, comes back as one. Pending members
neither send nor receive; muted members receive but cannot send.

Permission matrix (actor → action), checked in the order listed:

============  ==============================================================
send          member → not pending → not muted
accept        group → actor member → actor active → (strict) actor admin →
              target member → target pending
mute/unmute   group → strict_private → actor active admin → target member →
              target active (mute) / muted (unmute)
delete        actor active admin (the server may always delete)
info/presence public groups: anyone; others: members only
============  ==============================================================
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

import msgspec

from ..errors import RelayError

__all__ = [
    "Group",
    "GroupType",
    "Member",
    "MemberStatus",
    "RelayError",
    "Role",
    "accept",
    "check_admin",
    "check_sender",
    "check_viewer",
    "decode_group",
    "encode_group",
    "is_disposable",
    "join",
    "leave",
    "mute",
    "new_group",
    "parse_group_type",
    "put_member",
    "remove_member",
    "unmute",
]


class GroupType(StrEnum):
    """Who may join, and who accepts."""

    PUBLIC = "public"
    PRIVATE = "private"
    STRICT_PRIVATE = "strict_private"


class MemberStatus(StrEnum):
    """A member's state in a group."""

    ACTIVE = "active"
    PENDING = "pending"
    MUTED = "muted"


class Role(StrEnum):
    """A member's role: admins accept, mute and delete."""

    ADMIN = "admin"
    MEMBER = "member"


GROUP_NOT_FOUND: Final = "Group not found"
NOT_A_MEMBER: Final = "Not a member of this group"
PENDING_MEMBERSHIP: Final = "Pending membership: wait for acceptance"
MUTED_SENDER: Final = "You are muted and cannot send messages"


def parse_group_type(value: str | GroupType) -> GroupType:
    """A :class:`GroupType` from its name; ``invalid_group_type`` otherwise."""
    try:
        return GroupType(value)
    except ValueError:
        raise RelayError(
            "invalid_group_type",
            f"Invalid group type: {value} (expected public, private or strict_private)",
        ) from None


def not_found() -> RelayError:
    """The error for a group that does not exist."""
    return RelayError("not_found", GROUP_NOT_FOUND)


class Member(msgspec.Struct, frozen=True, kw_only=True):
    """One member: role, status, when it joined and its open connections (presence)."""

    user_id: str
    role: Role = Role.MEMBER
    status: MemberStatus = MemberStatus.ACTIVE
    joined_at: float = 0.0
    connections: int = 0

    @property
    def is_admin(self) -> bool:
        """True for admins (whatever the status)."""
        return self.role is Role.ADMIN

    @property
    def receives(self) -> bool:
        """Active and muted members receive; pending ones do not."""
        return self.status is not MemberStatus.PENDING


class Group(msgspec.Struct, frozen=True, kw_only=True):
    """A group's state. ``online`` and ``receivers`` are kept in step by the transitions,
    so counts are O(1): members with a connection, and members that receive."""

    group_id: str
    group_type: GroupType
    creator: str | None = None
    persistent: bool = False
    created_at: float = 0.0
    members: dict[str, Member] = msgspec.field(default_factory=dict)
    online: int = 0
    receivers: int = 0


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Group)


def encode_group(group: Group) -> bytes:
    """JSON bytes of a group (for stores that keep bytes)."""
    return _encoder.encode(group)


def decode_group(data: bytes) -> Group:
    """The group encoded by :func:`encode_group`."""
    return _decoder.decode(data)


def _counts(member: Member | None) -> tuple[int, int]:
    if member is None:
        return 0, 0
    return int(member.connections > 0), int(member.receives)


def put_member(group: Group, member: Member) -> Group:
    """``group`` with ``member`` added or replaced (counts adjusted)."""
    old_online, old_receives = _counts(group.members.get(member.user_id))
    new_online, new_receives = _counts(member)
    members = dict(group.members)
    members[member.user_id] = member
    return msgspec.structs.replace(
        group,
        members=members,
        online=group.online + new_online - old_online,
        receivers=group.receivers + new_receives - old_receives,
    )


def remove_member(group: Group, user_id: str) -> Group:
    """``group`` without ``user_id`` (unchanged when absent)."""
    old = group.members.get(user_id)
    if old is None:
        return group
    online, receives = _counts(old)
    members = dict(group.members)
    del members[user_id]
    return msgspec.structs.replace(
        group, members=members, online=group.online - online,
        receivers=group.receivers - receives,
    )


def new_group(
    group_id: str,
    group_type: GroupType,
    *,
    creator: str | None,
    now: float,
    persistent: bool = False,
    connected: bool = False,
) -> Group:
    """A new group; the creator (if any) is its active admin."""
    group = Group(group_id=group_id, group_type=group_type, creator=creator,
                  persistent=persistent, created_at=now)
    if creator is None:
        return group
    return put_member(group, Member(user_id=creator, role=Role.ADMIN, joined_at=now,
                                    connections=int(connected)))


def join(
    group: Group, user_id: str, *, now: float, max_members: int, connected: bool = False
) -> tuple[Group, Member]:
    """Add ``user_id``: active in public groups, pending otherwise (the creator comes back
    as an active admin). Raises ``already_member`` or ``group_full``.

    ``max_members`` counts receivers: the group may hold ``max_members + 1`` members, a
    sender and ``max_members`` others that receive its messages."""
    if user_id in group.members:
        raise RelayError("already_member", "Already a member of this group")
    if len(group.members) > max_members:
        raise RelayError("group_full",
                         f"Group is full (max {max_members} receivers per message)")
    role, status = Role.MEMBER, MemberStatus.ACTIVE
    if user_id == group.creator:
        role = Role.ADMIN
    elif group.group_type is not GroupType.PUBLIC:
        status = MemberStatus.PENDING
    member = Member(user_id=user_id, role=role, status=status, joined_at=now,
                    connections=int(connected))
    return put_member(group, member), member


def leave(group: Group, user_id: str) -> tuple[Group, Member]:
    """Remove ``user_id``; returns the new group and the member that left."""
    member = group.members.get(user_id)
    if member is None:
        raise RelayError("user_not_in_group", NOT_A_MEMBER)
    return remove_member(group, user_id), member


def _actor(group: Group, actor: str) -> Member:
    member = group.members.get(actor)
    if member is None:
        raise RelayError("user_not_in_group", NOT_A_MEMBER)
    return member


def _target(group: Group, target: str) -> Member:
    member = group.members.get(target)
    if member is None:
        raise RelayError("user_not_in_group", "User is not a member of this group")
    return member


def accept(group: Group, actor: str, target: str) -> tuple[Group, Member]:
    """Make a pending member active."""
    by = _actor(group, actor)
    if by.status is not MemberStatus.ACTIVE:
        raise RelayError("not_admin", "Only active members can accept members")
    if group.group_type is GroupType.STRICT_PRIVATE and not by.is_admin:
        raise RelayError("not_admin", "Only admins can accept members")
    member = _target(group, target)
    if member.status is not MemberStatus.PENDING:
        raise RelayError("user_not_pending", "User is not pending")
    return _set_status(group, member, MemberStatus.ACTIVE)


def _check_moderator(group: Group, actor: str, verb: str) -> None:
    if group.group_type is not GroupType.STRICT_PRIVATE:
        raise RelayError("not_strict_private",
                         f"Only strict_private groups can {verb} members")
    by = group.members.get(actor)
    if by is None or not by.is_admin or by.status is not MemberStatus.ACTIVE:
        raise RelayError("not_admin", f"Only admins can {verb} members")


def mute(group: Group, actor: str, target: str) -> tuple[Group, Member]:
    """An admin of a strict_private group mutes an active member."""
    _check_moderator(group, actor, "mute")
    member = _target(group, target)
    if member.status is not MemberStatus.ACTIVE:
        raise RelayError("cannot_mute", "Only active members can be muted")
    return _set_status(group, member, MemberStatus.MUTED)


def unmute(group: Group, actor: str, target: str) -> tuple[Group, Member]:
    """An admin of a strict_private group unmutes a muted member."""
    _check_moderator(group, actor, "unmute")
    member = _target(group, target)
    if member.status is not MemberStatus.MUTED:
        raise RelayError("not_muted", "User is not muted")
    return _set_status(group, member, MemberStatus.ACTIVE)


def _set_status(group: Group, member: Member, status: MemberStatus) -> tuple[Group, Member]:
    changed = msgspec.structs.replace(member, status=status)
    return put_member(group, changed), changed


def check_sender(group: Group, user_id: str) -> Member:
    """The sending member, or the reference's refusal."""
    member = group.members.get(user_id)
    if member is None:
        raise RelayError("not_member", NOT_A_MEMBER)
    if member.status is MemberStatus.PENDING:
        raise RelayError("pending", PENDING_MEMBERSHIP)
    if member.status is MemberStatus.MUTED:
        raise RelayError("muted", MUTED_SENDER)
    return member


def check_viewer(group: Group, user_id: str | None) -> None:
    """Anyone may look at a public group; members only at the others."""
    if group.group_type is GroupType.PUBLIC:
        return
    if user_id is None or user_id not in group.members:
        raise RelayError("not_member", NOT_A_MEMBER)


def check_admin(group: Group, actor: str | None, verb: str) -> None:
    """``actor`` must be an active admin (``None``, the server itself, always may)."""
    if actor is None:
        return
    member = group.members.get(actor)
    if member is None or not member.is_admin or member.status is not MemberStatus.ACTIVE:
        raise RelayError("not_admin", f"Only admins can {verb}")


def is_disposable(group: Group) -> bool:
    """True for a non-persistent group without members: it goes away."""
    return not group.members and not group.persistent
