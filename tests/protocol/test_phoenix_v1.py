"""V1 JSON object frames (no vsn, or vsn 1.0.x)."""

from __future__ import annotations

import pytest

from genapi.protocol.phoenix import V1_JSON, Message, ProtocolError

from .scenario import ScenarioApp

V1_JOIN = '{"topic":"room:1","event":"phx_join","payload":{},"ref":"1"}'
OK_REPLY = (
    '{"topic":"room:1","event":"phx_reply","payload":{"status":"ok","response":{}},"ref":"%s"}'
)


def test_decode_v1_object() -> None:
    """The four required keys (and an optional join_ref) make a Message."""
    message = V1_JSON.decode_client_frame(
        '{"topic":"room:1","event":"ping","payload":{"n":1},"ref":"2","join_ref":"1"}'
    )
    assert message == Message("1", "2", "room:1", "ping", {"n": 1})
    assert message.payload_raw == b'{"n":1}'


def test_v1_null_ref_is_allowed() -> None:
    """ref is a required key, but it may be null."""
    message = V1_JSON.decode_client_frame('{"topic":"t","event":"e","payload":null,"ref":null}')
    assert (message.ref, message.join_ref, message.payload) == (None, None, None)


@pytest.mark.parametrize(
    "frame",
    [
        '{"topic":"t","event":"e","payload":{}}',  # ref missing
        '{"topic":"t","event":"e","ref":"1"}',  # payload missing
        '{"event":"e","payload":{},"ref":"1"}',  # topic missing
        '{"topic":"t","payload":{},"ref":"1"}',  # event missing
        '{"topic":1,"event":"e","payload":{},"ref":"1"}',
        '[null,"1","t","e",{}]',  # a V2 array is not a V1 object
        "not json",
    ],
)
def test_malformed_v1_frames_raise_protocol_error(frame: str) -> None:
    """A missing required key or a non-object frame is malformed."""
    with pytest.raises(ProtocolError):
        V1_JSON.decode_client_frame(frame)


def test_v1_server_frames_have_exactly_four_keys() -> None:
    """S→C V1 frames are topic, event, payload, ref: never a join_ref."""
    assert V1_JSON.encode_reply("1", "2", "room:1", "ok") == OK_REPLY % "2"
    assert V1_JSON.encode_push("1", "room:1", "new", {"a": 1}) == (
        '{"topic":"room:1","event":"new","payload":{"a":1},"ref":null}'
    )
    assert V1_JSON.encode_broadcast("room:1", "new", {"a": 1}) == (
        '{"topic":"room:1","event":"new","payload":{"a":1},"ref":null}'
    )


def test_v1_client_frames_carry_join_ref() -> None:
    """The client side sends join_ref as a fifth key, and the server reads it back."""
    frame = V1_JSON.encode_client_frame("1", "2", "room:1", "ping", {})
    assert frame == '{"topic":"room:1","event":"ping","payload":{},"ref":"2","join_ref":"1"}'
    assert V1_JSON.decode_client_frame(frame) == Message("1", "2", "room:1", "ping", {})


def test_v1_join_ping_leave() -> None:
    """Over V1 the channel's join_ref is the join's ref; phx_close carries it as ref."""
    app = ScenarioApp(V1_JSON)
    assert app.send(V1_JOIN) == [OK_REPLY % "1"]
    assert app.send('{"topic":"room:1","event":"ping","payload":{"n":1},"ref":"2"}') == [
        '{"topic":"room:1","event":"phx_reply","payload":{"status":"ok","response":{"n":1}},'
        '"ref":"2"}'
    ]
    assert app.send('{"topic":"room:1","event":"phx_leave","payload":{},"ref":"3"}') == [
        OK_REPLY % "3",
        '{"topic":"room:1","event":"phx_close","payload":{},"ref":"1"}',
    ]


def test_v1_heartbeat_and_unmatched_topic() -> None:
    """Heartbeats and unmatched-topic errors have the V1 shape."""
    app = ScenarioApp(V1_JSON)
    assert app.send('{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"9"}') == [
        '{"topic":"phoenix","event":"phx_reply","payload":{"status":"ok","response":{}},"ref":"9"}'
    ]
    assert app.send('{"topic":"nope","event":"phx_join","payload":{},"ref":"4"}') == [
        '{"topic":"nope","event":"phx_reply",'
        '"payload":{"status":"error","response":{"reason":"unmatched topic",'
        '"topics":["room:*"]}},"ref":"4"}'
    ]


def test_v1_channel_crash() -> None:
    """phx_error over V1 carries the join ref as ref."""
    app = ScenarioApp(V1_JSON)
    app.send(V1_JOIN)
    assert app.send('{"topic":"room:1","event":"boom","payload":{},"ref":"5"}') == [
        '{"topic":"room:1","event":"phx_error","payload":{"reason":"channel_crash"},"ref":"1"}'
    ]


def test_v1_binary_frame_is_decoded_as_json() -> None:
    """Phoenix's V1 serializer ignores the opcode, so JSON in a binary frame still works."""
    app = ScenarioApp(V1_JSON)
    assert app.send(V1_JOIN.encode()) == [OK_REPLY % "1"]
