"""ServerConnection beyond the §9 vectors: joins, replies, pushes, lifecycle."""

from __future__ import annotations

import msgspec
import pytest

from genapi.errors import ConfigError
from genapi.protocol.phoenix import (
    V2_JSON,
    ChannelClosed,
    ChannelState,
    CloseRequested,
    ConnectionState,
    JoinRequested,
    LocalProtocolError,
    MessageReceived,
    ReplyTo,
    ServerConnection,
    TopicRouter,
)

from .scenario import FakeClock

OK = '{"status":"ok","response":{}}'
UNMATCHED = '{"status":"error","response":{"reason":"unmatched topic"}}'
# a join no pattern matches also names the patterns (phoenix.js matches on the reason)
UNMATCHED_JOIN = ('{"status":"error","response":{"reason":"unmatched topic",'
                  '"topics":["room:*","api:lobby"]}}')


def make(**kwargs: object) -> ServerConnection:
    return ServerConnection(V2_JSON, topics=["room:*", "api:lobby"], **kwargs)  # type: ignore[arg-type]


def join(conn: ServerConnection, frame: str) -> JoinRequested:
    events = conn.receive(frame)
    requested = [e for e in events if isinstance(e, JoinRequested)]
    assert len(requested) == 1
    return requested[0]


def joined(topic: str = "room:1", join_ref: str = "1", **kwargs: object) -> ServerConnection:
    conn = make(**kwargs)
    assert conn.accept_join(join(conn, f'["{join_ref}","{join_ref}","{topic}","phx_join",{{}}]'))
    conn.data_to_send()
    return conn


def message(conn: ServerConnection, frame: str) -> MessageReceived:
    (event,) = conn.receive(frame)
    assert isinstance(event, MessageReceived)
    return event


def test_join_requested_carries_topic_pattern_and_params() -> None:
    """A matching join yields JoinRequested with the matched pattern and lazy params."""
    conn = make()
    event = join(conn, '["1","1","room:7","phx_join",{"token":"t"}]')
    assert (event.topic, event.pattern, event.join_ref) == ("room:7", "room:*", "1")
    assert event.payload_raw == b'{"token":"t"}'
    assert event.payload == {"token": "t"}
    assert event.channel.state is ChannelState.JOINING
    assert conn.data_to_send() == []


def test_accept_join_with_response() -> None:
    """accept_join's response is the reply's response."""
    conn = make()
    conn.accept_join(join(conn, '["1","1","room:1","phx_join",{}]'), {"user": "al"})
    assert conn.data_to_send() == [
        '["1","1","room:1","phx_reply",{"status":"ok","response":{"user":"al"}}]'
    ]
    assert conn.channels["room:1"].state is ChannelState.JOINED


def test_exact_topic_pattern() -> None:
    """An exact pattern matches only itself."""
    conn = make()
    join(conn, '["1","1","api:lobby","phx_join",{}]')
    conn.receive('["2","2","api:other","phx_join",{}]')
    assert conn.data_to_send() == [f'[null,"2","api:other","phx_reply",{UNMATCHED_JOIN}]']


def test_join_crashed() -> None:
    """join_crashed answers {"reason":"join crashed"} and stores nothing."""
    conn = make()
    assert conn.join_crashed(join(conn, '["1","1","room:1","phx_join",{}]'))
    assert conn.data_to_send() == [
        '["1","1","room:1","phx_reply",{"status":"error","response":{"reason":"join crashed"}}]'
    ]
    assert conn.channels == {}


def test_too_many_channels() -> None:
    """Past max_channels a join is refused with "too many channels joined"."""
    conn = make(max_channels=2)
    conn.accept_join(join(conn, '["1","1","room:1","phx_join",{}]'))
    join(conn, '["2","2","room:2","phx_join",{}]')  # pending joins count too
    conn.data_to_send()
    assert conn.receive('["3","3","room:3","phx_join",{}]') == []
    assert conn.data_to_send() == [
        '["3","3","room:3","phx_reply",'
        '{"status":"error","response":{"reason":"too many channels joined"}}]'
    ]


def test_rejoin_of_the_same_topic_is_not_limited() -> None:
    """A duplicate join replaces its channel, so it does not count against the limit."""
    conn = make(max_channels=1)
    conn.accept_join(join(conn, '["1","1","room:1","phx_join",{}]'))
    assert join(conn, '["2","2","room:1","phx_join",{}]').join_ref == "2"


def test_pushes_before_the_join_reply_are_held() -> None:
    """Frames for a pending channel go out only after its join reply, in order."""
    conn = make()
    event = join(conn, '["1","1","room:1","phx_join",{}]')
    assert conn.push("room:1", "a", {"n": 1})
    assert conn.send_broadcast("room:1", '[null,null,"room:1","b",{}]')
    assert conn.data_to_send() == []
    conn.accept_join(event)
    assert conn.data_to_send() == [
        f'["1","1","room:1","phx_reply",{OK}]',
        '["1",null,"room:1","a",{"n":1}]',
        '[null,null,"room:1","b",{}]',
    ]


def test_held_pushes_are_dropped_when_the_join_is_rejected() -> None:
    """A refused channel never existed: its held frames are discarded."""
    conn = make()
    event = join(conn, '["1","1","room:1","phx_join",{}]')
    conn.push("room:1", "a", {})
    conn.reject_join(event, {"reason": "no"})
    assert conn.data_to_send() == [
        '["1","1","room:1","phx_reply",{"status":"error","response":{"reason":"no"}}]'
    ]


def test_push_to_unjoined_topic_returns_false() -> None:
    """Nothing is sent for a topic this client has not joined."""
    conn = make()
    assert conn.push("room:1", "a", {}) is False
    assert conn.send_broadcast("room:1", "x") is False
    assert conn.data_to_send() == []


def test_binary_push() -> None:
    """A bytes payload is pushed as a binary kind-0 frame with the channel's join_ref."""
    conn = joined(join_ref="4")
    conn.push("room:1", "img", b"\xde\xad")
    assert conn.data_to_send() == [bytes((0, 1, 6, 3)) + b"4room:1img\xde\xad"]


def test_push_with_struct_payload() -> None:
    """A msgspec.Struct payload is encoded in one pass."""

    class Response(msgspec.Struct):
        request_id: str
        success: bool

    conn = joined()
    conn.push("room:1", "api", Response("r1", True))
    assert conn.data_to_send() == ['["1",null,"room:1","api",{"request_id":"r1","success":true}]']


def test_message_received_fields() -> None:
    """MessageReceived exposes topic, event, refs, lazy payload and raw payload."""
    conn = joined()
    event = message(conn, '["1","5","room:1","api",{"request_id":"r"}]')
    assert (event.topic, event.event, event.join_ref, event.ref) == ("room:1", "api", "1", "5")
    assert event.payload_raw == b'{"request_id":"r"}'
    assert event.payload == {"request_id": "r"}
    assert event.reply_to == ReplyTo("1", "5", "room:1")


def test_null_join_ref_push_is_accepted_and_echoed() -> None:
    """A push with a null join_ref reaches the app; the reply echoes the null."""
    conn = joined()
    event = message(conn, '[null,"5","room:1","ping",{}]')
    conn.reply(event)
    assert conn.data_to_send() == [f'[null,"5","room:1","phx_reply",{OK}]']


def test_numeric_refs_are_echoed_unchanged() -> None:
    """An odd client's numeric refs come back as the same numbers."""
    conn = make()
    event = join(conn, '[7,7,"room:1","phx_join",{}]')
    conn.accept_join(event)
    conn.reply(message(conn, '[7,8,"room:1","ping",{}]'), "ok", {"x": 1})
    assert conn.data_to_send() == [
        f'[7,7,"room:1","phx_reply",{OK}]',
        '[7,8,"room:1","phx_reply",{"status":"ok","response":{"x":1}}]',
    ]


def test_join_without_join_ref_uses_its_ref() -> None:
    """A join with a null join_ref gets join_ref = ref, as in Phoenix; the reply echoes null."""
    conn = make()
    event = join(conn, '[null,"5","room:1","phx_join",{}]')
    assert event.join_ref == "5"
    conn.accept_join(event)
    conn.push("room:1", "a", {})
    assert conn.data_to_send() == [
        f'[null,"5","room:1","phx_reply",{OK}]',
        '["5",null,"room:1","a",{}]',
    ]


def test_deferred_reply_by_address() -> None:
    """A reply may come later, addressed by (join_ref, ref, topic)."""
    conn = joined()
    to = message(conn, '["1","5","room:1","slow",{}]').reply_to
    message(conn, '["1","6","room:1","fast",{}]')
    assert conn.reply(("1", "6", "room:1"), "ok")
    assert conn.reply(to, "error", {"reason": "late"})
    assert conn.data_to_send() == [
        f'["1","6","room:1","phx_reply",{OK}]',
        '["1","5","room:1","phx_reply",{"status":"error","response":{"reason":"late"}}]',
    ]


def test_deferred_reply_after_rejoin_is_dropped() -> None:
    """A reply for an earlier join of the topic is not sent."""
    conn = joined()
    to = message(conn, '["1","5","room:1","slow",{}]').reply_to
    conn.accept_join(join(conn, '["9","9","room:1","phx_join",{}]'))
    conn.data_to_send()
    assert conn.reply(to) is False
    assert conn.data_to_send() == []


def test_stale_leave_is_ignored() -> None:
    """A leave carrying another join_ref is dropped silently."""
    conn = joined()
    assert conn.receive('["0","5","room:1","phx_leave",{}]') == []
    assert conn.data_to_send() == []
    assert "room:1" in conn.channels


def test_leave_tells_the_app() -> None:
    """A leave yields ChannelClosed(reason="left")."""
    conn = joined()
    assert conn.receive('["1","5","room:1","phx_leave",{}]') == [
        ChannelClosed("room:1", "1", "left")
    ]


def test_leave_while_join_pending_cancels_it() -> None:
    """A leave during a pending join cancels it: ok reply only, later accept is a no-op."""
    conn = make()
    event = join(conn, '["1","1","room:1","phx_join",{}]')
    assert conn.receive('["1","2","room:1","phx_leave",{}]') == [
        ChannelClosed("room:1", "1", "left")
    ]
    assert conn.accept_join(event) is False
    assert conn.data_to_send() == [f'["1","2","room:1","phx_reply",{OK}]']
    assert event.channel.state is ChannelState.CLOSED


def test_push_during_pending_join_is_not_delivered() -> None:
    """Nothing reaches the app for a topic it has not accepted yet."""
    conn = make()
    join(conn, '["1","1","room:1","phx_join",{}]')
    assert conn.receive('["1","2","room:1","api",{}]') == []
    assert conn.data_to_send() == [f'[null,"2","room:1","phx_reply",{UNMATCHED}]']


def test_duplicate_of_pending_join_sends_nothing_for_the_old_one() -> None:
    """Replacing an unanswered join sends no phx_close; its late accept is a no-op."""
    conn = make()
    old = join(conn, '["1","1","room:1","phx_join",{}]')
    events = conn.receive('["2","2","room:1","phx_join",{}]')
    assert events[0] == ChannelClosed("room:1", "1", "duplicate join")
    assert isinstance(events[1], JoinRequested)
    assert conn.accept_join(old) is False
    assert conn.accept_join(events[1])
    assert conn.data_to_send() == [f'["2","2","room:1","phx_reply",{OK}]']


def test_accepting_twice_is_illegal() -> None:
    """A second answer to the same join is an illegal transition."""
    conn = make()
    event = join(conn, '["1","1","room:1","phx_join",{}]')
    conn.accept_join(event)
    with pytest.raises(LocalProtocolError):
        conn.accept_join(event)
    with pytest.raises(LocalProtocolError):
        conn.reject_join(event, {})


def test_closing_a_pending_join_is_illegal() -> None:
    """close_channel / error_channel need a joined channel; pending joins use reject_join."""
    conn = make()
    join(conn, '["1","1","room:1","phx_join",{}]')
    with pytest.raises(LocalProtocolError):
        conn.close_channel("room:1")
    with pytest.raises(LocalProtocolError):
        conn.error_channel("room:1")


def test_close_and_error_of_unknown_topic_return_false() -> None:
    """Closing a channel that is already gone is a no-op."""
    conn = make()
    assert conn.close_channel("room:1") is False
    assert conn.error_channel("room:1") is False


def test_heartbeat_is_answered_with_null_join_ref_whatever_it_carries() -> None:
    """The heartbeat reply has join_ref null even if the heartbeat carried one."""
    conn = joined()
    assert conn.receive('["1","7","phoenix","heartbeat",{}]') == []
    assert conn.data_to_send() == [f'[null,"7","phoenix","phx_reply",{OK}]']


def test_malformed_frame_requests_close_1007() -> None:
    """A malformed frame with no readable ref yields CloseRequested(1007) with a reason,
    carrying the ProtocolError: the client's mistake, never 1011 (a server error)."""
    conn = joined()
    (event,) = conn.receive("[")
    assert isinstance(event, CloseRequested)
    assert (event.code, event.error is not None) == (1007, True)
    assert conn.state is ConnectionState.CLOSING
    assert (conn.close_code, conn.close_reason) == (1007, "malformed Phoenix frame")
    assert conn.push("room:1", "a", {}) is False


@pytest.mark.parametrize(("frame", "reason"), [
    ('["1","5","room:1","api",{"args":{"x":NaN}}]', "Invalid request: payload is not valid JSON"),
    ('["1","5","room:1","api",{"args":{"x":Infinity}}]',
     "Invalid request: payload is not valid JSON"),
    ('["1","5","room:1","api",{"args":' + "[" * 10_000 + "]" * 10_000 + "}]",
     "Invalid request: payload nested too deeply"),
    ('["1","5","room:1","api"]', "Invalid request: payload is not valid JSON"),
])
def test_bad_payload_with_a_ref_gets_an_error_reply(frame: str, reason: str) -> None:
    """NaN, Infinity, 10,000-deep nesting: the frame's ref is answered with an error and the
    connection stays open."""
    conn = joined()
    assert conn.receive(frame) == []
    assert conn.data_to_send() == [
        f'["1","5","room:1","phx_reply",{{"status":"error","response":{{"reason":"{reason}"}}}}]'
    ]
    assert conn.state is ConnectionState.OPEN
    message(conn, '["1","6","room:1","ping",{}]')


def test_join_ref_as_number_or_string_is_the_same_join() -> None:
    """A push whose join_ref is 1 on a channel joined with "1" (or the other way round)
    reaches the app and is answered, echoing what the client sent."""
    conn = joined()
    event = message(conn, '[1,"5","room:1","ping",{}]')
    assert conn.reply(event)
    other = make()
    other.accept_join(join(other, '[2,2,"room:1","phx_join",{}]'))
    other.data_to_send()
    assert other.reply(message(other, '["2","6","room:1","ping",{}]'))
    assert conn.data_to_send() == [f'[1,"5","room:1","phx_reply",{OK}]']
    assert other.data_to_send() == [f'["2","6","room:1","phx_reply",{OK}]']


@pytest.mark.parametrize(("topic", "reason"), [
    ("room:" + "x" * 300, '{"reason":"topic too long","max_topic_length":256}'),
    ("room:a\\u0000", '{"reason":"invalid topic"}'),
    ("room:a\\n", '{"reason":"invalid topic"}'),
    ("room:\\u007f", '{"reason":"invalid topic"}'),
])
def test_bad_topics_are_refused_and_not_stored(topic: str, reason: str) -> None:
    """Over max_topic_length, or with control characters: an error reply; nothing stored."""
    conn = make()
    assert conn.receive(f'["1","1","{topic}","phx_join",{{}}]') == []
    (reply,) = conn.data_to_send()
    assert f'"status":"error","response":{reason}' in reply
    assert conn.channels == {}


def test_topic_length_is_configurable() -> None:
    conn = make(max_topic_length=8)
    assert conn.receive('["1","1","room:123","phx_join",{}]') != []
    conn.receive('["2","2","room:1234","phx_join",{}]')
    assert "topic too long" in str(conn.data_to_send())
    with pytest.raises(ConfigError):
        make(max_topic_length=0)


def test_wildcard_needs_one_character() -> None:
    """``room:*`` does not match ``room:``: the empty subtopic is unmatched."""
    conn = make()
    assert conn.receive('["1","1","room:","phx_join",{}]') == []
    assert conn.data_to_send() == [f'[null,"1","room:","phx_reply",{UNMATCHED_JOIN}]']
    assert TopicRouter(["room:*"]).match("room:") is None
    assert TopicRouter(["room:*"]).match("room:1") == "room:*"


def test_close_ignores_input() -> None:
    """After close(1001) input is ignored and nothing more is queued."""
    conn = joined()
    conn.close(1001)
    assert conn.close_code == 1001
    assert conn.receive('[null,"7","phoenix","heartbeat",{}]') == []
    assert conn.data_to_send() == []


def test_connection_lost_closes_every_channel() -> None:
    """Losing the socket ends every channel with reason "closed", once."""
    conn = joined()
    join(conn, '["2","2","room:2","phx_join",{}]')
    assert conn.connection_lost() == [
        ChannelClosed("room:1", "1", "closed"),
        ChannelClosed("room:2", "2", "closed"),
    ]
    assert conn.state is ConnectionState.CLOSED
    assert conn.channels == {}
    with pytest.raises(LocalProtocolError):
        conn.connection_lost()


def test_last_activity_follows_the_injected_clock() -> None:
    """Every received frame, heartbeats included, refreshes last_activity."""
    clock = FakeClock(100.0)
    conn = make(clock=clock, idle_timeout=60.0)
    assert conn.idle_deadline == 160.0
    clock.now = 130.0
    conn.receive('[null,"1","phoenix","heartbeat",{}]')
    assert (conn.last_activity, conn.idle_deadline) == (130.0, 190.0)


def test_channels_view_is_read_only() -> None:
    """The app cannot edit the channel map behind the core's back."""
    conn = joined()
    with pytest.raises(TypeError):
        conn.channels["x"] = conn.channels["room:1"]  # type: ignore[index]


def test_topic_router_keeps_declaration_order() -> None:
    """The first declared pattern that matches wins, as in Phoenix."""
    router = TopicRouter(["room:*", "room:lobby", "*"])
    assert router.match("room:lobby") == "room:*"
    assert router.match("x") == "*"
    assert TopicRouter(["a", "b"]).match("c") is None


@pytest.mark.parametrize("pattern", ["room:*:x", "", "*a"])
def test_topic_router_refuses_bad_patterns(pattern: str) -> None:
    """A wildcard anywhere but at the end, or an empty pattern, is a ConfigError."""
    with pytest.raises(ConfigError):
        TopicRouter([pattern])
