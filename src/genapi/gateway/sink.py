"""Where a call's later answers go: the sink of one topic of a connection."""

from __future__ import annotations

from typing import Any, Protocol

from ..messages import Response

__all__ = ["TopicOwner", "TopicSink"]


class TopicOwner(Protocol):
    """The connection a sink pushes through."""

    @property
    def closing(self) -> bool:
        """True once a close was decided."""

    def push(self, topic: str, response: Response) -> None:
        """Push ``response`` on the api event of ``topic``."""

    def push_shared(self, topic: str, response: Response, frames: dict[Any, Any]) -> None:
        """Push ``response`` as a broadcast frame (null join_ref) taken from ``frames``,
        or encoded and put there for the next connection of the same batch."""


class TopicSink:
    """Pushes later Responses on one topic of a connection (a call's ``CallContext.sink``).

    It is *closing* once its topic is left or the connection closes, and is then announced
    to :meth:`genapi.Executor.on_owner_closed` callbacks — so what a function tied to a
    channel (a relay membership) goes with the channel, as in Phoenix.
    """

    __slots__ = ("connection", "left", "topic")

    def __init__(self, connection: TopicOwner, topic: str) -> None:
        self.connection = connection
        self.topic = topic
        self.left = False

    async def __call__(self, response: Response) -> None:
        self.connection.push(self.topic, response)

    def deliver_shared(self, response: Response, frames: dict[Any, Any]) -> None:
        """Push one ``response`` that many sinks push (a relay message): the frame is
        encoded once per batch (``frames``, shared by the batch's sinks) and the same
        frame is queued on every connection."""
        self.connection.push_shared(self.topic, response, frames)

    @property
    def closing(self) -> bool:
        """True once the topic was left or the connection is closing."""
        return self.left or self.connection.closing
