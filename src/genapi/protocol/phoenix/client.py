"""The client side of a Phoenix Channels connection, sans I/O (phoenix.js's behaviour).

The I/O layer calls :meth:`ClientConnection.connected` when the WebSocket opens (which
queues a join for every channel that should be joined), feeds every incoming message to
:meth:`~ClientConnection.receive`, calls :meth:`~ClientConnection.check_timeouts` at
:meth:`~ClientConnection.next_deadline`, sends a :meth:`~ClientConnection.heartbeat` every
30 s (closing the socket if :attr:`~ClientConnection.pending_heartbeat_ref` is still set
when the next one is due), and writes :meth:`~ClientConnection.data_to_send`.
"""

from __future__ import annotations

import enum
import heapq
import time
from collections.abc import Callable
from typing import Any, Final

from .errors import LocalProtocolError, ProtocolError
from .events import (
    ChannelClosed,
    ChannelErrored,
    ChannelJoined,
    Event,
    HeartbeatAcked,
    PushReceived,
    ReplyReceived,
    ReplyTimedOut,
)
from .message import (
    HEARTBEAT,
    PHOENIX_TOPIC,
    PHX_CLOSE,
    PHX_ERROR,
    PHX_JOIN,
    PHX_LEAVE,
    PHX_REPLY,
    Message,
    Ref,
)
from .serializers import V2_JSON, Serializer
from .states import (
    CLIENT_CHANNEL_MOVES,
    CLIENT_MOVES,
    ClientChannelState,
    ClientState,
    transition,
)

__all__ = ["DEFAULT_TIMEOUT", "ClientConnection"]

DEFAULT_TIMEOUT: Final = 10.0

_CS = ClientChannelState


class _Kind(enum.Enum):
    JOIN = "join"
    PUSH = "push"
    LEAVE = "leave"


class _Pending:
    """A request waiting for its phx_reply."""

    __slots__ = ("deadline", "join_ref", "kind", "topic")

    def __init__(self, topic: str, kind: _Kind, join_ref: Ref | None, deadline: float) -> None:
        self.topic = topic
        self.kind = kind
        self.join_ref = join_ref  # the join_ref it was sent with; None while buffered
        self.deadline = deadline


class _Channel:
    __slots__ = ("buffer", "join_ref", "params", "state", "topic")

    def __init__(self, topic: str, params: Any) -> None:
        self.topic = topic
        self.params = params
        self.join_ref: str | None = None
        self.state = _CS.JOINING
        # pushes made before the channel is joined: (ref, event, payload), sent once joined
        self.buffer: list[tuple[str, str, Any]] = []

    def move(self, new: ClientChannelState) -> None:
        self.state = transition(CLIENT_CHANNEL_MOVES, self.state, new, "client channel")


class ClientConnection:
    """Protocol state of one client socket: refs, channels, pending replies, heartbeats.

    One channel per topic. Refs are decimal strings from one counter that survives
    reconnects, like phoenix.js. A reply is matched by ref, topic and the join_ref its
    request was sent with, so replies to pushes of an earlier join still resolve.
    """

    def __init__(
        self,
        serializer: Serializer = V2_JSON,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._serializer = serializer
        self._timeout = timeout
        self._clock = clock
        self._state = ClientState.DISCONNECTED
        self._counter = 0
        self._channels: dict[str, _Channel] = {}
        self._pending: dict[str, _Pending] = {}
        self._deadlines: list[tuple[float, str]] = []  # heap; entries may be stale
        self._heartbeat_ref: str | None = None
        self._outgoing: list[str | bytes] = []

    # ---- inspection ---------------------------------------------------------------------

    @property
    def state(self) -> ClientState:
        """Where the connection is in its lifecycle."""
        return self._state

    @property
    def pending_heartbeat_ref(self) -> str | None:
        """The ref of the heartbeat not answered yet, if any."""
        return self._heartbeat_ref

    def channel_state(self, topic: str) -> ClientChannelState | None:
        """The state of the channel on ``topic`` (``None`` if there is none)."""
        channel = self._channels.get(topic)
        return None if channel is None else channel.state

    def join_ref(self, topic: str) -> str | None:
        """The current join_ref of the channel on ``topic``."""
        channel = self._channels.get(topic)
        return None if channel is None else channel.join_ref

    def make_ref(self) -> str:
        """The next ref of this connection."""
        self._counter += 1
        return str(self._counter)

    # ---- connection lifecycle -----------------------------------------------------------

    def connected(self) -> list[str]:
        """The socket is open: queue a join, with a new join_ref, for every wanted channel.

        Returns the new join refs.
        """
        self._state = transition(CLIENT_MOVES, self._state, ClientState.CONNECTED, "client")
        refs = []
        for channel in self._channels.values():
            if channel.state is _CS.ERRORED:
                channel.move(_CS.JOINING)
            if channel.state is _CS.JOINING:
                refs.append(self._send_join(channel))
        return refs

    def disconnected(self, reason: str = "connection_closed") -> list[Event]:
        """The socket closed: live channels become errored; unsent frames are dropped."""
        self._state = transition(CLIENT_MOVES, self._state, ClientState.DISCONNECTED, "client")
        self._outgoing = []
        self._heartbeat_ref = None
        events: list[Event] = []
        for channel in self._channels.values():
            if channel.state is _CS.JOINING or channel.state is _CS.JOINED:
                self._forget_join(channel)
                channel.move(_CS.ERRORED)
                events.append(ChannelErrored(channel.topic, channel.join_ref, reason))
        return events

    def close(self) -> None:
        """Done for good: every channel and pending request is dropped."""
        self._state = transition(CLIENT_MOVES, self._state, ClientState.CLOSED, "client")
        for channel in self._channels.values():
            channel.move(_CS.CLOSED)
        self._channels.clear()
        self._pending.clear()
        self._deadlines.clear()
        self._outgoing = []
        self._heartbeat_ref = None

    # ---- channel operations -------------------------------------------------------------

    def join(self, topic: str, params: Any = None, *, timeout: float | None = None) -> str | None:
        """Join ``topic`` with ``params`` (default ``{}``); they are reused on every rejoin.

        Returns the join ref, or ``None`` if disconnected (the join goes out on connect).
        """
        if self._state is ClientState.CLOSED:
            raise LocalProtocolError("the connection is closed")
        if topic in self._channels:
            raise LocalProtocolError(f"{topic!r} is already joined or joining")
        channel = _Channel(topic, {} if params is None else params)
        self._channels[topic] = channel
        if self._state is not ClientState.CONNECTED:
            return None
        return self._send_join(channel, timeout)

    def rejoin(self, topic: str, *, timeout: float | None = None) -> str | None:
        """Join an errored channel again (after a backoff); ``None`` if disconnected."""
        channel = self._channels.get(topic)
        if channel is None:
            raise LocalProtocolError(f"no channel on {topic!r}")
        if self._state is not ClientState.CONNECTED:
            return None  # connected() rejoins it
        channel.move(_CS.JOINING)
        return self._send_join(channel, timeout)

    def push(self, topic: str, event: str, payload: Any, *, timeout: float | None = None) -> str:
        """Push ``event`` on ``topic``; buffered until the channel is joined. Returns its ref."""
        channel = self._channels.get(topic)
        if channel is None:
            raise LocalProtocolError(f"no channel on {topic!r}; join it first")
        ref = self.make_ref()
        sent = channel.state is _CS.JOINED and self._state is ClientState.CONNECTED
        self._expect(ref, topic, _Kind.PUSH, channel.join_ref if sent else None, timeout)
        if sent:
            self._send(channel.join_ref, ref, topic, event, payload)
        else:
            channel.buffer.append((ref, event, payload))
        return ref

    def leave(self, topic: str, *, timeout: float | None = None) -> str | None:
        """Leave ``topic``: the channel is closed at once (as in phoenix.js 1.8).

        Returns the ref of the ``phx_leave`` sent, or ``None`` if nothing was sent.
        """
        channel = self._channels.pop(topic, None)
        if channel is None:
            return None
        was_live = channel.state is _CS.JOINED or channel.state is _CS.JOINING
        self._forget_join(channel)
        channel.move(_CS.CLOSED)
        if not was_live or self._state is not ClientState.CONNECTED:
            return None
        ref = self.make_ref()
        self._expect(ref, topic, _Kind.LEAVE, channel.join_ref, timeout)
        self._send(channel.join_ref, ref, topic, PHX_LEAVE, {})
        return ref

    def heartbeat(self) -> str:
        """Queue a heartbeat and remember its ref until a frame carrying it arrives."""
        if self._state is not ClientState.CONNECTED:
            raise LocalProtocolError("heartbeats are sent only while connected")
        ref = self.make_ref()
        self._heartbeat_ref = ref
        self._send(None, ref, PHOENIX_TOPIC, HEARTBEAT, {})
        return ref

    def data_to_send(self) -> list[str | bytes]:
        """Take every queued frame."""
        out = self._outgoing
        self._outgoing = []
        return out

    # ---- input --------------------------------------------------------------------------

    def receive(self, data: str | bytes) -> list[Event]:
        """Process one frame from the server; raises :class:`ProtocolError` if malformed."""
        message = self._serializer.decode_server_frame(data)
        events: list[Event] = []
        ref = message.ref
        if ref is not None and ref == self._heartbeat_ref:
            self._heartbeat_ref = None  # phoenix.js counts any frame with this ref
            events.append(HeartbeatAcked(ref))
        if message.event == PHX_REPLY:
            self._on_reply(message, events)
            return events
        channel = self._channels.get(message.topic)
        if channel is None:
            return events
        join_ref = message.join_ref
        if join_ref is not None and join_ref != channel.join_ref:
            return events  # stale: it belongs to an earlier join
        if message.event == PHX_CLOSE:
            del self._channels[channel.topic]
            self._forget_join(channel)
            channel.move(_CS.CLOSED)
            events.append(ChannelClosed(channel.topic, channel.join_ref, "closed"))
        elif message.event == PHX_ERROR:
            if channel.state is _CS.JOINED or channel.state is _CS.JOINING:
                self._forget_join(channel)
                channel.move(_CS.ERRORED)
                events.append(ChannelErrored(channel.topic, channel.join_ref, message.payload))
        else:
            events.append(PushReceived(message))
        return events

    def _on_reply(self, message: Message, events: list[Event]) -> None:
        ref = message.ref
        if not isinstance(ref, str):
            return  # only str refs are ever pending
        pending = self._pending.get(ref)
        if pending is None or pending.topic != message.topic:
            return  # unknown, timed out, or answered already
        if message.join_ref is not None and message.join_ref != pending.join_ref:
            return  # stale join_ref
        payload = message.payload
        if not isinstance(payload, dict) or not isinstance(payload.get("status"), str):
            raise ProtocolError(f"phx_reply payload without a status: {payload!r}")
        del self._pending[ref]
        status: str = payload["status"]
        response = payload.get("response")
        events.append(ReplyReceived(message.topic, ref, pending.join_ref, status, response))
        if pending.kind is not _Kind.JOIN:
            return
        channel = self._channels.get(message.topic)
        if channel is None or channel.join_ref != pending.join_ref:
            return
        if status == "ok":
            channel.move(_CS.JOINED)
            events.append(ChannelJoined(channel.topic, ref, response))
            self._flush(channel)
        else:
            channel.move(_CS.ERRORED)
            events.append(ChannelErrored(channel.topic, channel.join_ref, response))

    # ---- timeouts -----------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """Clock time of the earliest pending reply deadline, if any."""
        deadlines = self._deadlines
        while deadlines:
            deadline, ref = deadlines[0]
            pending = self._pending.get(ref)
            if pending is not None and pending.deadline == deadline:
                return deadline
            heapq.heappop(deadlines)  # answered or superseded
        return None

    def check_timeouts(self) -> list[Event]:
        """Expire requests whose deadline passed; a timed-out join errors its channel."""
        now = self._clock()
        events: list[Event] = []
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            deadline, ref = heapq.heappop(deadlines)
            pending = self._pending.get(ref)
            if pending is None or pending.deadline != deadline:
                continue
            del self._pending[ref]
            events.append(ReplyTimedOut(pending.topic, ref))
            channel = self._channels.get(pending.topic)
            if channel is None:
                continue
            if pending.kind is _Kind.PUSH:
                channel.buffer = [item for item in channel.buffer if item[0] != ref]
            elif (
                pending.kind is _Kind.JOIN
                and channel.join_ref == pending.join_ref
                and channel.state is _CS.JOINING
            ):
                # phoenix.js leaves the timed-out join so the server drops it, then rejoins
                channel.move(_CS.ERRORED)
                if self._state is ClientState.CONNECTED:
                    self._send(channel.join_ref, self.make_ref(), channel.topic, PHX_LEAVE, {})
                events.append(ChannelErrored(channel.topic, channel.join_ref, "timeout"))
        return events

    # ---- internals ----------------------------------------------------------------------

    def _send(
        self, join_ref: Ref | None, ref: Ref | None, topic: str, event: str, payload: Any
    ) -> None:
        self._outgoing.append(
            self._serializer.encode_client_frame(join_ref, ref, topic, event, payload)
        )

    def _expect(
        self, ref: str, topic: str, kind: _Kind, join_ref: Ref | None, timeout: float | None
    ) -> None:
        deadline = self._clock() + (self._timeout if timeout is None else timeout)
        self._pending[ref] = _Pending(topic, kind, join_ref, deadline)
        heapq.heappush(self._deadlines, (deadline, ref))

    def _send_join(self, channel: _Channel, timeout: float | None = None) -> str:
        ref = self.make_ref()
        channel.join_ref = ref  # every (re)join gets a new join_ref: join_ref == ref
        self._expect(ref, channel.topic, _Kind.JOIN, ref, timeout)
        self._send(ref, ref, channel.topic, PHX_JOIN, channel.params)
        return ref

    def _forget_join(self, channel: _Channel) -> None:
        # the pending join of this channel can no longer complete
        if channel.join_ref is not None:
            pending = self._pending.get(channel.join_ref)
            if pending is not None and pending.kind is _Kind.JOIN:
                del self._pending[channel.join_ref]

    def _flush(self, channel: _Channel) -> None:
        buffered = channel.buffer
        channel.buffer = []
        for ref, event, payload in buffered:
            pending = self._pending.get(ref)
            if pending is not None:
                pending.join_ref = channel.join_ref
            self._send(channel.join_ref, ref, channel.topic, event, payload)

    def __repr__(self) -> str:
        return (
            f"ClientConnection(serializer={self._serializer!r}, state={self._state.value}, "
            f"channels={len(self._channels)}, pending={len(self._pending)})"
        )
