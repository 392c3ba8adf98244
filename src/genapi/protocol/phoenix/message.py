"""The decoded Phoenix message and the protocol's reserved names."""

from __future__ import annotations

from typing import Any, Final, TypeAlias

import msgspec

from .errors import ProtocolError

__all__ = [
    "HEARTBEAT",
    "PHOENIX_TOPIC",
    "PHX_CLOSE",
    "PHX_ERROR",
    "PHX_JOIN",
    "PHX_LEAVE",
    "PHX_REPLY",
    "Message",
    "Ref",
]

Ref: TypeAlias = str | int | float
"""A ``ref`` or ``join_ref``: opaque, echoed unchanged. phoenix.js sends decimal strings; odd
clients send numbers, which are kept as numbers so that they go back exactly as they came."""

PHOENIX_TOPIC: Final = "phoenix"
HEARTBEAT: Final = "heartbeat"
PHX_JOIN: Final = "phx_join"
PHX_LEAVE: Final = "phx_leave"
PHX_REPLY: Final = "phx_reply"
PHX_CLOSE: Final = "phx_close"
PHX_ERROR: Final = "phx_error"

_UNSET: Any = object()
_any_decoder = msgspec.json.Decoder()


class Message:
    """One Phoenix message: ``[join_ref, ref, topic, event, payload]``.

    For JSON frames the payload element is kept as raw JSON (:attr:`payload_raw`) and decoded
    only when :attr:`payload` is first read, so a gateway can check its size and decode it
    straight into its own type. For binary frames :attr:`payload` is the ``bytes`` and
    :attr:`payload_raw` is ``None``.
    """

    __slots__ = ("_payload", "_raw", "binary", "event", "join_ref", "ref", "topic")

    join_ref: Ref | None
    ref: Ref | None
    topic: str
    event: str
    binary: bool

    def __init__(
        self,
        join_ref: Ref | None,
        ref: Ref | None,
        topic: str,
        event: str,
        payload: Any = None,
        *,
        binary: bool = False,
    ) -> None:
        self.join_ref = join_ref
        self.ref = ref
        self.topic = topic
        self.event = event
        self.binary = binary
        self._payload = payload
        self._raw: msgspec.Raw | bytes | None = None

    @classmethod
    def from_raw(
        cls,
        join_ref: Ref | None,
        ref: Ref | None,
        topic: str,
        event: str,
        raw: msgspec.Raw,
    ) -> Message:
        """A message whose payload is raw JSON, decoded on first access."""
        message = cls.__new__(cls)
        message.join_ref = join_ref
        message.ref = ref
        message.topic = topic
        message.event = event
        message.binary = False
        message._payload = _UNSET
        message._raw = raw
        return message

    @property
    def payload(self) -> Any:
        """The payload: any JSON value for JSON frames, ``bytes`` for binary frames."""
        payload = self._payload
        if payload is _UNSET:
            try:
                payload = _any_decoder.decode(self._raw)  # type: ignore[arg-type]
            except (ValueError, RecursionError) as exc:  # validated while framing; a guard
                raise ProtocolError(f"invalid payload JSON: {exc}") from exc
            self._payload = payload
        return payload

    @property
    def payload_raw(self) -> bytes | None:
        """The payload element's raw JSON bytes (``None`` for binary or hand-built messages)."""
        raw = self._raw
        if raw is None or type(raw) is bytes:
            return raw
        raw = self._raw = bytes(raw)
        return raw

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return (
            self.join_ref == other.join_ref
            and self.ref == other.ref
            and self.topic == other.topic
            and self.event == other.event
            and self.binary == other.binary
            and self.payload == other.payload
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        payload = self.payload_raw if self._payload is _UNSET else self._payload
        return (
            f"Message(join_ref={self.join_ref!r}, ref={self.ref!r}, topic={self.topic!r}, "
            f"event={self.event!r}, payload={payload!r})"
        )
