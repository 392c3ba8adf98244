"""The spec §9 scenario server, as a fake app driving real ServerConnection objects."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from genapi.protocol.phoenix import (
    V2_JSON,
    ChannelClosed,
    CloseRequested,
    Event,
    JoinRequested,
    MessageReceived,
    Serializer,
    ServerConnection,
    TopicRouter,
    encode_broadcast,
)

ROUTER = TopicRouter(["room:*"])


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Hub:
    """Every connection of the scenario server, for broadcasts."""

    def __init__(self) -> None:
        self.apps: list[ScenarioApp] = []

    def broadcast(self, topic: str, event: str, payload: Any) -> None:
        frames: dict[Serializer, str | bytes] = {}
        for app in self.apps:
            serializer = app.conn.serializer
            if serializer not in frames:
                frames[serializer] = encode_broadcast(serializer, topic, event, payload)
            app.conn.send_broadcast(topic, frames[serializer])


class ScenarioApp:
    """Channel ``room:*``: join ok except ``room:secret``; ping/noop/shout/boom/kick.

    On join of ``room:lobby`` it pushes ``welcome`` — before accepting, so the test also
    checks that the core holds it until after the join reply.
    """

    def __init__(
        self,
        serializer: Serializer = V2_JSON,
        *,
        hub: Hub | None = None,
        max_channels: int = 100,
        clock: FakeClock | None = None,
    ) -> None:
        self.clock = clock or FakeClock()
        self.conn = ServerConnection(
            serializer, topics=ROUTER, max_channels=max_channels, clock=self.clock
        )
        self.hub = hub or Hub()
        self.hub.apps.append(self)
        self.events: list[Event] = []
        self.closed: list[ChannelClosed] = []
        self.close_requests: list[CloseRequested] = []

    def send(self, data: str | bytes) -> list[str | bytes]:
        """Feed one client frame, run the app, return what this connection writes."""
        self.handle(self.conn.receive(data))
        return self.conn.data_to_send()

    def send_all(self, frames: Iterable[str | bytes]) -> list[str | bytes]:
        out: list[str | bytes] = []
        for frame in frames:
            out += self.send(frame)
        return out

    def handle(self, events: list[Event]) -> None:
        for event in events:
            self.events.append(event)
            if isinstance(event, JoinRequested):
                self.on_join(event)
            elif isinstance(event, MessageReceived):
                self.on_message(event)
            elif isinstance(event, ChannelClosed):
                self.closed.append(event)
            elif isinstance(event, CloseRequested):
                self.close_requests.append(event)

    def on_join(self, event: JoinRequested) -> None:
        if event.topic == "room:secret":
            self.conn.reject_join(event, {"reason": "unauthorized"})
            return
        if event.topic == "room:lobby":
            self.conn.push(event.topic, "welcome", {"msg": "hi"})
        self.conn.accept_join(event)

    def on_message(self, event: MessageReceived) -> None:
        name = event.event
        if name == "ping":
            self.conn.reply(event, "ok", event.payload)
        elif name == "shout":
            self.hub.broadcast(event.topic, name, event.payload)
        elif name == "boom":
            self.conn.error_channel(event.topic)
        elif name == "kick":
            self.conn.close_channel(event.topic)
        # "noop" and anything else: no reply
