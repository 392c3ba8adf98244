"""V2 binary frames (spec §3): a kind byte, 8-bit lengths, the strings, then raw payload bytes.

======  =====  =================================  ==================================
kind    dir    header                             then
======  =====  =================================  ==================================
0 push  C→S    ``0, len jr, len ref, len topic,   join_ref, ref, topic, event, payload
               len event``
0 push  S→C    ``0, len jr, len topic, len event``  join_ref, topic, event, payload
1 reply S→C    ``1, len jr, len ref, len topic,   join_ref, ref, topic, status, payload
               len status``
2 bcast S→C    ``2, len topic, len event``        topic, event, payload
======  =====  =================================  ==================================

A null ref travels as the empty string, and an empty ref decodes back to ``None``.
"""

from __future__ import annotations

from .errors import LocalProtocolError, ProtocolError
from .message import PHX_REPLY, Message, Ref

__all__ = [
    "KIND_BROADCAST",
    "KIND_PUSH",
    "KIND_REPLY",
    "decode_client_frame",
    "decode_server_frame",
    "encode_broadcast",
    "encode_client_push",
    "encode_push",
    "encode_reply",
]

KIND_PUSH = 0
KIND_REPLY = 1
KIND_BROADCAST = 2

BytesLike = bytes | bytearray | memoryview


def _field(value: Ref | None, name: str) -> bytes:
    if value is None:
        return b""
    encoded = (value if isinstance(value, str) else str(value)).encode()
    if len(encoded) > 255:
        raise LocalProtocolError(f"binary frame {name} is longer than 255 bytes")
    return encoded


def _text(data: bytes, start: int, end: int, name: str) -> str:
    try:
        return data[start:end].decode()
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"binary frame {name} is not UTF-8") from exc


def _split(data: bytes, header: int) -> tuple[list[tuple[int, int]], int]:
    """The (start, end) of each string field announced by the header, and the payload start."""
    if len(data) < header:
        raise ProtocolError(f"binary frame shorter than its {header}-byte header")
    spans = []
    pos = header
    for i in range(1, header):
        end = pos + data[i]
        spans.append((pos, end))
        pos = end
    if pos > len(data):
        raise ProtocolError("binary frame lengths run past the end of the frame")
    return spans, pos


def _as_bytes(data: BytesLike) -> bytes:
    return data if type(data) is bytes else bytes(data)


def decode_client_frame(data: BytesLike) -> Message:
    """Decode a C→S binary frame; only kind 0 (push) is legal."""
    data = _as_bytes(data)
    if not data or data[0] != KIND_PUSH:
        kind = data[0] if data else None
        raise ProtocolError(f"binary frame kind {kind!r} is not accepted from clients")
    (jr, ref, topic, event), start = _split(data, 5)
    return Message(
        _text(data, *jr, "join_ref") or None,
        _text(data, *ref, "ref") or None,
        _text(data, *topic, "topic"),
        _text(data, *event, "event"),
        data[start:],
        binary=True,
    )


def decode_server_frame(data: BytesLike) -> Message:
    """Decode a S→C binary frame (push, reply or broadcast), as phoenix.js does."""
    data = _as_bytes(data)
    kind = data[0] if data else None
    if kind == KIND_PUSH:
        (jr, topic, event), start = _split(data, 4)
        return Message(
            _text(data, *jr, "join_ref") or None,
            None,
            _text(data, *topic, "topic"),
            _text(data, *event, "event"),
            data[start:],
            binary=True,
        )
    if kind == KIND_REPLY:
        (jr, ref, topic, status), start = _split(data, 5)
        payload = {"status": _text(data, *status, "status"), "response": data[start:]}
        return Message(
            _text(data, *jr, "join_ref") or None,
            _text(data, *ref, "ref") or None,
            _text(data, *topic, "topic"),
            PHX_REPLY,
            payload,
            binary=True,
        )
    if kind == KIND_BROADCAST:
        (topic, event), start = _split(data, 3)
        return Message(
            None,
            None,
            _text(data, *topic, "topic"),
            _text(data, *event, "event"),
            data[start:],
            binary=True,
        )
    raise ProtocolError(f"unknown binary frame kind {kind!r}")


def encode_client_push(
    join_ref: Ref | None, ref: Ref | None, topic: str, event: str, payload: BytesLike
) -> bytes:
    """A C→S kind-0 frame (5-byte header, with ref)."""
    jr_b = _field(join_ref, "join_ref")
    ref_b = _field(ref, "ref")
    topic_b = _field(topic, "topic")
    event_b = _field(event, "event")
    header = bytes((KIND_PUSH, len(jr_b), len(ref_b), len(topic_b), len(event_b)))
    return b"".join((header, jr_b, ref_b, topic_b, event_b, payload))


def encode_push(join_ref: Ref | None, topic: str, event: str, payload: BytesLike) -> bytes:
    """A S→C kind-0 frame (4-byte header, no ref)."""
    jr_b = _field(join_ref, "join_ref")
    topic_b = _field(topic, "topic")
    event_b = _field(event, "event")
    header = bytes((KIND_PUSH, len(jr_b), len(topic_b), len(event_b)))
    return b"".join((header, jr_b, topic_b, event_b, payload))


def encode_reply(
    join_ref: Ref | None, ref: Ref | None, topic: str, status: str, payload: BytesLike
) -> bytes:
    """A S→C kind-1 reply frame; phoenix.js exposes ``payload`` as the reply's response."""
    jr_b = _field(join_ref, "join_ref")
    ref_b = _field(ref, "ref")
    topic_b = _field(topic, "topic")
    status_b = _field(status, "status")
    header = bytes((KIND_REPLY, len(jr_b), len(ref_b), len(topic_b), len(status_b)))
    return b"".join((header, jr_b, ref_b, topic_b, status_b, payload))


def encode_broadcast(topic: str, event: str, payload: BytesLike) -> bytes:
    """A S→C kind-2 broadcast frame (both refs null)."""
    topic_b = _field(topic, "topic")
    event_b = _field(event, "event")
    header = bytes((KIND_BROADCAST, len(topic_b), len(event_b)))
    return b"".join((header, topic_b, event_b, payload))
