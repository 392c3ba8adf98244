"""Events the connection cores hand to the code that drives them.

Server side (:class:`~genapi.protocol.phoenix.ServerConnection`): :class:`JoinRequested`,
:class:`MessageReceived`, :class:`ChannelClosed`, :class:`CloseRequested`.

Client side (:class:`~genapi.protocol.phoenix.ClientConnection`): :class:`ReplyReceived`,
:class:`ReplyTimedOut`, :class:`PushReceived`, :class:`ChannelJoined`,
:class:`ChannelErrored`, :class:`ChannelClosed`, :class:`HeartbeatAcked`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from .channel import Channel
from .errors import ProtocolError
from .message import Message, Ref

__all__ = [
    "ChannelClosed",
    "ChannelErrored",
    "ChannelJoined",
    "CloseRequested",
    "Event",
    "HeartbeatAcked",
    "JoinRequested",
    "MessageReceived",
    "PushReceived",
    "ReplyReceived",
    "ReplyTimedOut",
    "ReplyTo",
]


class Event:
    """Base class of every event."""

    __slots__ = ()


class ReplyTo(NamedTuple):
    """Where a (possibly deferred) reply goes: the request's join_ref, ref and topic."""

    join_ref: Ref | None
    ref: Ref | None
    topic: str


# ---- server side -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JoinRequested(Event):
    """A client asks to join a topic that matches a registered pattern.

    Answer with ``accept_join``, ``reject_join`` or ``join_crashed``.
    """

    channel: Channel
    message: Message

    @property
    def topic(self) -> str:
        """The topic to join."""
        return self.message.topic

    @property
    def pattern(self) -> str:
        """The registered pattern the topic matched (pick the handler with it)."""
        return self.channel.pattern

    @property
    def join_ref(self) -> Ref | None:
        """The join_ref the channel will have (the join's join_ref, else its ref)."""
        return self.channel.join_ref

    @property
    def payload(self) -> Any:
        """The join params (decoded on first access)."""
        return self.message.payload

    @property
    def payload_raw(self) -> bytes | None:
        """The join params as raw JSON (``None`` for a binary join)."""
        return self.message.payload_raw


@dataclass(frozen=True, slots=True)
class MessageReceived(Event):
    """A client pushed an event on a joined channel; reply now, later, or never."""

    message: Message

    @property
    def topic(self) -> str:
        """The channel's topic."""
        return self.message.topic

    @property
    def event(self) -> str:
        """The event name, e.g. ``"api"``."""
        return self.message.event

    @property
    def join_ref(self) -> Ref | None:
        """The push's join_ref (``None`` when the client sent null)."""
        return self.message.join_ref

    @property
    def ref(self) -> Ref | None:
        """The push's ref; a reply must carry it."""
        return self.message.ref

    @property
    def payload(self) -> Any:
        """The payload (decoded on first access); ``bytes`` for a binary push."""
        return self.message.payload

    @property
    def payload_raw(self) -> bytes | None:
        """The payload's raw JSON bytes, ``None`` for a binary push."""
        return self.message.payload_raw

    @property
    def reply_to(self) -> ReplyTo:
        """The address of the reply, to keep for a deferred reply."""
        message = self.message
        return ReplyTo(message.join_ref, message.ref, message.topic)


@dataclass(frozen=True, slots=True)
class ChannelClosed(Event):
    """A channel is gone.

    Server reasons: ``"left"`` (client leave), ``"duplicate join"`` (replaced by a new join),
    ``"closed"`` (connection lost). Client reasons: ``"closed"`` (server ``phx_close``),
    ``"left"`` (local leave).
    """

    topic: str
    join_ref: Ref | None
    reason: str


@dataclass(frozen=True, slots=True)
class CloseRequested(Event):
    """The core wants the WebSocket closed with ``code`` (1011 after a malformed frame)."""

    code: int
    reason: str
    error: ProtocolError | None = None


# ---- client side -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReplyReceived(Event):
    """The server answered a join, push or leave sent with ``ref``."""

    topic: str
    ref: Ref
    join_ref: Ref | None
    status: str
    response: Any


@dataclass(frozen=True, slots=True)
class ReplyTimedOut(Event):
    """No reply to ``ref`` arrived before its deadline; a later reply is ignored."""

    topic: str
    ref: Ref


@dataclass(frozen=True, slots=True)
class PushReceived(Event):
    """A server push (``join_ref`` set) or broadcast (``join_ref`` ``None``) on a channel."""

    message: Message

    @property
    def topic(self) -> str:
        """The channel's topic."""
        return self.message.topic

    @property
    def event(self) -> str:
        """The event name."""
        return self.message.event

    @property
    def join_ref(self) -> Ref | None:
        """The channel's join_ref for a push, ``None`` for a broadcast."""
        return self.message.join_ref

    @property
    def payload(self) -> Any:
        """The payload (decoded on first access); ``bytes`` for a binary frame."""
        return self.message.payload


@dataclass(frozen=True, slots=True)
class ChannelJoined(Event):
    """A join (or rejoin) of ``topic`` succeeded; buffered pushes were sent."""

    topic: str
    join_ref: Ref
    response: Any


@dataclass(frozen=True, slots=True)
class ChannelErrored(Event):
    """A channel failed and wants a rejoin (call ``rejoin`` after a backoff).

    ``reason``: the refused join's response, the ``phx_error`` payload, ``"timeout"`` or
    ``"connection_closed"``.
    """

    topic: str
    join_ref: Ref | None
    reason: Any


@dataclass(frozen=True, slots=True)
class HeartbeatAcked(Event):
    """A frame carrying the pending heartbeat's ref arrived."""

    ref: Ref
