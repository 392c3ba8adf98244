"""The fan-out seam: a bus carries relay events to every gateway's hub.

Each gateway's :class:`~genapi.relay.RelayHub` subscribes once and delivers what arrives
to *its own* connections. The bus also numbers a group's messages (offsets) and keeps
their history, because whoever orders the messages is the one that can replay them.

Events (msgspec structs with a ``type`` tag, so a networked bus can encode them):

* :class:`~genapi.relay.history.RelayMessage` — a message to a group's members;
* :class:`MemberEvent` — a member joined, left or changed status; hubs update their
  local view and pass the notice (if any) to members;
* :class:`GroupDeleted` — the group is gone; its history ends too.

:class:`LocalBus` is the in-process implementation: ``publish`` calls the subscribers
synchronously, so a message is delivered to every local member before ``publish``
returns. :class:`genapi.cluster.relay_bus.NatsRelayBus` shares one between gateways: a
JetStream stream orders and keeps the events, and offsets are stream sequence numbers
(they only increase; they may skip).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Literal, Protocol

import msgspec

from .groups import MemberStatus, Role
from .history import History, Recovery, RelayMessage

__all__ = [
    "GroupDeleted",
    "LocalBus",
    "MemberEvent",
    "Notice",
    "Receiver",
    "RelayBus",
    "RelayEvent",
    "Subscribers",
    "decode_event",
    "encode_event",
]

logger = logging.getLogger("genapi.relay")

#: What members are told: a member came (first connection), went, or changed status.
Notice = Literal["join", "leave", "status"]


class MemberEvent(msgspec.Struct, frozen=True, kw_only=True, tag="member"):
    """A member changed. ``status`` None means it is no longer a member.

    ``origin`` names the connection that caused it (it gets the call's answer, not the
    notice). ``revision`` is the group's store revision after the change: a hub applies
    the event only to connections registered before it (0: to all), so an event that
    arrives late (from another gateway) cannot undo a newer local join.
    """

    group_id: str
    user_id: str
    status: MemberStatus | None
    role: Role | None = None
    notice: Notice | None = None
    origin: str | None = None
    revision: int = 0


class GroupDeleted(msgspec.Struct, frozen=True, kw_only=True, tag="deleted"):
    """The group was deleted (by an admin, or because its last member left).

    ``revision`` is above every revision the deleted group had (0: unknown).
    """

    group_id: str
    origin: str | None = None
    revision: int = 0


RelayEvent = RelayMessage | MemberEvent | GroupDeleted
#: A hub's entry point for events; called synchronously, must not block.
Receiver = Callable[[RelayEvent], None]

_encoder = msgspec.json.Encoder()
_decoder: msgspec.json.Decoder[RelayEvent] = msgspec.json.Decoder(RelayEvent)


def encode_event(event: RelayEvent) -> bytes:
    """JSON bytes of an event (tagged by ``type``)."""
    return _encoder.encode(event)


def decode_event(data: bytes) -> RelayEvent:
    """The event encoded by :func:`encode_event`."""
    return _decoder.decode(data)


class RelayBus(Protocol):
    """Carries events to every subscribed hub; numbers messages and keeps history."""

    def subscribe(self, receiver: Receiver) -> Callable[[], None]:
        """Deliver every event to ``receiver`` from now on; returns the unsubscribe."""

    async def start(self) -> None:
        """Begin receiving (idempotent); hubs call it before their first member joins."""

    async def settle(self, timeout: float = 5.0) -> None:
        """Wait until every event published so far (by anyone) was delivered here."""

    async def publish_message(self, message: RelayMessage) -> RelayMessage:
        """Give ``message`` the group's next offset, keep it, deliver it; returns it
        with the offset."""

    async def publish(self, event: MemberEvent | GroupDeleted) -> None:
        """Deliver a membership event (a :class:`GroupDeleted` also ends the history)."""

    async def since(self, group_id: str, offset: int | None) -> Recovery:
        """The group's messages after ``offset`` (see :meth:`History.since`)."""

    async def aclose(self) -> None:
        """Stop delivering."""


class Subscribers:
    """The receivers of a bus and the dispatch to them (shared by the implementations)."""

    def __init__(self) -> None:
        self._receivers: list[Receiver] = []

    def subscribe(self, receiver: Receiver) -> Callable[[], None]:
        """Deliver every event to ``receiver``; returns the unsubscribe."""
        self._receivers.append(receiver)

        def unsubscribe() -> None:
            if receiver in self._receivers:
                self._receivers.remove(receiver)

        return unsubscribe

    def _dispatch(self, event: RelayEvent) -> None:
        for receiver in tuple(self._receivers):
            try:
                receiver(event)
            except Exception:  # one hub's failure must not starve the others
                logger.exception("relay receiver %r failed on %s", receiver, type(event).__name__)


class LocalBus(Subscribers):
    """The in-process bus: synchronous delivery, a bounded history per group.

    ``history_size`` messages are kept per group, none older than ``history_age``
    seconds (None: no age limit). ``clock`` gives wall-clock seconds.
    """

    def __init__(
        self,
        *,
        history_size: int = 100,
        history_age: float | None = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        History(max_messages=history_size, max_age=history_age, clock=clock)  # validates
        self.history_size = history_size
        self.history_age = history_age
        self._clock = clock
        self._histories: dict[str, History] = {}

    async def start(self) -> None:
        """Nothing to start: delivery is synchronous."""

    async def settle(self, timeout: float = 5.0) -> None:
        """Nothing to wait for: ``publish`` delivers before it returns."""

    async def publish_message(self, message: RelayMessage) -> RelayMessage:
        """Number, keep and deliver ``message``."""
        history = self._histories.get(message.group_id)
        if history is None:
            history = History(max_messages=self.history_size, max_age=self.history_age,
                              clock=self._clock)
            self._histories[message.group_id] = history
        stored = history.append(message)
        self._dispatch(stored)
        return stored

    async def publish(self, event: MemberEvent | GroupDeleted) -> None:
        """Deliver a membership event."""
        if isinstance(event, GroupDeleted):
            self._histories.pop(event.group_id, None)
        self._dispatch(event)

    async def since(self, group_id: str, offset: int | None) -> Recovery:
        """Messages of ``group_id`` after ``offset``."""
        history = self._histories.get(group_id)
        if history is None:
            covered = offset is None or offset == 0
            return Recovery([], covered, 0)
        return history.since(offset)

    async def aclose(self) -> None:
        """Forget the subscribers."""
        self._receivers.clear()
