"""Messages between gateways and service nodes (msgspec JSON, like the client wire)."""

from __future__ import annotations

from typing import Any

import msgspec

from ...messages import Request

__all__ = [
    "AckMessage",
    "CallMessage",
    "CancelMessage",
    "ChunkMessage",
    "ConfigsMessage",
    "HeartbeatMessage",
    "PullMessage",
    "PushMessage",
    "PushResult",
    "ReplyMessage",
    "VerifyMessage",
    "VerifyResult",
    "decode",
    "encode",
]

_encoder = msgspec.json.Encoder()


def encode(message: msgspec.Struct) -> bytes:
    """Encode a wire message."""
    return _encoder.encode(message)


def decode(data: bytes, kind: type[Any]) -> Any:
    """Decode a wire message of ``kind``; raises ``msgspec.DecodeError``/``ValidationError``."""
    return msgspec.json.decode(data, type=kind)


class CallMessage(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Run ``request`` (identity already trusted, arguments validated by the gateway).

    ``stream`` asks for a stream: the node answers the request at once ("started") and
    sends the chunks to ``inbox``, keeping at most ``window`` unacknowledged, and a
    keepalive every ``keepalive_ms`` while the stream runs. ``timeout_ms`` is the deadline
    of the whole call.
    """

    call_id: str
    request: Request
    stream: bool = False
    inbox: str | None = None
    window: int = 16
    keepalive_ms: int = 1000
    timeout_ms: int | None = None


class ReplyMessage(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The answer to a call: a result, or an error message the client may see."""

    ok: bool
    result: Any = None
    error: str | None = None
    can_retry: bool = False


class ChunkMessage(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One message of a stream: ``kind`` is chunk, last (chunk with data), end, error, or
    keepalive (numbered with the last chunk sent, so a lost chunk shows as a gap)."""

    seq: int
    kind: str
    data: Any = None
    error: str | None = None
    can_retry: bool = False


class AckMessage(msgspec.Struct, kw_only=True):
    """The gateway handed chunks up to ``seq`` of ``call_id`` on."""

    call_id: str
    seq: int


class CancelMessage(msgspec.Struct, kw_only=True):
    """Cancel the call or stream ``call_id``."""

    call_id: str


class PushMessage(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A node's PushConfig: all of a service's functions at one config version."""

    service: str
    node: str
    config_version: str
    fun_configs: list[dict[str, Any]]
    push_token: str | None = None
    force: bool = False
    pull: bool = False  # the gateway also pulls the service from this node periodically


class PushResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One gateway's answer to a push: accepted, skipped or rejected (with reasons)."""

    gateway: str
    status: str
    reasons: list[str] = msgspec.field(default_factory=list)


class VerifyMessage(msgspec.Struct, kw_only=True):
    """Is ``config_version`` of ``service`` stored?"""

    service: str
    config_version: str


class VerifyResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    """matched, mismatch (with the stored version) or not_found."""

    gateway: str
    status: str
    stored_version: str | None = None


class PullMessage(msgspec.Struct, kw_only=True):
    """Ask a node for a service's configs (or only its version)."""

    service: str


class ConfigsMessage(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A node's configs (and version) of a service; ``error`` when it has none."""

    service: str
    config_version: str | None = None
    fun_configs: list[dict[str, Any]] = msgspec.field(default_factory=list)
    error: str | None = None


class HeartbeatMessage(msgspec.Struct, kw_only=True):
    """A node is alive and serves ``services`` (name → config version)."""

    node: str
    services: dict[str, str]
