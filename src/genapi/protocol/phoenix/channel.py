"""One joined (or joining) topic of a server connection, and its lifecycle."""

from __future__ import annotations

from .message import Ref
from .states import CHANNEL_MOVES, ChannelState, transition

__all__ = ["Channel", "Frame"]

#: An encoded frame: text for the JSON serializers, bytes for binary pushes.
Frame = str | bytes


class Channel:
    """One joined (or joining) topic of a connection. Read-only for the app."""

    __slots__ = ("_held", "_state", "join_ref", "pattern", "topic")

    def __init__(self, topic: str, join_ref: Ref | None, pattern: str) -> None:
        self.topic = topic
        self.join_ref = join_ref
        self.pattern = pattern
        self._state = ChannelState.JOINING
        # frames the app sent before the join reply; they must not overtake it
        self._held: list[Frame] | None = []

    @property
    def state(self) -> ChannelState:
        """Where the channel is in its lifecycle."""
        return self._state

    def _move(self, new: ChannelState) -> None:
        self._state = transition(CHANNEL_MOVES, self._state, new, "channel")

    def __repr__(self) -> str:
        return (
            f"Channel(topic={self.topic!r}, join_ref={self.join_ref!r}, state={self._state.value})"
        )
