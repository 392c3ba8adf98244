"""Relay: group messaging with presence and missed-message recovery.

* :mod:`~genapi.relay.groups` — the pure group model and its permission decisions;
* :mod:`~genapi.relay.presence` — connection counts per member, join/leave transitions;
* :mod:`~genapi.relay.history` — the bounded, offset-numbered history of a group;
* :mod:`~genapi.relay.store` — group state behind a compare-and-set store (memory here);
* :mod:`~genapi.relay.bus` — the fan-out seam between gateways (in-process here);
* :mod:`~genapi.relay.endpoints` — this process's connections and the fair fan-out;
* :mod:`~genapi.relay.hub` — :class:`RelayHub`, the Python API (limits and results in
  :mod:`~genapi.relay.values`);
* :mod:`~genapi.relay.service` — the built-in functions clients call.

See ``docs/relay.md`` for the wire shapes.
"""

from __future__ import annotations

from .bus import GroupDeleted, LocalBus, MemberEvent, RelayBus, RelayEvent
from .endpoints import Deliver, Endpoint
from .groups import Group, GroupType, Member, MemberStatus, RelayError, Role
from .history import History, Recovery, RelayMessage
from .hub import PRESENCE_REQUEST_ID, RelayHub
from .service import add_relay, relay_service
from .store import GroupStore, MemoryGroupStore, StoreConflict, StoreError, StoreFull
from .values import JoinResult, PresenceInfo, RelayLimits, SendResult

__all__ = [
    "PRESENCE_REQUEST_ID",
    "Deliver",
    "Endpoint",
    "Group",
    "GroupDeleted",
    "GroupStore",
    "GroupType",
    "History",
    "JoinResult",
    "LocalBus",
    "Member",
    "MemberEvent",
    "MemberStatus",
    "MemoryGroupStore",
    "PresenceInfo",
    "Recovery",
    "RelayBus",
    "RelayError",
    "RelayEvent",
    "RelayHub",
    "RelayLimits",
    "RelayMessage",
    "Role",
    "SendResult",
    "StoreConflict",
    "StoreError",
    "StoreFull",
    "add_relay",
    "relay_service",
]
