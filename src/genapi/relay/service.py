"""The relay as built-in functions clients call (service ``"relay"`` by default).

::

    hub = add_relay(gateway)        # the service, plus cleanup when connections close

Every function needs an authenticated caller; who acts is always the socket's user id,
never an argument. Functions that make the caller a member (``create_group``,
``join_group``) register the calling channel — messages and notices are pushed on the
topic the call came in on, and leaving that topic (or closing the socket) leaves the
group — so they need a WebSocket (over HTTP they answer ``Relay groups need a WebSocket
connection``).

==============  ===========================================  =============================
request_type    args                                         result
==============  ===========================================  =============================
create_group    group_id, group_type = "public"              group_id, group_type, status,
                                                             role
delete_group    group_id                                     group_id, deleted
join_group      group_id, last_offset = null                 group_id, status, role,
                                                             [offset, messages, recovered]
accept_member   group_id, user_id                            group_id, user_id, status, role
mute_member     group_id, user_id                            (same)
unmute_member   group_id, user_id                            (same)
leave_group     group_id                                     group_id, left
group_info      group_id                                     group_id, group_type,
                                                             persistent, member_count,
                                                             online_count, members
presence        group_id                                     group_id, count, members
send_message    group_id, message (any JSON, max bytes)      status "relayed",
                                                             recipients_count, offset,
                                                             timestamp
==============  ===========================================  =============================

``join_group`` answers ``offset`` (the group's latest) to members that receive; with
``last_offset`` also ``messages`` (the payloads after it, oldest first) and
``recovered`` (False when the history no longer covers ``last_offset``). Refusals are
``success: false`` with the :class:`~genapi.relay.RelayError` message; the ``phx_reply``
error payload carries its ``code``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

from ..errors import ArgumentError, AuthenticationRequired, ConfigError
from ..execution.context import CallContext
from ..functions.service import Service
from .endpoints import Endpoint
from .groups import Group, Member, RelayError
from .history import iso_timestamp
from .hub import RelayHub
from .values import RelayLimits

__all__ = ["LiveConnection", "add_relay", "group_dict", "member_dict", "relay_service"]


class _Registry(Protocol):
    def add_service(self, service: Service) -> Any: ...


class _Executor(Protocol):
    def on_owner_closed(self, callback: Any) -> None: ...


class _Host(Protocol):
    @property
    def registry(self) -> _Registry: ...

    @property
    def executor(self) -> _Executor: ...


def member_dict(member: Member) -> dict[str, Any]:
    """A member as clients see it."""
    return {"user_id": member.user_id, "role": member.role.value,
            "status": member.status.value, "joined_at": iso_timestamp(member.joined_at),
            "connections": member.connections}


def group_dict(group: Group) -> dict[str, Any]:
    """A group as ``group_info`` answers it."""
    return {"group_id": group.group_id, "group_type": group.group_type.value,
            "persistent": group.persistent, "member_count": len(group.members),
            "online_count": group.online,
            "members": [member_dict(m) for m in group.members.values()]}


def _user(call: CallContext) -> str:
    user_id = call.request.user_id
    if not user_id:  # the config requires identity; this keeps the type checker honest
        raise AuthenticationRequired()
    return user_id


@runtime_checkable
class LiveConnection(Protocol):
    """What the relay needs to make a caller a member: something that says when it is
    closing and is announced to ``on_owner_closed`` when it closes — the gateway's
    WebSocket channels (their sinks) and connections are. HTTP calls have neither."""

    @property
    def closing(self) -> bool: ...


def _member_of(call: CallContext) -> Any:
    """Who holds the caller's memberships: the channel (topic) the call came in on when
    its sink says when it closes — leaving the topic leaves its groups, as in Phoenix —
    else the connection."""
    return call.sink if isinstance(call.sink, LiveConnection) else call.owner


def _endpoint(call: CallContext) -> Endpoint:
    holder = _member_of(call)
    if call.sink is None or not isinstance(holder, LiveConnection):
        raise RelayError("no_connection", "Relay groups need a WebSocket connection")
    return Endpoint(call.sink, owner=holder, alive=lambda: not holder.closing)


def _offset(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or value < 0:
        raise ArgumentError("Invalid argument last_offset: expected a non-negative integer")
    return value


def _status(member: Member, group_id: str) -> dict[str, Any]:
    return {"group_id": group_id, "user_id": member.user_id, "status": member.status.value,
            "role": member.role.value}


class _Functions:
    """The built-in functions, bound to one hub."""

    def __init__(self, hub: RelayHub) -> None:
        self.hub = hub

    async def create_group(self, group_id: str, group_type: str,
                           call: CallContext) -> dict[str, Any]:
        group = await self.hub.create(group_id, group_type, _user(call), _endpoint(call))
        return {"group_id": group.group_id, "group_type": group.group_type.value,
                "status": "active", "role": "admin"}

    async def delete_group(self, group_id: str, call: CallContext) -> dict[str, Any]:
        await self.hub.delete(group_id, _user(call), origin=_member_of(call))
        return {"group_id": group_id, "deleted": True}

    async def join_group(self, group_id: str, last_offset: Any,
                         call: CallContext) -> dict[str, Any]:
        after = _offset(last_offset)
        joined = await self.hub.join(group_id, _user(call), _endpoint(call), last_offset=after)
        member = joined.member
        result: dict[str, Any] = {"group_id": group_id, "status": member.status.value,
                                  "role": member.role.value}
        recovery = joined.recovery
        if recovery is not None:
            result["offset"] = recovery.offset
        if after is not None:
            result["messages"] = ([m.payload() for m in recovery.messages]
                                  if recovery is not None else [])
            result["recovered"] = recovery is not None and recovery.recovered
        return result

    async def accept_member(self, group_id: str, user_id: str,
                            call: CallContext) -> dict[str, Any]:
        member = await self.hub.accept(group_id, _user(call), user_id, origin=_member_of(call))
        return _status(member, group_id)

    async def mute_member(self, group_id: str, user_id: str,
                          call: CallContext) -> dict[str, Any]:
        member = await self.hub.mute(group_id, _user(call), user_id, origin=_member_of(call))
        return _status(member, group_id)

    async def unmute_member(self, group_id: str, user_id: str,
                            call: CallContext) -> dict[str, Any]:
        member = await self.hub.unmute(group_id, _user(call), user_id, origin=_member_of(call))
        return _status(member, group_id)

    async def leave_group(self, group_id: str, call: CallContext) -> dict[str, Any]:
        await self.hub.leave(group_id, _user(call))
        return {"group_id": group_id, "left": True}

    async def group_info(self, group_id: str, call: CallContext) -> dict[str, Any]:
        return group_dict(await self.hub.info(group_id, _user(call)))

    async def presence(self, group_id: str, call: CallContext) -> dict[str, Any]:
        info = await self.hub.presence(group_id, _user(call))
        return {"group_id": group_id, "count": info.count,
                "members": [member_dict(m) for m in info.members]}

    async def send_message(self, group_id: str, message: Any,
                           call: CallContext) -> dict[str, Any]:
        sent = await self.hub.send(group_id, _user(call), message,
                                   request_id=call.request.request_id, origin=_member_of(call))
        return {"status": "relayed", "recipients_count": sent.recipients,
                "offset": sent.offset, "timestamp": sent.timestamp}


def relay_service(hub: RelayHub, *, name: str = "relay") -> Service:
    """The built-in relay functions over ``hub``, as a :class:`~genapi.Service`."""
    functions = _Functions(hub)
    group_id = ("string", hub.limits.max_group_id_bytes)
    user_id = ("string", 256)
    service = Service(name, check_permission="any_authenticated")
    service.add(functions.create_group, "create_group", arg_types={
        "group_id": group_id,
        "group_type": {"type": "string", "max_bytes": 32, "default_value": "public"}})
    service.add(functions.join_group, "join_group", arg_types={
        "group_id": group_id, "last_offset": {"type": "num", "allow_nil": True}})
    for by_group in (functions.delete_group, functions.leave_group, functions.group_info,
                     functions.presence):
        service.add(by_group, by_group.__name__, arg_types={"group_id": group_id})
    for moderate in (functions.accept_member, functions.mute_member, functions.unmute_member):
        service.add(moderate, moderate.__name__,
                    arg_types={"group_id": group_id, "user_id": user_id})
    service.add(functions.send_message, "send_message",
                arg_types={"group_id": group_id, "message": "any"})
    return service


def add_relay(host: _Host, hub: RelayHub | None = None, *, name: str = "relay",
              seed: Iterable[Group] = (), limits: RelayLimits | None = None) -> RelayHub:
    """Serve the relay functions from ``host`` (a :class:`~genapi.Gateway`) and remove
    memberships when connections close; returns the hub.

    ``limits`` bound the hub made here (members per group — ``max_members`` counts a
    message's receivers, the sender not included —, message size, the presence diff
    interval …; default :class:`~genapi.relay.RelayLimits`).

    Without ``hub`` one is made whose groups and messages stay in this process — until
    the gateway joins a cluster (``cluster=`` or :meth:`~genapi.Gateway.join_cluster`,
    before or after this call): then they are shared with the cluster's other gateways
    over NATS (:meth:`~genapi.gateway.cluster.GatewayCluster.share_relay`). ``seed``
    groups (persistent lobbies) are created at start unless they exist.
    """
    if hub is None:
        made = hub = RelayHub(seed=seed, limits=limits)
        on_cluster = getattr(host, "on_cluster", None)
        if on_cluster is not None:
            on_cluster(lambda cluster: cluster.share_relay(made))
    elif seed or limits is not None:
        raise ConfigError("give seed groups and limits to the hub you pass "
                          "(RelayHub(seed=..., limits=...))")
    host.registry.add_service(relay_service(hub, name=name))
    host.executor.on_owner_closed(hub.owner_closed)
    return hub
