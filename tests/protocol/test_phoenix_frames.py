"""V2 JSON frames: decoding with a raw payload, malformed input, one-pass encoding."""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec
import pytest

from genapi.errors import GenApiError
from genapi.protocol.phoenix import (
    V2_JSON,
    LocalProtocolError,
    Message,
    ProtocolError,
)


class Result(msgspec.Struct):
    request_id: str
    success: bool
    result: Any = None


class Pair(msgspec.Struct, array_like=True):
    a: int
    b: int


@dataclasses.dataclass
class Point:
    x: int
    y: int


def test_decode_v2_array() -> None:
    """A 5-element array becomes a Message with every field in place."""
    message = V2_JSON.decode_client_frame('["3","6","room:1","ping",{"n":1}]')
    assert (message.join_ref, message.ref, message.topic, message.event) == (
        "3",
        "6",
        "room:1",
        "ping",
    )
    assert message.payload == {"n": 1}
    assert message.binary is False


def test_payload_raw_keeps_the_exact_json_bytes() -> None:
    """payload_raw is the payload element byte for byte, whitespace included."""
    message = V2_JSON.decode_client_frame('["3","6","room:1","api", {"a" :  [1, 2]} ]')
    assert message.payload_raw == b'{"a" :  [1, 2]}'
    assert msgspec.json.decode(message.payload_raw) == {"a": [1, 2]}


def test_payload_raw_decodes_into_a_typed_struct() -> None:
    """The gateway can decode payload_raw straight into its own struct."""
    message = V2_JSON.decode_client_frame(
        '["3","6","api:lobby","api",{"request_id":"r","success":true}]'
    )
    assert msgspec.json.decode(message.payload_raw or b"", type=Result) == Result("r", True)


def test_payload_is_decoded_once_and_cached() -> None:
    """Reading payload twice returns the same object (decoded only on first access)."""
    message = V2_JSON.decode_client_frame('["3","6","room:1","ping",{"n":1}]')
    assert message.payload is message.payload


def test_extra_trailing_elements_are_ignored() -> None:
    """Phoenix reads the first five elements and ignores the rest."""
    message = V2_JSON.decode_client_frame('[null,"1","phoenix","heartbeat",{},"x",7]')
    assert message == Message(None, "1", "phoenix", "heartbeat", {})


@pytest.mark.parametrize("payload", ["null", "3", "[1,2]", '"s"', "true", "1.5"])
def test_non_object_payloads_are_legal_from_clients(payload: str) -> None:
    """C→S payloads may be any JSON value."""
    message = V2_JSON.decode_client_frame(f'["3","6","room:1","ping",{payload}]')
    assert message.payload == msgspec.json.decode(payload)


@pytest.mark.parametrize(
    ("frame", "join_ref", "ref"),
    [
        ('[1,2,"t","e",{}]', 1, 2),
        ('[1.5,"x","t","e",{}]', 1.5, "x"),
        ('[null,null,"t","e",{}]', None, None),
        ('[123456789012345678901234567890,0,"t","e",{}]', 123456789012345678901234567890, 0),
    ],
)
def test_refs_are_kept_as_sent(frame: str, join_ref: Any, ref: Any) -> None:
    """Numbers stay numbers (and strings strings): refs are opaque."""
    message = V2_JSON.decode_client_frame(frame)
    assert (message.join_ref, message.ref) == (join_ref, ref)
    assert type(message.ref) is type(ref)


MALFORMED = [
    "",
    "not json",
    "{",
    '{"topic":"x"}',
    '"string"',
    "null",
    "42",
    "[]",
    '["1","2"]',
    '[null,"1","t","e"]',
    '[null,"1",1,"e",{}]',
    '[null,"1","t",null,{}]',
    '[null,"1",["t"],"e",{}]',
    '[true,"1","t","e",{}]',
    '[null,{"r":1},"t","e",{}]',
    '[null,["r"],"t","e",{}]',
    '[null,"1","t","e",{}] trailing',
    '[null,"1","t","e",{"a":tru}]',
    '[null,"1","\\ud800","e",{}]',
    '[null,"1","t\ud800","e",{}]',  # a Python str holding a lone surrogate
    '[1e999,null,"t","e",{}]',
]


@pytest.mark.parametrize("frame", MALFORMED)
def test_malformed_text_frames_raise_protocol_error(frame: str) -> None:
    """Anything but a ≥5-element array with string topic and event is a ProtocolError."""
    with pytest.raises(ProtocolError):
        V2_JSON.decode_client_frame(frame)


def test_protocol_error_is_a_genapi_error() -> None:
    """ProtocolError sits under genapi's root exception."""
    assert issubclass(ProtocolError, GenApiError)
    assert issubclass(LocalProtocolError, GenApiError)
    assert not issubclass(LocalProtocolError, ProtocolError)


def test_encode_push_is_text_with_null_ref() -> None:
    """A server push is [join_ref, null, topic, event, payload], as str."""
    frame = V2_JSON.encode_push("3", "room:1", "welcome", {"msg": "hi"})
    assert frame == '["3",null,"room:1","welcome",{"msg":"hi"}]'
    assert isinstance(frame, str)


def test_encode_push_accepts_structs_and_dataclasses() -> None:
    """Any msgspec-encodable object payload is encoded in the same pass."""
    assert (
        V2_JSON.encode_push("3", "api:lobby", "api", Result("r1", True, {"x": [1]}))
        == '["3",null,"api:lobby","api",{"request_id":"r1","success":true,"result":{"x":[1]}}]'
    )
    assert V2_JSON.encode_push("3", "t", "e", Point(1, 2)) == '["3",null,"t","e",{"x":1,"y":2}]'


def test_encode_push_embeds_pre_encoded_raw_json() -> None:
    """A msgspec.Raw payload is spliced in as is."""
    frame = V2_JSON.encode_push("3", "t", "e", msgspec.Raw(b'{"pre":"encoded"}'))
    assert frame == '["3",null,"t","e",{"pre":"encoded"}]'


@pytest.mark.parametrize("payload", [None, [1], "s", 3, Pair(1, 2)])
def test_outgoing_payloads_must_be_objects(payload: Any) -> None:
    """Pushes and broadcasts refuse payloads that do not encode to a JSON object."""
    with pytest.raises(LocalProtocolError):
        V2_JSON.encode_push("3", "t", "e", payload)
    with pytest.raises(LocalProtocolError):
        V2_JSON.encode_broadcast("t", "e", payload)


def test_unencodable_payload_raises_local_protocol_error() -> None:
    """msgspec's encoding errors are translated, not leaked."""
    with pytest.raises(LocalProtocolError):
        V2_JSON.encode_push("3", "t", "e", {"x": object()})


def test_encode_reply_defaults_response_to_empty_object() -> None:
    """A reply without data carries "response": {}."""
    assert (
        V2_JSON.encode_reply("3", "6", "room:1", "ok")
        == '["3","6","room:1","phx_reply",{"status":"ok","response":{}}]'
    )


def test_encode_reply_takes_any_status_and_response() -> None:
    """Custom statuses and any JSON response (a struct, a list) are allowed in replies."""
    assert (
        V2_JSON.encode_reply(None, "6", "t", "queued", [1, 2])
        == '[null,"6","t","phx_reply",{"status":"queued","response":[1,2]}]'
    )
    assert (
        V2_JSON.encode_reply("3", "6", "t", "ok", Result("r", False))
        == '["3","6","t","phx_reply",{"status":"ok","response":'
        '{"request_id":"r","success":false,"result":null}}]'
    )


def test_encode_reply_echoes_numeric_refs() -> None:
    """Numeric refs go back as the same numbers."""
    assert V2_JSON.encode_reply(1, 2.5, "t", "ok") == (
        '[1,2.5,"t","phx_reply",{"status":"ok","response":{}}]'
    )


def test_encode_broadcast_has_both_refs_null() -> None:
    """A broadcast is [null, null, topic, event, payload]."""
    assert V2_JSON.encode_broadcast("room:1", "shout", {"b": 1}) == (
        '[null,null,"room:1","shout",{"b":1}]'
    )


def test_client_frame_round_trip() -> None:
    """What the client encodes, the server decodes to the same message."""
    frame = V2_JSON.encode_client_frame("1", "2", "room:1", "ping", {"n": [1, None]})
    assert V2_JSON.decode_client_frame(frame) == Message(
        "1", "2", "room:1", "ping", {"n": [1, None]}
    )


def test_message_repr_shows_raw_payload_before_decoding() -> None:
    """repr does not force decoding."""
    message = V2_JSON.decode_client_frame('["3","6","room:1","ping",{"n":1}]')
    assert "b'{\"n\":1}'" in repr(message)
