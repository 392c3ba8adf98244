"""Request decoding and the seven-key Response."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from genapi import DecodeError, Response, decode_request, encode_response


def test_decode_full_payload() -> None:
    """Every client field is decoded; args default to an empty object."""
    request = decode_request(
        b'{"request_id":"r","service":"s","request_type":"t","args":{"a":{"b":[1]}},'
        b'"version":"1.0.0","device_id":"d"}'
    )
    assert request.args == {"a": {"b": [1]}}
    assert request.version == "1.0.0"
    assert request.device_id == "d"
    assert decode_request('{"request_id":"r","service":"s","request_type":"t"}').args == {}
    assert decode_request(
        b'{"request_id":"r","service":"s","request_type":"t","args":null}'
    ).args == {}


@pytest.mark.parametrize("version", ["0.0.0", "", None])
def test_sentinel_versions_mean_no_version(version: str | None) -> None:
    """'0.0.0', '' and null all mean 'no version'."""
    payload = msgspec.json.encode(
        {"request_id": "r", "service": "s", "request_type": "t", "version": version}
    )
    assert decode_request(payload).version is None


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"service": "s"}, "Missing required fields: request_type, request_id"),
        ({"request_type": "t", "request_id": "", "service": ""},
         "Missing required fields: request_id, service"),
        ({}, "Missing required fields: request_type, request_id, service"),
    ],
)
def test_missing_fields_in_reference_order(payload: dict[str, str], message: str) -> None:
    """Missing or empty required fields are listed in the reference's order."""
    with pytest.raises(DecodeError) as info:
        decode_request(msgspec.json.encode(payload))
    assert info.value.message == message
    assert info.value.code == "missing_field"


def test_size_is_checked_before_decoding() -> None:
    """Oversized payloads are rejected by byte length, even if not JSON."""
    with pytest.raises(DecodeError) as info:
        decode_request(b"x" * 101, max_bytes=100)
    assert info.value.code == "invalid_payload"
    assert info.value.message == (
        "Request payload exceeds maximum size of 100 bytes (got 101 bytes)"
    )


@pytest.mark.parametrize(
    "payload",
    [b"not json", b"[1,2]", b'{"request_id":1,"service":"s","request_type":"t"}',
     b'{"request_id":"r","service":"s","request_type":"t","args":[1]}', b"\xff\xfe"],
)
def test_malformed_payloads(payload: bytes) -> None:
    """Malformed JSON or wrong field types are invalid payloads."""
    with pytest.raises(DecodeError) as info:
        decode_request(payload)
    assert info.value.code == "invalid_payload"
    assert info.value.message.startswith("Malformed request payload: ")


@given(st.binary(max_size=200))
def test_arbitrary_bytes_only_raise_decode_error(data: bytes) -> None:
    """No input makes the decoder raise anything but DecodeError."""
    try:
        decode_request(data)
    except DecodeError:
        pass


def test_payload_identity_fields_are_ignored() -> None:
    """user_id, user_roles and ip_address in a payload never reach the Request."""
    request = decode_request(
        b'{"request_id":"r","service":"s","request_type":"t","user_id":"admin",'
        b'"user_roles":["admin"],"ip_address":"1.2.3.4"}',
        user_id="real", user_roles=("member",), ip_address="10.0.0.1",
    )
    assert request.user_id == "real"
    assert request.user_roles == ("member",)
    assert request.ip_address == "10.0.0.1"


def test_identity_device_id_overrides_payload() -> None:
    """A device id from the identity wins over the payload's."""
    payload = b'{"request_id":"r","service":"s","request_type":"t","device_id":"p"}'
    assert decode_request(payload).device_id == "p"
    assert decode_request(payload, device_id="i").device_id == "i"


KEYS = ["request_id", "result", "success", "error", "async", "has_more", "can_retry"]


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (Response.sync("r", {"a": 1}), ({"a": 1}, True, None, False, False, False)),
        (Response.async_ack("r"), (None, True, None, True, False, False)),
        (Response.stream_init("r"), ("init", True, None, True, True, False)),
        (Response.stream_chunk("r", 1), (1, True, None, True, True, False)),
        (Response.stream_last("r", 2), (2, True, None, True, False, False)),
        (Response.stream_end("r"), (None, True, None, True, False, False)),
        (Response.fail("r", "boom"), (None, False, "boom", False, False, False)),
        (Response.fail("r", "busy", can_retry=True), (None, False, "busy", False, False, True)),
    ],
)
def test_response_kinds_encode_seven_keys(
    response: Response, expected: tuple[object, ...]
) -> None:
    """Each constructor gives the reference's flags, encoded with exactly seven keys."""
    decoded = msgspec.json.decode(encode_response(response))
    assert list(decoded) == KEYS
    assert decoded["request_id"] == "r"
    assert tuple(decoded[k] for k in KEYS[1:]) == expected


def test_async_ack_and_stream_end_share_flags() -> None:
    """As in the reference, an async ack and a stream end have the same flags; context
    (the response type) tells them apart."""
    assert encode_response(Response.async_ack("r")) == encode_response(Response.stream_end("r"))
    assert Response.fail("r", "x").is_error
    assert not Response.sync("r", None).is_error
