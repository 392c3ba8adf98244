"""Fuzzing ServerConnection.receive: it answers with documented frames, answers a frame it
cannot decode with an error reply when it can read its ref, or asks to close (1007)."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genapi.protocol.phoenix import (
    V1_JSON,
    V2_JSON,
    CloseRequested,
    ConnectionState,
    MessageReceived,
    ProtocolError,
    Serializer,
    binary,
)

from .scenario import ScenarioApp

FUZZ = settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

WORDS = st.sampled_from(
    ["phoenix", "heartbeat", "phx_join", "phx_leave", "phx_reply", "room:1", "room:secret",
     "room:lobby", "nope", "1", "2", "3", "ping", "noop", "boom", "kick", "shout", ""]
)  # fmt: skip
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | WORDS
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
ARRAYS = st.lists(JSON_VALUES, max_size=7).map(lambda a: msgspec.json.encode(a).decode())
REFS = st.none() | st.sampled_from(["1", "2", "3", "9"]) | st.integers(0, 3)
PLAUSIBLE = st.tuples(REFS, REFS, WORDS, WORDS, JSON_VALUES).map(
    lambda t: msgspec.json.encode(list(t)).decode()
)
BINARY = st.binary(max_size=40) | st.binary(max_size=40).map(lambda b: b"\x00" + b)
INPUTS = st.one_of(st.text(max_size=40), BINARY, ARRAYS, PLAUSIBLE)

# well-formed frames over a few topics and events, so that sequences reach deep states
TOPICS = st.sampled_from(["room:1", "room:1", "room:lobby", "room:secret", "nope", "phoenix"])
EVENTS = st.sampled_from(
    ["phx_join", "phx_join", "phx_leave", "heartbeat", "ping", "ping", "noop", "shout", "boom",
     "kick", "api"]
)  # fmt: skip
SMALL_REFS = st.none() | st.sampled_from(["1", "2"])
PAYLOADS: st.SearchStrategy[Any] = st.just({}) | st.dictionaries(
    st.sampled_from(["a", "b"]), SCALARS, max_size=2
)
VALID_TEXT = st.tuples(SMALL_REFS, SMALL_REFS, TOPICS, EVENTS, PAYLOADS | JSON_VALUES).map(
    lambda t: msgspec.json.encode(list(t)).decode()
)
VALID_BINARY = st.builds(
    binary.encode_client_push, SMALL_REFS, SMALL_REFS, TOPICS, EVENTS, st.binary(max_size=4)
)
VALID = VALID_TEXT | VALID_BINARY
SESSIONS = st.tuples(st.lists(VALID, max_size=15), st.none() | INPUTS).map(
    lambda t: t[0] if t[1] is None else [*t[0], t[1]]
)

DOCUMENTED_EVENTS = {"phx_reply", "phx_close", "phx_error", "welcome", "shout"}


class FuzzApp(ScenarioApp):
    """The scenario app, minus broadcasts of payloads that are not objects."""

    def on_message(self, event: MessageReceived) -> None:
        if event.event == "shout" and not isinstance(event.payload, dict):
            return
        super().on_message(event)


def check_output(frames: list[str | bytes], request_ref: Any) -> None:
    """Every frame is a well-formed S→C frame with a documented event; replies echo the ref."""
    for frame in frames:
        message = V2_JSON.decode_server_frame(frame)
        assert message.event in DOCUMENTED_EVENTS
        if message.event == "phx_reply":
            assert message.ref == request_ref
            payload = message.payload
            assert payload["status"] in {"ok", "error"}
            assert "response" in payload


def feed(app: ScenarioApp, serializer: Serializer, data: str | bytes) -> None:
    was_closing = app.conn.state is not ConnectionState.OPEN
    try:
        expected = serializer.decode_client_frame(data)
    except ProtocolError:
        expected = None
    before = len(app.close_requests)
    frames = app.send(data)  # must never raise
    if was_closing:
        assert frames == []
        assert len(app.close_requests) == before
    elif expected is None:
        envelope = serializer.salvage_envelope(data)
        if envelope is not None and envelope[1] is not None:
            # the ref is readable: an error reply to it, the connection stays open
            (reply,) = frames
            message = V2_JSON.decode_server_frame(reply)
            assert (message.event, message.ref) == ("phx_reply", envelope[1])
            assert message.payload["status"] == "error"
            assert message.payload["response"]["reason"].startswith("Invalid request: ")
            assert len(app.close_requests) == before
        else:
            # a client's malformed frame: 1007 (invalid payload data), never 1011
            assert frames == []
            assert [c.code for c in app.close_requests[before:]] == [1007]
            assert app.conn.state is ConnectionState.CLOSING
    else:
        assert len(app.close_requests) == before
        if serializer is V2_JSON:
            check_output(frames, expected.ref)


@FUZZ
@given(INPUTS)
def test_any_single_input_is_answered_or_closes(data: str | bytes) -> None:
    """One arbitrary frame on a fresh connection never raises."""
    feed(FuzzApp(), V2_JSON, data)


@FUZZ
@given(SESSIONS)
def test_sessions_are_answered_or_close(inputs: list[str | bytes]) -> None:
    """Well-formed frames, then maybe garbage, never raise; after a 1007 close, input is ignored."""
    app = FuzzApp()
    for data in inputs:
        feed(app, V2_JSON, data)


@FUZZ
@given(st.lists(INPUTS, max_size=6))
def test_arbitrary_frames_on_a_joined_connection(inputs: list[str | bytes]) -> None:
    """Arbitrary frames after real joins never raise."""
    app = FuzzApp()
    app.send_all(['["1","1","room:1","phx_join",{}]', '["3","3","room:lobby","phx_join",{}]'])
    for data in inputs:
        feed(app, V2_JSON, data)


V1_OBJECTS = st.fixed_dictionaries(
    {},
    optional={"topic": WORDS | SCALARS, "event": WORDS, "payload": JSON_VALUES, "ref": REFS,
              "join_ref": REFS},
).map(lambda d: msgspec.json.encode(d).decode())  # fmt: skip


@FUZZ
@given(st.lists(st.one_of(st.text(max_size=30), V1_OBJECTS, ARRAYS), max_size=8))
def test_v1_sequences_never_raise(inputs: list[str]) -> None:
    """The V1 serializer holds to the same contract."""
    app = FuzzApp(V1_JSON)
    app.send('{"topic":"room:1","event":"phx_join","payload":{},"ref":"1"}')
    for data in inputs:
        feed(app, V1_JSON, data)


def test_close_event_is_the_only_way_out() -> None:
    """Sanity check of the oracle: a malformed frame yields exactly one CloseRequested."""
    app = FuzzApp()
    app.send("[1,2]")
    assert app.close_requests == [app.close_requests[0]]
    assert isinstance(app.close_requests[0], CloseRequested)
