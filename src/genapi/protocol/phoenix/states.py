"""Lifecycle enums and their legal transitions; each lifecycle has one owner that moves it."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import TypeVar

from .errors import LocalProtocolError

__all__ = [
    "ChannelState",
    "ClientChannelState",
    "ClientState",
    "ConnectionState",
    "transition",
]


class ConnectionState(enum.Enum):
    """A server connection: ``OPEN`` → ``CLOSING`` (close asked, input ignored) → ``CLOSED``."""

    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class ChannelState(enum.Enum):
    """A channel on a server connection.

    ``JOINING`` until the app answers the join, ``JOINED`` while it lives, ``LEAVING`` while
    a client leave is answered (reply, then ``phx_close``), ``CLOSED`` once dropped.
    """

    JOINING = "joining"
    JOINED = "joined"
    LEAVING = "leaving"
    CLOSED = "closed"


class ClientState(enum.Enum):
    """A client connection: ``DISCONNECTED`` ⇄ ``CONNECTED``, then ``CLOSED`` for good."""

    DISCONNECTED = "disconnected"
    CONNECTED = "connected"
    CLOSED = "closed"


class ClientChannelState(enum.Enum):
    """A channel on a client connection (phoenix.js's states, without the local ``leaving``).

    ``ERRORED`` channels want to be joined again: on :meth:`ClientConnection.rejoin` or on
    reconnect. ``CLOSED`` channels are gone (left by the app, or closed by the server).
    """

    JOINING = "joining"
    JOINED = "joined"
    ERRORED = "errored"
    CLOSED = "closed"


S = TypeVar("S", bound=enum.Enum)

CONNECTION_MOVES: Mapping[ConnectionState, frozenset[ConnectionState]] = {
    ConnectionState.OPEN: frozenset({ConnectionState.CLOSING, ConnectionState.CLOSED}),
    ConnectionState.CLOSING: frozenset({ConnectionState.CLOSED}),
    ConnectionState.CLOSED: frozenset(),
}

CHANNEL_MOVES: Mapping[ChannelState, frozenset[ChannelState]] = {
    ChannelState.JOINING: frozenset({ChannelState.JOINED, ChannelState.CLOSED}),
    ChannelState.JOINED: frozenset({ChannelState.LEAVING, ChannelState.CLOSED}),
    ChannelState.LEAVING: frozenset({ChannelState.CLOSED}),
    ChannelState.CLOSED: frozenset(),
}

CLIENT_MOVES: Mapping[ClientState, frozenset[ClientState]] = {
    ClientState.DISCONNECTED: frozenset({ClientState.CONNECTED, ClientState.CLOSED}),
    ClientState.CONNECTED: frozenset({ClientState.DISCONNECTED, ClientState.CLOSED}),
    ClientState.CLOSED: frozenset(),
}

CLIENT_CHANNEL_MOVES: Mapping[ClientChannelState, frozenset[ClientChannelState]] = {
    ClientChannelState.JOINING: frozenset(
        {ClientChannelState.JOINED, ClientChannelState.ERRORED, ClientChannelState.CLOSED}
    ),
    ClientChannelState.JOINED: frozenset({ClientChannelState.ERRORED, ClientChannelState.CLOSED}),
    ClientChannelState.ERRORED: frozenset({ClientChannelState.JOINING, ClientChannelState.CLOSED}),
    ClientChannelState.CLOSED: frozenset(),
}


def transition(moves: Mapping[S, frozenset[S]], current: S, new: S, what: str) -> S:
    """``new`` if ``current`` may move to it, else raise :class:`LocalProtocolError`."""
    if new not in moves[current]:
        raise LocalProtocolError(f"illegal {what} transition: {current.value} -> {new.value}")
    return new
