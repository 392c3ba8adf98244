"""V2 binary frames: the verified byte strings of spec §3, and malformed binary input."""

from __future__ import annotations

import pytest

from genapi.protocol.phoenix import (
    V1_JSON,
    V2_JSON,
    LocalProtocolError,
    Message,
    ProtocolError,
    binary,
)

# spec §3, verified against phoenix 1.8.16
CLIENT_PUSH = (
    bytes.fromhex("0001020603") + b"5" + b"10" + b"room:1" + b"bin" + bytes.fromhex("090807")
)
SERVER_REPLY = (
    bytes.fromhex("0101020602") + b"5" + b"10" + b"room:1" + b"ok" + bytes.fromhex("010203")
)
SERVER_PUSH = bytes.fromhex("00010603") + b"4" + b"room:1" + b"img" + bytes.fromhex("dead")
SERVER_BROADCAST = bytes.fromhex("020604") + b"room:1" + b"file" + bytes.fromhex("beef")


def test_decode_client_push() -> None:
    """The C→S kind-0 frame phoenix.js sends decodes to a binary message."""
    message = V2_JSON.decode_client_frame(CLIENT_PUSH)
    assert message == Message("5", "10", "room:1", "bin", b"\x09\x08\x07", binary=True)
    assert message.payload_raw is None


def test_encode_client_push_matches_phoenix_js() -> None:
    """The client core produces phoenix.js's exact bytes."""
    assert V2_JSON.encode_client_frame("5", "10", "room:1", "bin", b"\x09\x08\x07") == CLIENT_PUSH


def test_encode_reply_matches_phoenix() -> None:
    """A bytes response is a kind-1 reply frame."""
    assert V2_JSON.encode_reply("5", "10", "room:1", "ok", b"\x01\x02\x03") == SERVER_REPLY


def test_encode_push_matches_phoenix() -> None:
    """A bytes push is a kind-0 frame with a 4-byte header and no ref."""
    assert V2_JSON.encode_push("4", "room:1", "img", b"\xde\xad") == SERVER_PUSH


def test_encode_broadcast_matches_phoenix() -> None:
    """A bytes broadcast is a kind-2 frame."""
    assert V2_JSON.encode_broadcast("room:1", "file", b"\xbe\xef") == SERVER_BROADCAST


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (
            SERVER_REPLY,
            Message(
                "5",
                "10",
                "room:1",
                "phx_reply",
                {"status": "ok", "response": b"\x01\x02\x03"},
                binary=True,
            ),
        ),
        (SERVER_PUSH, Message("4", None, "room:1", "img", b"\xde\xad", binary=True)),
        (SERVER_BROADCAST, Message(None, None, "room:1", "file", b"\xbe\xef", binary=True)),
    ],
)
def test_decode_server_frames(frame: bytes, expected: Message) -> None:
    """The client side decodes the three S→C kinds as phoenix.js does."""
    assert V2_JSON.decode_server_frame(frame) == expected


def test_bytearray_and_memoryview_payloads_go_binary() -> None:
    """Any bytes-like payload is sent as a binary frame."""
    assert V2_JSON.encode_push("4", "room:1", "img", bytearray(b"\xde\xad")) == SERVER_PUSH
    assert V2_JSON.encode_push("4", "room:1", "img", memoryview(b"\xde\xad")) == SERVER_PUSH


def test_null_refs_travel_as_empty_strings() -> None:
    """A null join_ref is length 0 on the wire and decodes back to None."""
    frame = binary.encode_client_push(None, None, "t", "e", b"x")
    assert frame == bytes((0, 0, 0, 1, 1)) + b"tex"
    message = V2_JSON.decode_client_frame(frame)
    assert (message.join_ref, message.ref) == (None, None)


def test_empty_payload_is_allowed() -> None:
    """A binary push may carry zero payload bytes."""
    assert V2_JSON.decode_client_frame(bytes((0, 0, 0, 1, 1)) + b"te").payload == b""


MALFORMED = [
    b"",
    bytes((1,)) + SERVER_REPLY[1:],  # kind 1 from a client
    SERVER_BROADCAST,  # kind 2 from a client
    bytes((3, 0, 0, 0, 0)),
    bytes((0, 1, 2)),  # truncated header
    bytes((0, 1, 2, 6, 3)) + b"5",  # lengths run past the end
    bytes((0, 0, 0, 2, 1)) + b"\xff\xfee",  # topic is not UTF-8
    bytes((0, 0, 0, 1, 2)) + b"t\xc3",  # event cut inside a UTF-8 sequence
]


@pytest.mark.parametrize("frame", MALFORMED)
def test_malformed_binary_frames_raise_protocol_error(frame: bytes) -> None:
    """Kinds other than 0, truncated lengths and bad UTF-8 are ProtocolErrors."""
    with pytest.raises(ProtocolError):
        V2_JSON.decode_client_frame(frame)


@pytest.mark.parametrize("frame", [b"", bytes((9, 0)), bytes((1, 5, 0, 0, 0)), bytes((2, 1))])
def test_malformed_server_binary_frames_raise_protocol_error(frame: bytes) -> None:
    """The client side refuses unknown kinds and truncated frames too."""
    with pytest.raises(ProtocolError):
        V2_JSON.decode_server_frame(frame)


def test_fields_longer_than_255_bytes_cannot_be_encoded() -> None:
    """8-bit lengths cap each string field at 255 bytes."""
    with pytest.raises(LocalProtocolError):
        V2_JSON.encode_push("4", "t" * 256, "e", b"")


def test_numeric_refs_are_written_as_their_text() -> None:
    """An odd client's numeric ref is echoed as its decimal text in a binary reply."""
    assert V2_JSON.encode_reply(5, 10, "room:1", "ok", b"\x01\x02\x03") == SERVER_REPLY


def test_v1_cannot_send_binary() -> None:
    """V1 has no binary frames: bytes payloads are refused."""
    with pytest.raises(LocalProtocolError):
        V1_JSON.encode_push("4", "room:1", "img", b"\xde\xad")
    with pytest.raises(LocalProtocolError):
        V1_JSON.encode_reply("4", "1", "room:1", "ok", b"\xde\xad")
    with pytest.raises(LocalProtocolError):
        V1_JSON.encode_client_frame("4", "1", "room:1", "img", b"\xde\xad")
