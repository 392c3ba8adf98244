"""Serializers: V2 JSON arrays plus binary frames (vsn 2.0.x) and V1 JSON objects (1.0.x).

Every incoming frame is decoded in one msgspec pass that keeps the payload element as raw
JSON; every outgoing frame is encoded in one msgspec pass, whatever the payload object is (a
dict, a :class:`msgspec.Struct`, a dataclass or pre-encoded :class:`msgspec.Raw`). Text frames
are ``str`` and binary frames are ``bytes``.
"""

from __future__ import annotations

import dataclasses
import re
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Final

import msgspec

from ...messages import encode_fallback
from . import binary
from .errors import LocalProtocolError, ProtocolError
from .message import PHX_REPLY, Message, Ref

__all__ = [
    "V1_JSON",
    "V2_JSON",
    "Serializer",
    "V1JsonSerializer",
    "V2JsonSerializer",
    "serializer_for_vsn",
]

EMPTY_OBJECT: Final = msgspec.Raw(b"{}")

#: ``(join_ref, ref, topic)`` of a frame whose payload could not be decoded.
Envelope = tuple[Ref | None, Ref | None, str]

# The first three elements of a V2 frame (and a string event after them), read without
# parsing the rest: strings have no raw control characters (JSON forbids them) and bounded
# lengths, so matching is linear and stops within a few KB whatever the frame holds after.
def _json_string(max_chars: int) -> str:
    return r'"(?:[^"\\\x00-\x1f]|\\.){0,' + str(max_chars) + '}"'


_JSON_REF = r"(null|" + _json_string(256) + r"|-?\d{1,20})"
_V2_ENVELOPE: Final = re.compile(
    r"\s*\[\s*" + _JSON_REF + r"\s*,\s*" + _JSON_REF + r"\s*,\s*(" + _json_string(4096)
    + r")\s*,\s*" + _json_string(256) + r"\s*[,\]]")
_ref: Final = msgspec.json.Decoder(Ref | None)
_topic: Final = msgspec.json.Decoder(str)
_BYTES_TYPES = (bytes, bytearray, memoryview)


class _V2Frame(msgspec.Struct, array_like=True):
    # array_like structs ignore extra trailing elements, exactly like Phoenix's decoder
    join_ref: Ref | None
    ref: Ref | None
    topic: str
    event: str
    payload: msgspec.Raw


class _V1Frame(msgspec.Struct):
    topic: str
    event: str
    payload: msgspec.Raw
    ref: Ref | None  # a required key, even though it may be null
    join_ref: Ref | None = None


class _V1ServerOut(msgspec.Struct):
    # S→C V1 frames have exactly these four keys: never a join_ref
    topic: str
    event: str
    payload: Any
    ref: Ref | None


class _V1ClientOut(msgspec.Struct):
    topic: str
    event: str
    payload: Any
    ref: Ref | None
    join_ref: Ref | None


class _Reply(msgspec.Struct):
    status: str
    response: Any


#: Types known to encode to a JSON object: checking ``type(p) in _OBJECT_TYPES`` first
#: spares a push of a Struct (every Response) the full check.
_OBJECT_TYPES: set[type] = {dict, msgspec.Raw}  # Raw: pre-encoded, trusted to be an object


def _check_object(payload: Any) -> None:
    """Outgoing pushes and broadcasts must encode to a JSON object (spec §2.1)."""
    if isinstance(payload, dict | msgspec.Raw):
        return
    if isinstance(payload, msgspec.Struct):
        is_object = not payload.__struct_config__.array_like
    else:
        is_object = dataclasses.is_dataclass(payload) and not isinstance(payload, type)
    if not is_object:
        raise LocalProtocolError(
            f"outgoing payloads must encode to a JSON object, not {type(payload).__name__}"
        )
    if len(_OBJECT_TYPES) < 1000:  # classes made at run time must not grow it for ever
        _OBJECT_TYPES.add(type(payload))


class Serializer(ABC):
    """Turns frames into :class:`Message` objects and back, for one protocol version.

    The ``*_client_frame`` / ``decode_server_frame`` pair serves the client side; the other
    methods serve the server side.
    """

    vsn: ClassVar[str]
    """The version this serializer speaks, as phoenix.js sends it in ``vsn``."""

    def __init__(self) -> None:
        self._encoder = msgspec.json.Encoder(enc_hook=encode_fallback)

    def _json(self, obj: Any) -> str:
        try:
            return self._encoder.encode(obj).decode()
        except (msgspec.EncodeError, TypeError, UnicodeError) as exc:
            raise LocalProtocolError(f"cannot encode frame: {exc}") from exc

    @abstractmethod
    def decode_client_frame(self, data: str | bytes) -> Message:
        """Decode a C→S frame (text as ``str``, binary as ``bytes``); raise ProtocolError."""

    @abstractmethod
    def decode_server_frame(self, data: str | bytes) -> Message:
        """Decode a S→C frame (the client side); raise ProtocolError."""

    @abstractmethod
    def encode_server_frame(
        self, join_ref: Ref | None, ref: Ref | None, topic: str, event: str, payload: Any
    ) -> str:
        """Encode any S→C JSON frame (used for ``phx_close`` and ``phx_error``)."""

    @abstractmethod
    def encode_push(
        self, join_ref: Ref | None, topic: str, event: str, payload: Any
    ) -> str | bytes:
        """A server push to one client: ``[join_ref, null, topic, event, payload]``."""

    @abstractmethod
    def encode_reply(
        self,
        join_ref: Ref | None,
        ref: Ref | None,
        topic: str,
        status: str,
        response: Any = None,
    ) -> str | bytes:
        """A ``phx_reply`` with ``{"status": status, "response": response or {}}``."""

    @abstractmethod
    def encode_broadcast(self, topic: str, event: str, payload: Any) -> str | bytes:
        """A broadcast, ``[null, null, topic, event, payload]``; shareable between sockets."""

    @abstractmethod
    def encode_client_frame(
        self, join_ref: Ref | None, ref: Ref | None, topic: str, event: str, payload: Any
    ) -> str | bytes:
        """Encode a C→S frame (the client side); bytes payloads go binary where supported."""

    def salvage_envelope(self, data: str | bytes) -> Envelope | None:
        """Where to answer a frame that did not decode: ``(join_ref, ref, topic)`` read
        from its start, or None when even that cannot be read (then the socket closes).

        A frame whose envelope is sound but whose payload is not (NaN, nesting too deep)
        is the client's mistake about one message: it gets an error reply, not a close.
        """
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class V2JsonSerializer(Serializer):
    """vsn 2.0.x: ``[join_ref, ref, topic, event, payload]`` text frames plus binary frames."""

    vsn = "2.0.0"

    def __init__(self) -> None:
        super().__init__()
        self._decoder = msgspec.json.Decoder(_V2Frame)

    def _decode_text(self, data: str | bytes) -> Message:
        try:
            frame = self._decoder.decode(data)
        except (ValueError, RecursionError) as exc:  # DecodeError, lone surrogates, nesting
            raise ProtocolError(f"malformed V2 frame: {exc}") from exc
        return Message.from_raw(frame.join_ref, frame.ref, frame.topic, frame.event, frame.payload)

    def decode_client_frame(self, data: str | bytes) -> Message:
        if isinstance(data, str):
            return self._decode_text(data)
        return binary.decode_client_frame(data)

    def salvage_envelope(self, data: str | bytes) -> Envelope | None:
        if not isinstance(data, str):
            return None
        match = _V2_ENVELOPE.match(data)
        if match is None:
            return None
        join_ref, ref, topic = match.groups()
        try:
            return _ref.decode(join_ref), _ref.decode(ref), _topic.decode(topic)
        except ValueError:  # a bad escape inside one of the strings
            return None

    def decode_server_frame(self, data: str | bytes) -> Message:
        if isinstance(data, str):
            return self._decode_text(data)
        return binary.decode_server_frame(data)

    def encode_server_frame(
        self, join_ref: Ref | None, ref: Ref | None, topic: str, event: str, payload: Any
    ) -> str:
        return self._json((join_ref, ref, topic, event, payload))

    def encode_push(
        self, join_ref: Ref | None, topic: str, event: str, payload: Any
    ) -> str | bytes:
        if type(payload) not in _OBJECT_TYPES:
            if isinstance(payload, _BYTES_TYPES):
                return binary.encode_push(join_ref, topic, event, payload)
            _check_object(payload)
        return self._json((join_ref, None, topic, event, payload))

    def encode_reply(
        self,
        join_ref: Ref | None,
        ref: Ref | None,
        topic: str,
        status: str,
        response: Any = None,
    ) -> str | bytes:
        if response is None:
            response = EMPTY_OBJECT
        elif isinstance(response, _BYTES_TYPES):
            return binary.encode_reply(join_ref, ref, topic, status, response)
        return self._json((join_ref, ref, topic, PHX_REPLY, _Reply(status, response)))

    def encode_broadcast(self, topic: str, event: str, payload: Any) -> str | bytes:
        if type(payload) not in _OBJECT_TYPES:
            if isinstance(payload, _BYTES_TYPES):
                return binary.encode_broadcast(topic, event, payload)
            _check_object(payload)
        return self._json((None, None, topic, event, payload))

    def encode_client_frame(
        self, join_ref: Ref | None, ref: Ref | None, topic: str, event: str, payload: Any
    ) -> str | bytes:
        if isinstance(payload, _BYTES_TYPES):
            return binary.encode_client_push(join_ref, ref, topic, event, payload)
        return self._json((join_ref, ref, topic, event, payload))


class V1JsonSerializer(Serializer):
    """vsn 1.0.x (or no vsn): JSON objects; S→C frames never carry a join_ref. No binary."""

    vsn = "1.0.0"

    def __init__(self) -> None:
        super().__init__()
        self._decoder = msgspec.json.Decoder(_V1Frame)

    def _decode(self, data: str | bytes) -> Message:
        # Phoenix's V1 serializer ignores the opcode: a binary frame is decoded as JSON too
        try:
            frame = self._decoder.decode(data)
        except (ValueError, RecursionError) as exc:
            raise ProtocolError(f"malformed V1 frame: {exc}") from exc
        return Message.from_raw(frame.join_ref, frame.ref, frame.topic, frame.event, frame.payload)

    def decode_client_frame(self, data: str | bytes) -> Message:
        return self._decode(data)

    def decode_server_frame(self, data: str | bytes) -> Message:
        return self._decode(data)

    def encode_server_frame(
        self, join_ref: Ref | None, ref: Ref | None, topic: str, event: str, payload: Any
    ) -> str:
        return self._json(_V1ServerOut(topic, event, payload, ref))

    def encode_push(self, join_ref: Ref | None, topic: str, event: str, payload: Any) -> str:
        if type(payload) not in _OBJECT_TYPES:
            _check_object(payload)  # bytes are refused here: V1 has no binary frames
        return self._json(_V1ServerOut(topic, event, payload, None))

    def encode_reply(
        self,
        join_ref: Ref | None,
        ref: Ref | None,
        topic: str,
        status: str,
        response: Any = None,
    ) -> str:
        if response is None:
            response = EMPTY_OBJECT
        elif isinstance(response, _BYTES_TYPES):
            raise LocalProtocolError("the V1 serializer cannot send binary replies")
        return self._json(_V1ServerOut(topic, PHX_REPLY, _Reply(status, response), ref))

    def encode_broadcast(self, topic: str, event: str, payload: Any) -> str:
        if type(payload) not in _OBJECT_TYPES:
            _check_object(payload)
        return self._json(_V1ServerOut(topic, event, payload, None))

    def encode_client_frame(
        self, join_ref: Ref | None, ref: Ref | None, topic: str, event: str, payload: Any
    ) -> str:
        if isinstance(payload, _BYTES_TYPES):
            raise LocalProtocolError("the V1 serializer cannot send binary frames")
        return self._json(_V1ClientOut(topic, event, payload, ref, join_ref))


V2_JSON: Final = V2JsonSerializer()
"""The serializer phoenix.js 1.8 uses (``vsn=2.0.0``)."""
V1_JSON: Final = V1JsonSerializer()
"""The legacy serializer (no ``vsn`` or ``vsn=1.0.x``)."""

# Elixir's Version.parse: MAJOR.MINOR.PATCH with optional -pre and +build parts
_SEMVER = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?"
)


def serializer_for_vsn(vsn: str | None) -> Serializer | None:
    """The serializer for a ``vsn`` query value, or ``None`` (answer HTTP 403).

    No ``vsn`` means V1, like Phoenix. ``~> 2.0.0`` selects V2 and ``~> 1.0.0`` V1; a
    pre-release (``2.0.1-rc``) matches neither, as in Elixir.

    >>> serializer_for_vsn("2.0.0") is V2_JSON
    True
    """
    if vsn is None:
        return V1_JSON
    match = _SEMVER.fullmatch(vsn)
    if match is None or match.group(4) is not None:
        return None
    major_minor = (match.group(1), match.group(2))
    if major_minor == ("2", "0"):
        return V2_JSON
    if major_minor == ("1", "0"):
        return V1_JSON
    return None
