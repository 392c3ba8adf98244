"""Presence: which members of a group are connected, as pure functions over a group.

Each member counts its open connections (a user may be in a group from several tabs or
devices, on several gateways); a member is *present* while that count is above zero.
The group keeps the number of present members, so :func:`count` is O(1). Presence
notices follow the transitions: ``join`` when a member's first connection arrives,
``leave`` when its last one goes (a member whose last connection closes also leaves the
group).
"""

from __future__ import annotations

import msgspec

from .groups import Group, Member, put_member, remove_member

__all__ = ["connect", "count", "disconnect", "present"]


def connect(group: Group, user_id: str) -> tuple[Group, bool]:
    """One more connection for ``user_id``; True when it is the first (a join notice)."""
    member = group.members[user_id]
    first = member.connections == 0
    changed = msgspec.structs.replace(member, connections=member.connections + 1)
    return put_member(group, changed), first


def disconnect(group: Group, user_id: str) -> tuple[Group, Member | None]:
    """One connection of ``user_id`` fewer; after its last one the member is removed.

    Returns the new group and the member when it was removed (a leave notice), else None.
    An unknown member (already gone) leaves the group unchanged.
    """
    member = group.members.get(user_id)
    if member is None:
        return group, None
    if member.connections <= 1:
        return remove_member(group, user_id), member
    changed = msgspec.structs.replace(member, connections=member.connections - 1)
    return put_member(group, changed), None


def count(group: Group) -> int:
    """How many members are connected."""
    return group.online


def present(group: Group) -> list[Member]:
    """The connected members, in joining order."""
    return [m for m in group.members.values() if m.connections > 0]
