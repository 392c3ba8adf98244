"""The relay's value objects: a hub's limits and what its operations return."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from .groups import Member
from .history import Recovery

__all__ = ["JoinResult", "PresenceInfo", "RelayLimits", "SendResult"]


@dataclass(frozen=True, slots=True)
class RelayLimits:
    """Bounds of one hub: members per group, groups per connection, message and id size,
    background deliveries waiting (see :mod:`genapi.relay.endpoints`), and how long
    joins and leaves are collected into one presence diff (:mod:`genapi.relay.diffs`).

    ``max_members`` counts the receivers of a message: a group holds at most
    ``max_members + 1`` members, so that a message from any one of them reaches at most
    ``max_members`` others (the sender is not a receiver slot). Pending members count
    too (they take a place once accepted).
    """

    max_members: int = 1000
    max_groups_per_connection: int = 100
    max_message_bytes: int = 8192
    max_group_id_bytes: int = 128
    max_pending_deliveries: int = 10_000
    presence_interval_ms: int = 50

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"RelayLimits.{name} must be a positive integer")


@dataclass(frozen=True, slots=True)
class JoinResult:
    """The member after joining, and (for members that receive) what they missed."""

    group_id: str
    member: Member
    recovery: Recovery | None


@dataclass(frozen=True, slots=True)
class SendResult:
    """A sent message: its offset, timestamp and how many members receive it."""

    group_id: str
    offset: int
    timestamp: str
    recipients: int


@dataclass(frozen=True, slots=True)
class PresenceInfo:
    """The connected members of a group and their number."""

    group_id: str
    count: int
    members: list[Member]
