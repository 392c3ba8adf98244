"""The relay's Python API: groups, membership, messages and presence for one gateway.

::

    hub = RelayHub()                                   # memory store, in-process bus
    await hub.create("room", "public", "alice", Endpoint(alice_deliver, owner=conn_a))
    await hub.join("room", "bob", Endpoint(bob_deliver, owner=conn_b))
    await hub.send("room", "alice", "hello", request_id="r1", origin=conn_a)
    # bob_deliver receives Response.sync("r1", {"group_id": "room", "from_user_id": "alice",
    #                                           "message": "hello", "timestamp": ..., "offset": 1})
    hub.owner_closed(conn_b)                           # bob's connection went: he leaves

Group state lives in a :class:`~genapi.relay.store.GroupStore` (changed by
compare-and-set, so several gateways may share one); messages and membership events go
through a :class:`~genapi.relay.bus.RelayBus`, and each hub delivers them to its own
endpoints. The connection that causes an event gets the call's answer instead of a copy
(a sender does not receive its own message; its other connections do).

Notices members receive, as ``Response.sync(PRESENCE_REQUEST_ID, result)``: joins and
leaves batched per ``RelayLimits.presence_interval_ms`` into
``{"group_id", "presence": "diff", "joins": {user_id: {"status", "role"}}, "leaves": {…}}``
(see :mod:`genapi.relay.diffs`), and, as they happen,
``{"group_id", "presence": "status", "user_id", "status", "role"}`` and
``{"group_id", "presence": "deleted"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import msgspec

from ..errors import ConfigError, UsageError
from ..messages import Response
from ..telemetry.events import Telemetry, default_telemetry, now_us
from . import groups, presence
from .bus import GroupDeleted, LocalBus, MemberEvent, RelayBus, RelayEvent
from .diffs import PresenceDiffs
from .endpoints import Endpoint, LocalEndpoints
from .events import (
    RELAY_GROUP_CREATE,
    RELAY_GROUP_DELETE,
    RELAY_MEMBER_JOIN,
    RELAY_MEMBER_LEAVE,
    RELAY_MESSAGE_SENT,
)
from .groups import Group, GroupType, Member, RelayError, not_found, parse_group_type
from .history import Recovery, RelayMessage, iso_timestamp
from .store import GroupStore, MemoryGroupStore, StoreConflict, StoreFull
from .values import JoinResult, PresenceInfo, RelayLimits, SendResult

__all__ = ["PRESENCE_REQUEST_ID", "RelayHub"]

#: The request id of presence notices (they answer no request).
PRESENCE_REQUEST_ID = "relay:presence"
_ATTEMPTS = 32  # compare-and-set rounds before answering "busy"
_json = msgspec.json.Encoder()
T = TypeVar("T")


class RelayHub:
    """Groups and messages for this gateway's connections (see the module docstring).

    ``clock`` gives wall-clock seconds (timestamps, history age); ``hub_id`` prefixes
    connection ids in events (random by default); ``seed`` groups (persistent lobbies,
    say) are created before the first operation unless the store has them already.
    """

    def __init__(
        self,
        *,
        store: GroupStore | None = None,
        bus: RelayBus | None = None,
        limits: RelayLimits | None = None,
        clock: Callable[[], float] = time.time,
        telemetry: Telemetry | None = None,
        hub_id: str | None = None,
        seed: Iterable[Group] = (),
    ) -> None:
        self.store: GroupStore = store if store is not None else MemoryGroupStore()
        self.bus: RelayBus = bus if bus is not None else LocalBus(clock=clock)
        self.limits = limits or RelayLimits()
        self.telemetry = telemetry if telemetry is not None else default_telemetry
        self.local = LocalEndpoints(hub_id or uuid.uuid4().hex[:12],
                                    max_pending=self.limits.max_pending_deliveries)
        self._clock = clock
        self._seed = tuple(seed)
        self._started = False
        self._starting = asyncio.Lock()
        self._cleanups: set[asyncio.Task[None]] = set()
        self._diffs = PresenceDiffs(self._deliver_diff, self.limits.presence_interval_ms / 1000)
        self._unsubscribe = self.bus.subscribe(self.receive)

    def use_backend(self, *, store: GroupStore, bus: RelayBus) -> None:
        """Replace the store and the bus (say, to share them between gateways) — only
        before the hub's first operation."""
        if self._started or self.local.connections():
            raise UsageError("a relay hub changes backends only before its first use")
        self._unsubscribe()
        self.store, self.bus = store, bus
        self._unsubscribe = bus.subscribe(self.receive)

    # -- groups ---------------------------------------------------------------------------

    async def create(
        self,
        group_id: str,
        group_type: str | GroupType,
        creator: str | None,
        endpoint: Endpoint | None = None,
        *,
        persistent: bool = False,
    ) -> Group:
        """Create a group; ``creator`` (if any) is its active admin, reached at
        ``endpoint``. A ``persistent`` group stays when its last member leaves."""
        self._check_group_id(group_id)
        kind = parse_group_type(group_type)
        if endpoint is not None:
            if creator is None:
                raise ConfigError("an endpoint needs a creator")
            self._check_room(endpoint.key)
        group = groups.new_group(group_id, kind, creator=creator, now=self._clock(),
                                 persistent=persistent, connected=endpoint is not None)
        await self._start()
        try:
            revision = await self.store.put(group_id, group, 0)
        except StoreConflict:
            raise RelayError("already_exists", "Group already exists") from None
        except StoreFull:
            raise RelayError("too_many_groups", "Too many groups", can_retry=True) from None
        if endpoint is not None and creator is not None:
            if endpoint.closed:  # the connection went while the group was being written
                await self._disconnect(group_id, creator)
                raise _closed()
            self.local.add(group_id, creator, endpoint, receives=True, revision=revision)
        self._emit(RELAY_GROUP_CREATE, group_id=group_id, group_type=kind.value,
                   creator=creator)
        if creator is not None:
            self._emit(RELAY_MEMBER_JOIN, group_id=group_id, user_id=creator, status="active")
        return group

    async def delete(self, group_id: str, actor: str | None = None, *,
                     origin: Any = None) -> None:
        """Delete a group: ``actor`` must be an active admin (None: the server)."""
        await self._start()
        for _ in range(_ATTEMPTS):
            group, revision = await self.store.get(group_id)
            if group is None:
                raise not_found()
            groups.check_admin(group, actor, "delete the group")
            try:
                await self.store.delete(group_id, revision)
            except StoreConflict:
                continue
            await self._deleted(group_id, "deleted", self.local.conn_id(origin), revision + 1)
            return
        raise _busy()

    async def info(self, group_id: str, actor: str | None = None) -> Group:
        """The group (members of non-public groups only; ``actor`` None: the server)."""
        group = await self._get(group_id)
        if actor is not None:
            groups.check_viewer(group, actor)
        return group

    async def presence(self, group_id: str, actor: str | None = None) -> PresenceInfo:
        """The connected members (same visibility as :meth:`info`)."""
        group = await self.info(group_id, actor)
        return PresenceInfo(group_id, presence.count(group), presence.present(group))

    async def history(self, group_id: str, after: int | None,
                      actor: str | None = None) -> Recovery:
        """Messages after offset ``after`` (``actor`` must be a member that receives)."""
        group = await self._get(group_id)
        if actor is not None:
            member = group.members.get(actor)
            if member is None:
                raise RelayError("not_member", groups.NOT_A_MEMBER)
            if not member.receives:
                raise RelayError("pending", groups.PENDING_MEMBERSHIP)
        return await self.bus.since(group_id, after)

    # -- membership -----------------------------------------------------------------------

    async def join(
        self,
        group_id: str,
        user_id: str,
        endpoint: Endpoint | None = None,
        *,
        last_offset: int | None = None,
    ) -> JoinResult:
        """Join (or, for a member, add the connection ``endpoint``).

        Public groups make the user active, the others pending. Members that receive
        get the group's latest offset and, with ``last_offset``, the messages after it.
        """
        key = endpoint.key if endpoint is not None else None
        if endpoint is not None:
            if self.local.has(group_id, key):
                raise RelayError("already_member", "Already a member of this group")
            self._check_room(key)
        now = self._clock()
        limit = self.limits.max_members

        def change(group: Group) -> tuple[Group, tuple[Member, bool, bool]]:
            if endpoint is not None and user_id in group.members:
                after, first = presence.connect(group, user_id)
                return after, (after.members[user_id], first, False)
            after, member = groups.join(group, user_id, now=now, max_members=limit,
                                        connected=endpoint is not None)
            return after, (member, endpoint is not None, True)

        _, _, (member, first, new), revision = await self._mutate(group_id, change)
        conn = None
        if endpoint is not None:
            # While the store was written, the same connection may have joined (a race
            # between two calls) or closed (its close was announced already): undo.
            if self.local.has(group_id, key):
                await self._disconnect(group_id, user_id)
                raise RelayError("already_member", "Already a member of this group")
            if endpoint.closed:
                await self._disconnect(group_id, user_id)
                raise _closed()
            conn = self.local.add(group_id, user_id, endpoint, receives=member.receives,
                                  revision=revision)
        if new:
            self._emit(RELAY_MEMBER_JOIN, group_id=group_id, user_id=user_id,
                       status=member.status.value)
        if first:
            await self.bus.publish(MemberEvent(
                group_id=group_id, user_id=user_id, status=member.status, role=member.role,
                notice="join", origin=conn, revision=revision))
        recovery = await self.bus.since(group_id, last_offset) if member.receives else None
        return JoinResult(group_id, member, recovery)

    async def leave(self, group_id: str, user_id: str) -> Member:
        """Leave the group (every connection of the user); an empty group goes away."""
        _, after, member, revision = await self._mutate(
            group_id, lambda g: groups.leave(g, user_id))
        self.local.remove_user(group_id, user_id)
        await self._gone(group_id, member, after, "leave", revision)
        return member

    async def accept(self, group_id: str, actor: str, target: str, *,
                     origin: Any = None) -> Member:
        """Accept a pending member (see :func:`genapi.relay.groups.accept`)."""
        return await self._set_status(group_id, lambda g: groups.accept(g, actor, target),
                                      origin)

    async def mute(self, group_id: str, actor: str, target: str, *,
                   origin: Any = None) -> Member:
        """Mute an active member of a strict_private group."""
        return await self._set_status(group_id, lambda g: groups.mute(g, actor, target),
                                      origin)

    async def unmute(self, group_id: str, actor: str, target: str, *,
                     origin: Any = None) -> Member:
        """Unmute a muted member of a strict_private group."""
        return await self._set_status(group_id, lambda g: groups.unmute(g, actor, target),
                                      origin)

    # -- messages -------------------------------------------------------------------------

    async def send(self, group_id: str, user_id: str, message: Any, *,
                   request_id: str = "relay", origin: Any = None) -> SendResult:
        """Send ``message`` (any JSON value) to the group's active and muted members.

        Members receive ``Response.sync(request_id, {group_id, from_user_id, message,
        timestamp, offset})``; the ``origin`` connection gets nothing (it has the answer).
        """
        started = now_us()
        self._check_message(message)
        group = await self._get(group_id)
        groups.check_sender(group, user_id)
        now = self._clock()
        stored = await self.bus.publish_message(RelayMessage(
            group_id=group_id, from_user_id=user_id, message=message,
            timestamp=iso_timestamp(now), sent_at=now, request_id=request_id,
            origin=self.local.conn_id(origin) if origin is not None else None))
        if self.telemetry.has_handlers(RELAY_MESSAGE_SENT):
            self.telemetry.emit(
                RELAY_MESSAGE_SENT,
                {"recipients": group.receivers, "duration_us": now_us() - started},
                {"group_id": group_id, "from_user_id": user_id, "offset": stored.offset})
        return SendResult(group_id, stored.offset, stored.timestamp, group.receivers)

    def receive(self, event: RelayEvent) -> None:
        """Deliver a bus event to this hub's endpoints (the hub's bus subscription)."""
        local = self.local
        diffs = self._diffs
        group_id = event.group_id
        if isinstance(event, RelayMessage):
            if diffs:  # joins and leaves before this message are seen before it
                diffs.flush(group_id)
            local.deliver(group_id, Response.sync(event.request_id, event.payload()),
                          skip=event.origin)
        elif isinstance(event, MemberEvent):
            revision = event.revision
            status = event.status
            if status is None:
                local.remove_user(group_id, event.user_id, revision=revision)
            else:
                local.set_receives(group_id, event.user_id,
                                   status is not groups.MemberStatus.PENDING,
                                   revision=revision)
            notice = event.notice
            if notice is None:
                return
            meta = {"status": status.value if status else None,
                    "role": event.role.value if event.role else None}
            if notice in ("join", "leave"):  # batched: see genapi.relay.diffs
                diffs.add(group_id, event.user_id, notice == "join", meta)
                return
            if diffs:
                diffs.flush(group_id)
            local.deliver(group_id, Response.sync(PRESENCE_REQUEST_ID, {
                "group_id": group_id, "presence": notice, "user_id": event.user_id, **meta}),
                skip=event.origin, revision=revision)
        else:
            diffs.drop(group_id)  # the group is gone: its last diff no longer matters
            notice_ = {"group_id": group_id, "presence": "deleted"}
            local.deliver(group_id, Response.sync(PRESENCE_REQUEST_ID, notice_),
                          skip=event.origin, revision=event.revision)
            local.drop_group(group_id, revision=event.revision)

    def flush_presence(self) -> None:
        """Deliver the pending presence diffs now, not at the end of their interval
        (tests and shutdowns)."""
        self._diffs.flush_all()

    def _deliver_diff(self, group_id: str, notice: dict[str, Any]) -> None:
        self.local.deliver(group_id, Response.sync(PRESENCE_REQUEST_ID, notice))

    # -- connections ----------------------------------------------------------------------

    def owner_closed(self, owner: Any) -> None:
        """A connection went away: its memberships go (in a task the hub owns).

        Register with ``executor.on_owner_closed(hub.owner_closed)``.
        """
        memberships = self._detach(owner)
        if not memberships:
            return
        task = asyncio.get_running_loop().create_task(self._disconnect_all(memberships))
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    async def close_owner(self, owner: Any) -> None:
        """Like :meth:`owner_closed`, awaited."""
        await self._disconnect_all(self._detach(owner))

    async def idle(self) -> None:
        """Wait until the cleanups started by :meth:`owner_closed` are done."""
        while self._cleanups:
            await asyncio.gather(*self._cleanups, return_exceptions=True)

    async def aclose(self) -> None:
        """Stop receiving, finish cleanups, cancel waiting deliveries."""
        self._unsubscribe()
        await self.idle()
        self._diffs.close()
        await self.local.aclose()

    def status(self) -> dict[str, Any]:
        """Counters of this hub's side, as plain data."""
        return {"hub_id": self.local.hub_id, "deliveries_failed": self.local.failures,
                "deliveries_dropped": self.local.dropped, "cleanups": len(self._cleanups)}

    # -- internals ------------------------------------------------------------------------

    def _detach(self, owner: Any) -> list[tuple[str, str]]:
        memberships = self.local.owner_groups(owner)
        for group_id, _ in memberships:
            self.local.discard(group_id, owner)
        return memberships

    async def _disconnect_all(self, memberships: list[tuple[str, str]]) -> None:
        for group_id, user_id in memberships:
            await self._disconnect(group_id, user_id)

    async def _disconnect(self, group_id: str, user_id: str) -> None:
        try:
            _, after, member, revision = await self._mutate(
                group_id, lambda g: presence.disconnect(g, user_id))
        except RelayError:  # the group went meanwhile
            return
        if member is not None:
            await self._gone(group_id, member, after, "closed", revision)

    async def _gone(self, group_id: str, member: Member, after: Group | None,
                    reason: str, revision: int) -> None:
        self._emit(RELAY_MEMBER_LEAVE, group_id=group_id, user_id=member.user_id,
                   reason=reason)
        await self.bus.publish(MemberEvent(
            group_id=group_id, user_id=member.user_id, status=None, role=member.role,
            notice="leave" if member.connections > 0 else None, revision=revision))
        if after is None:
            await self._deleted(group_id, "empty", None, revision)

    async def _deleted(self, group_id: str, reason: str, origin: str | None,
                       revision: int) -> None:
        self._emit(RELAY_GROUP_DELETE, group_id=group_id, reason=reason)
        await self.bus.publish(GroupDeleted(group_id=group_id, origin=origin,
                                            revision=revision))

    async def _set_status(self, group_id: str,
                          change: Callable[[Group], tuple[Group, Member]],
                          origin: Any) -> Member:
        _, _, member, revision = await self._mutate(group_id, change)
        self.local.set_receives(group_id, member.user_id, member.receives)
        await self.bus.publish(MemberEvent(
            group_id=group_id, user_id=member.user_id, status=member.status,
            role=member.role, notice="status", origin=self.local.conn_id(origin),
            revision=revision))
        return member

    async def _mutate(
        self, group_id: str, change: Callable[[Group], tuple[Group, T]]
    ) -> tuple[Group, Group | None, T, int]:
        """Read, change, compare-and-set; retried on conflicts. An emptied non-persistent
        group is deleted in the same write. Returns (before, after or None, outcome,
        revision after the write — for a deletion, one above the last revision)."""
        await self._start()
        for _ in range(_ATTEMPTS):
            group, revision = await self.store.get(group_id)
            if group is None:
                raise not_found()
            after, outcome = change(group)
            try:
                if after is group:
                    return group, group, outcome, revision
                if groups.is_disposable(after):
                    await self.store.delete(group_id, revision)
                    return group, None, outcome, revision + 1
                written = await self.store.put(group_id, after, revision)
            except StoreConflict:
                continue
            return group, after, outcome, written
        raise _busy()

    async def _start(self) -> None:
        """Start the bus and create the seeded groups, once (before the first operation,
        so that a gateway receives as soon as it has a member)."""
        if self._started:
            return
        async with self._starting:
            if self._started:
                return
            await self.bus.start()
            for group in self._seed:
                with contextlib.suppress(StoreConflict):
                    await self.store.put(group.group_id, group, 0)
            self._started = True

    async def _get(self, group_id: str) -> Group:
        await self._start()
        group, _ = await self.store.get(group_id)
        if group is None:
            raise not_found()
        return group

    def _check_group_id(self, group_id: str) -> None:
        limit = self.limits.max_group_id_bytes
        if not isinstance(group_id, str) or not group_id:
            raise RelayError("invalid_group_id", "Invalid group id: must be a non-empty string")
        if len(group_id.encode()) > limit:
            raise RelayError("invalid_group_id", f"Invalid group id: exceeds max {limit} bytes")

    def _check_room(self, key: Any) -> None:
        limit = self.limits.max_groups_per_connection
        if self.local.groups_of(key) >= limit:
            raise RelayError("too_many_groups",
                             f"Too many groups for this connection (max {limit})")

    def _check_message(self, message: Any) -> None:
        limit = self.limits.max_message_bytes
        try:
            size = len(_json.encode(message))
        except (TypeError, msgspec.EncodeError):
            raise RelayError("invalid_message", "Message must be a JSON value") from None
        if size > limit:
            raise RelayError("message_too_large", f"Message exceeds max {limit} bytes")

    def _emit(self, event: str, **metadata: Any) -> None:
        if self.telemetry.has_handlers(event):
            self.telemetry.emit(event, {}, metadata)


def _closed() -> RelayError:
    return RelayError("no_connection", "The connection closed")


def _busy() -> RelayError:
    return RelayError("busy", "Relay busy: please retry", can_retry=True)
