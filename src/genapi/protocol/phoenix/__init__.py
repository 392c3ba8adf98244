"""Phoenix Channels, sans I/O: frames, serializers, and the server and client state machines.

Nothing here touches a socket, a thread or an event loop; time comes from an injected clock.
The gateway's ASGI layer drives :class:`ServerConnection`; the Python client drives
:class:`ClientConnection`. The wire format is described in ``phoenix_protocol.md``.
"""

from __future__ import annotations

from .client import DEFAULT_TIMEOUT, ClientConnection
from .errors import LocalProtocolError, ProtocolError
from .events import (
    ChannelClosed,
    ChannelErrored,
    ChannelJoined,
    CloseRequested,
    Event,
    HeartbeatAcked,
    JoinRequested,
    MessageReceived,
    PushReceived,
    ReplyReceived,
    ReplyTimedOut,
    ReplyTo,
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
from .serializers import (
    V1_JSON,
    V2_JSON,
    Serializer,
    V1JsonSerializer,
    V2JsonSerializer,
    serializer_for_vsn,
)
from .server import (
    DEFAULT_MAX_CHANNELS,
    DEFAULT_MAX_TOPIC_LENGTH,
    Channel,
    ServerConnection,
    encode_broadcast,
)
from .states import ChannelState, ClientChannelState, ClientState, ConnectionState
from .topics import TopicRouter

__all__ = [
    "DEFAULT_MAX_CHANNELS",
    "DEFAULT_MAX_TOPIC_LENGTH",
    "DEFAULT_TIMEOUT",
    "HEARTBEAT",
    "PHOENIX_TOPIC",
    "PHX_CLOSE",
    "PHX_ERROR",
    "PHX_JOIN",
    "PHX_LEAVE",
    "PHX_REPLY",
    "V1_JSON",
    "V2_JSON",
    "Channel",
    "ChannelClosed",
    "ChannelErrored",
    "ChannelJoined",
    "ChannelState",
    "ClientChannelState",
    "ClientConnection",
    "ClientState",
    "CloseRequested",
    "ConnectionState",
    "Event",
    "HeartbeatAcked",
    "JoinRequested",
    "LocalProtocolError",
    "Message",
    "MessageReceived",
    "ProtocolError",
    "PushReceived",
    "Ref",
    "ReplyReceived",
    "ReplyTimedOut",
    "ReplyTo",
    "Serializer",
    "ServerConnection",
    "TopicRouter",
    "V1JsonSerializer",
    "V2JsonSerializer",
    "encode_broadcast",
    "serializer_for_vsn",
]
