"""The relay's telemetry events (registered in genapi's catalogue at import)."""

from __future__ import annotations

from ..telemetry.events import register_event

__all__ = [
    "RELAY_GROUP_CREATE",
    "RELAY_GROUP_DELETE",
    "RELAY_MEMBER_JOIN",
    "RELAY_MEMBER_LEAVE",
    "RELAY_MESSAGE_SENT",
]

RELAY_MESSAGE_SENT = register_event(
    "relay.message.sent",
    ("recipients", "duration_us"),
    ("group_id", "from_user_id", "offset"),
    "A message was sent to a group: members that receive it, and the time to number it "
    "and hand it to this gateway's members.",
)
RELAY_MEMBER_JOIN = register_event(
    "relay.member.join", (), ("group_id", "user_id", "status"),
    "A user became a member of a group (status active or pending).",
)
RELAY_MEMBER_LEAVE = register_event(
    "relay.member.leave", (), ("group_id", "user_id", "reason"),
    'A member left a group: reason "leave" (asked) or "closed" (its last connection went).',
)
RELAY_GROUP_CREATE = register_event(
    "relay.group.create", (), ("group_id", "group_type", "creator"),
    "A group was created.",
)
RELAY_GROUP_DELETE = register_event(
    "relay.group.delete", (), ("group_id", "reason"),
    'A group was deleted: reason "deleted" (by an admin or the server) or "empty".',
)
