"""The server side of one Phoenix Channels connection, sans I/O.

The I/O layer feeds every incoming WebSocket message to :meth:`ServerConnection.receive`,
hands the returned events to the app, and writes :meth:`ServerConnection.data_to_send`.
The app answers joins (``accept_join`` / ``reject_join`` / ``join_crashed``), replies to
messages (``reply``, possibly much later) and pushes (``push``, ``send_broadcast``)::

    conn = ServerConnection(V2_JSON, topics=TopicRouter(["api:*"]))
    for event in conn.receive('["1","1","api:lobby","phx_join",{}]'):
        if isinstance(event, JoinRequested):
            conn.accept_join(event)
    conn.data_to_send()  # ['["1","1","api:lobby","phx_reply",{"status":"ok","response":{}}]']
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, Final

import msgspec

from ...errors import ConfigError
from .channel import Channel, Frame
from .errors import LocalProtocolError, ProtocolError
from .events import (
    ChannelClosed,
    CloseRequested,
    Event,
    JoinRequested,
    MessageReceived,
    ReplyTo,
)
from .message import (
    HEARTBEAT,
    PHOENIX_TOPIC,
    PHX_CLOSE,
    PHX_ERROR,
    PHX_JOIN,
    PHX_LEAVE,
    Message,
    Ref,
)
from .serializers import EMPTY_OBJECT, V2_JSON, Serializer
from .states import CONNECTION_MOVES, ChannelState, ConnectionState, transition
from .topics import TopicRouter

__all__ = [
    "DEFAULT_MAX_CHANNELS",
    "DEFAULT_MAX_TOPIC_LENGTH",
    "Channel",
    "ServerConnection",
    "encode_broadcast",
]

DEFAULT_MAX_CHANNELS: Final = 100
DEFAULT_MAX_TOPIC_LENGTH: Final = 256
DEFAULT_IDLE_TIMEOUT: Final = 60.0
CLOSE_GOING_AWAY: Final = 1001
# A frame that is not a Phoenix message is the client's mistake, not the server's: 1007
# (invalid payload data) with a reason, never 1011 (which says the server failed). Phoenix
# itself answers 1011 because its socket process crashes; clients reconnect on either.
CLOSE_INVALID_DATA: Final = 1007
MALFORMED_FRAME: Final = "malformed Phoenix frame"

#: Control characters (C0 and DEL) are never part of a topic: they only serve to smuggle
#: look-alike topics past logs and authorizers.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

UNMATCHED_TOPIC: Final = msgspec.Raw(b'{"reason":"unmatched topic"}')


@functools.lru_cache(maxsize=64)
def unmatched_join(patterns: tuple[str, ...]) -> msgspec.Raw:
    """The refusal of a join no pattern matches: Phoenix's reason (clients match on it),
    and under ``topics`` the patterns that would have matched."""
    return msgspec.Raw(msgspec.json.encode({"reason": "unmatched topic",
                                            "topics": list(patterns)}))
TOO_MANY_CHANNELS: Final = msgspec.Raw(b'{"reason":"too many channels joined"}')
INVALID_TOPIC: Final = msgspec.Raw(b'{"reason":"invalid topic"}')
JOIN_CRASHED: Final = msgspec.Raw(b'{"reason":"join crashed"}')
CHANNEL_CRASH: Final = msgspec.Raw(b'{"reason":"channel_crash"}')

_JOINING = ChannelState.JOINING
_JOINED = ChannelState.JOINED
_OPEN = ConnectionState.OPEN

def same_ref(a: Ref, b: Ref | None) -> bool:
    """Whether two refs name the same join: equal, or equal once written as text.

    phoenix.js sends strings; odd clients send ``1`` for ``"1"``. Dropping their messages
    as stale would leave them waiting for replies that never come.
    """
    return a == b or (b is not None and type(a) is not type(b) and str(a) == str(b))


@functools.lru_cache(maxsize=8)
def _topic_too_long(limit: int) -> msgspec.Raw:
    return msgspec.Raw(msgspec.json.encode({"reason": "topic too long",
                                            "max_topic_length": limit}))


def encode_broadcast(serializer: Serializer, topic: str, event: str, payload: Any) -> Frame:
    """Encode a broadcast once; hand the frame to every subscriber's ``send_broadcast``.

    Connections with another serializer (V1) need their own encoding.
    """
    return serializer.encode_broadcast(topic, event, payload)


class ServerConnection:
    """The Phoenix protocol state of one client connection (spec §6).

    ``topics`` are the patterns channels may be joined on. ``clock`` (monotonic seconds)
    stamps :attr:`last_activity`, from which the I/O layer applies the idle timeout.
    Methods that send for a channel return ``False`` (and send nothing) when the channel or
    the connection is gone, since an app answering asynchronously cannot avoid that race.
    """

    __slots__ = (
        "_channels",
        "_clock",
        "_close_code",
        "_close_reason",
        "_idle_timeout",
        "_last_activity",
        "_max_channels",
        "_max_topic_length",
        "_outgoing",
        "_router",
        "_serializer",
        "_state",
        "_topic_too_long",
        "_unmatched_join",
    )

    def __init__(
        self,
        serializer: Serializer = V2_JSON,
        *,
        topics: TopicRouter | Iterable[str],
        max_channels: int = DEFAULT_MAX_CHANNELS,
        max_topic_length: int = DEFAULT_MAX_TOPIC_LENGTH,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_channels < 1:
            raise ConfigError("max_channels must be at least 1")
        if max_topic_length < 1:
            raise ConfigError("max_topic_length must be at least 1")
        self._max_topic_length = max_topic_length
        self._topic_too_long = _topic_too_long(max_topic_length)
        self._serializer = serializer
        self._router = topics if isinstance(topics, TopicRouter) else TopicRouter(topics)
        self._unmatched_join = unmatched_join(self._router.patterns)
        self._max_channels = max_channels
        self._idle_timeout = idle_timeout
        self._clock = clock
        self._state = ConnectionState.OPEN
        self._close_code: int | None = None
        self._close_reason = ""
        self._channels: dict[str, Channel] = {}
        self._outgoing: list[Frame] = []
        self._last_activity = clock()

    # ---- inspection ---------------------------------------------------------------------

    @property
    def serializer(self) -> Serializer:
        """The serializer negotiated for this connection."""
        return self._serializer

    @property
    def state(self) -> ConnectionState:
        """Where the connection is in its lifecycle."""
        return self._state

    @property
    def close_code(self) -> int | None:
        """The WebSocket close code asked for, once closing."""
        return self._close_code

    @property
    def close_reason(self) -> str:
        """The WebSocket close reason to send with :attr:`close_code` ("" for none)."""
        return self._close_reason

    @property
    def channels(self) -> Mapping[str, Channel]:
        """Joined and joining channels by topic (a read-only view)."""
        return MappingProxyType(self._channels)

    @property
    def last_activity(self) -> float:
        """Clock time of the last frame received (or of creation)."""
        return self._last_activity

    @property
    def idle_deadline(self) -> float:
        """Clock time after which the connection is idle and should be closed (1001)."""
        return self._last_activity + self._idle_timeout

    def touch(self) -> None:
        """Count as activity now, without a frame: a transport without heartbeats (long
        poll) keeps the connection alive by its polls."""
        self._last_activity = self._clock()

    # ---- input --------------------------------------------------------------------------

    def receive(self, data: str | bytes) -> list[Event]:
        """Process one WebSocket message (text as ``str``, binary as ``bytes``).

        Heartbeats are answered here. A frame whose payload cannot be decoded (NaN, nesting
        too deep) but whose ``ref`` can be read gets an error reply ``{"reason": "Invalid
        request: …"}``; any other malformed frame yields ``CloseRequested(1007)`` and every
        later input is ignored.
        """
        if self._state is not _OPEN:
            return []
        self._last_activity = self._clock()
        try:
            message = self._serializer.decode_client_frame(data)
        except ProtocolError as exc:
            return self._malformed(data, exc)
        event = message.event
        topic = message.topic
        if event == HEARTBEAT and topic == PHOENIX_TOPIC:
            self._outgoing.append(self._serializer.encode_reply(None, message.ref, topic, "ok"))
            return []
        if event == PHX_JOIN:
            return self._join(message)
        channel = self._channels.get(topic)
        if channel is not None:
            join_ref = message.join_ref
            if join_ref is not None and not same_ref(join_ref, channel.join_ref):
                return []  # stale: it belongs to an earlier join of this topic
            if event == PHX_LEAVE:
                return self._leave(channel, message)
            if channel._state is _JOINED:
                return [MessageReceived(message)]
            # a push on a join the app has not accepted yet is treated as "not joined", so
            # that nothing reaches the app for a topic it may still refuse
        if event == PHX_LEAVE:
            self._reply(message.join_ref, message.ref, topic, "ok")
        else:
            self._reply(None, message.ref, topic, "error", UNMATCHED_TOPIC)
        return []

    def _malformed(self, data: str | bytes, exc: ProtocolError) -> list[Event]:
        envelope = self._serializer.salvage_envelope(data)
        if envelope is not None and envelope[1] is not None:
            join_ref, ref, topic = envelope
            detail = ("payload nested too deeply" if "depth" in str(exc)
                      else "payload is not valid JSON")
            self._reply(join_ref, ref, topic, "error", {"reason": f"Invalid request: {detail}"})
            return []
        self._begin_close(CLOSE_INVALID_DATA, MALFORMED_FRAME)
        return [CloseRequested(CLOSE_INVALID_DATA, MALFORMED_FRAME, exc)]

    def _join(self, message: Message) -> list[Event]:
        topic = message.topic
        if len(topic) > self._max_topic_length or _CONTROL.search(topic) is not None:
            # refused before anything is stored: a client cannot park megabytes in topics
            reason = (self._topic_too_long if len(topic) > self._max_topic_length
                      else INVALID_TOPIC)
            self._reply(message.join_ref, message.ref, topic, "error", reason)
            return []
        events: list[Event] = []
        old = self._channels.get(topic)
        if old is not None:
            was_joined = old._state is _JOINED
            self._drop(old)
            if was_joined:  # a join never answered has nothing to close on the client
                self._send_control(old, PHX_CLOSE, EMPTY_OBJECT)
            events.append(ChannelClosed(topic, old.join_ref, "duplicate join"))
        pattern = self._router.match(topic)
        if pattern is None:
            self._reply(None, message.ref, topic, "error", self._unmatched_join)
            return events
        if len(self._channels) >= self._max_channels:
            self._reply(message.join_ref, message.ref, topic, "error", TOO_MANY_CHANNELS)
            return events
        join_ref = message.join_ref if message.join_ref is not None else message.ref
        channel = Channel(topic, join_ref, pattern)
        self._channels[topic] = channel
        events.append(JoinRequested(channel, message))
        return events

    def _leave(self, channel: Channel, message: Message) -> list[Event]:
        if channel._state is _JOINING:
            # the client gave up waiting for the join (its 10 s timeout): cancel the join;
            # never joined, so the leave gets its reply and nothing else
            self._drop(channel)
            self._reply(message.join_ref, message.ref, channel.topic, "ok")
        else:
            channel._move(ChannelState.LEAVING)
            self._reply(message.join_ref, message.ref, channel.topic, "ok")
            self._send_control(channel, PHX_CLOSE, EMPTY_OBJECT)
            self._drop(channel)
        return [ChannelClosed(channel.topic, channel.join_ref, "left")]

    # ---- answers to joins ---------------------------------------------------------------

    def accept_join(self, event: JoinRequested, response: Any = None) -> bool:
        """Reply ``ok`` (with ``response``, default ``{}``), then release held frames.

        ``False`` if the join was cancelled meanwhile (leave, duplicate join, closing).
        """
        channel = event.channel
        if not self._is_live(channel):
            return False
        message = event.message
        frame = self._serializer.encode_reply(
            message.join_ref, message.ref, channel.topic, "ok", response
        )
        channel._move(_JOINED)
        self._outgoing.append(frame)
        held = channel._held
        channel._held = None
        if held:
            self._outgoing.extend(held)
        return True

    def reject_join(self, event: JoinRequested, reason: Any) -> bool:
        """Reply ``error`` with ``reason`` (e.g. ``{"reason": "unauthorized"}``); store nothing.

        ``False`` if the join was cancelled meanwhile.
        """
        channel = event.channel
        if not self._is_live(channel):
            return False
        message = event.message
        frame = self._serializer.encode_reply(
            message.join_ref, message.ref, channel.topic, "error", reason
        )
        if channel._state is not _JOINING:
            raise LocalProtocolError(f"cannot reject the {channel._state.value} join")
        self._drop(channel)
        self._outgoing.append(frame)
        return True

    def join_crashed(self, event: JoinRequested) -> bool:
        """The app's join handler raised: reply ``{"reason":"join crashed"}``."""
        return self.reject_join(event, JOIN_CRASHED)

    # ---- app output ---------------------------------------------------------------------

    def reply(
        self,
        to: MessageReceived | ReplyTo | tuple[Ref | None, Ref | None, str],
        status: str = "ok",
        response: Any = None,
    ) -> bool:
        """Reply to a channel message, now or later; echoes its join_ref and ref.

        ``response`` defaults to ``{}``; ``bytes`` go as a binary reply. ``False`` if the
        channel has been closed or rejoined since.
        """
        join_ref, ref, topic = to.reply_to if isinstance(to, MessageReceived) else to
        channel = self._channels.get(topic)
        if (
            channel is None
            or channel._state is not _JOINED
            or (join_ref is not None and not same_ref(join_ref, channel.join_ref))
            or self._state is not _OPEN
        ):
            return False
        self._reply(join_ref, ref, topic, status, response)
        return True

    def push(self, topic: str, event: str, payload: Any) -> bool:
        """Push ``event`` to this client on ``topic`` (binary when ``payload`` is bytes).

        Held until after the join reply if the join is pending. ``False`` if not joined.
        """
        channel = self._channels.get(topic)
        if channel is None or self._state is not _OPEN:
            return False
        frame = self._serializer.encode_push(channel.join_ref, topic, event, payload)
        held = channel._held
        if held is None:
            self._outgoing.append(frame)
        else:
            held.append(frame)
        return True

    def send_broadcast(self, topic: str, frame: Frame) -> bool:
        """Queue a frame from :func:`encode_broadcast` if this client is on ``topic``."""
        channel = self._channels.get(topic)
        if channel is None or self._state is not _OPEN:
            return False
        held = channel._held
        if held is None:
            self._outgoing.append(frame)
        else:
            held.append(frame)
        return True

    def close_channel(self, topic: str) -> bool:
        """Stop a joined channel normally (a kick): ``phx_close``; the client won't rejoin."""
        return self._end_channel(topic, PHX_CLOSE, EMPTY_OBJECT)

    def error_channel(self, topic: str) -> bool:
        """The channel crashed: ``phx_error`` ``{"reason":"channel_crash"}``; clients rejoin."""
        return self._end_channel(topic, PHX_ERROR, CHANNEL_CRASH)

    def data_to_send(self) -> list[Frame]:
        """Take every queued frame (text frames are ``str``, binary frames ``bytes``)."""
        out = self._outgoing
        if not out:
            return []
        self._outgoing = []
        return out

    # ---- connection lifecycle -----------------------------------------------------------

    def close(self, code: int = CLOSE_GOING_AWAY, reason: str = "") -> None:
        """Start closing (e.g. 1001 for a disconnect, 1012 for a drain); input is ignored."""
        self._begin_close(code, reason)

    def connection_lost(self) -> list[Event]:
        """The socket is gone: every channel ends with reason ``"closed"``. Call it once."""
        self._state = transition(
            CONNECTION_MOVES, self._state, ConnectionState.CLOSED, "connection"
        )
        events: list[Event] = []
        for channel in list(self._channels.values()):
            self._drop(channel)
            events.append(ChannelClosed(channel.topic, channel.join_ref, "closed"))
        self._outgoing = []
        return events

    # ---- internals ----------------------------------------------------------------------

    def _begin_close(self, code: int, reason: str = "") -> None:
        self._state = transition(
            CONNECTION_MOVES, self._state, ConnectionState.CLOSING, "connection"
        )
        self._close_code = code
        self._close_reason = reason

    def _is_live(self, channel: Channel) -> bool:
        return self._state is _OPEN and self._channels.get(channel.topic) is channel

    def _drop(self, channel: Channel) -> None:
        del self._channels[channel.topic]
        channel._move(ChannelState.CLOSED)
        channel._held = None

    def _reply(
        self, join_ref: Ref | None, ref: Ref | None, topic: str, status: str, response: Any = None
    ) -> None:
        self._outgoing.append(self._serializer.encode_reply(join_ref, ref, topic, status, response))

    def _send_control(self, channel: Channel, event: str, payload: Any) -> None:
        # phx_close / phx_error carry ref = join_ref, the join_ref of the channel concerned
        jr = channel.join_ref
        self._outgoing.append(
            self._serializer.encode_server_frame(jr, jr, channel.topic, event, payload)
        )

    def _end_channel(self, topic: str, event: str, payload: Any) -> bool:
        channel = self._channels.get(topic)
        if channel is None or self._state is not _OPEN:
            return False
        if channel._state is _JOINING:
            raise LocalProtocolError("answer a pending join with reject_join, not by closing it")
        self._send_control(channel, event, payload)
        self._drop(channel)
        return True

    def __repr__(self) -> str:
        return (
            f"ServerConnection(serializer={self._serializer!r}, state={self._state.value}, "
            f"channels={len(self._channels)})"
        )
