"""ClientConnection: joins, reply matching, the join_ref filter, rejoin, heartbeat, timeouts."""

from __future__ import annotations

import pytest

from genapi.protocol.phoenix import (
    V1_JSON,
    V2_JSON,
    ChannelClosed,
    ChannelErrored,
    ChannelJoined,
    ClientChannelState,
    ClientConnection,
    ClientState,
    HeartbeatAcked,
    LocalProtocolError,
    ProtocolError,
    PushReceived,
    ReplyReceived,
    ReplyTimedOut,
)

from .scenario import FakeClock, ScenarioApp

OK = '{"status":"ok","response":{}}'


def connected(clock: FakeClock | None = None) -> ClientConnection:
    client = ClientConnection(V2_JSON, clock=clock or FakeClock())
    client.connected()
    return client


def joined(topic: str = "room:1") -> tuple[ClientConnection, str]:
    client = connected()
    ref = client.join(topic)
    assert ref is not None
    client.receive(f'["{ref}","{ref}","{topic}","phx_reply",{OK}]')
    client.data_to_send()
    return client, ref


def test_join_frame_has_join_ref_equal_to_ref() -> None:
    """A join is [ref, ref, topic, "phx_join", params] with string refs."""
    client = connected()
    assert client.join("room:1", {"token": "t"}) == "1"
    assert client.data_to_send() == ['["1","1","room:1","phx_join",{"token":"t"}]']
    assert client.channel_state("room:1") is ClientChannelState.JOINING


def test_join_ok_reply() -> None:
    """An ok join reply resolves the ref and joins the channel."""
    client = connected()
    client.join("room:1")
    events = client.receive('["1","1","room:1","phx_reply",{"status":"ok","response":{"u":1}}]')
    assert events == [
        ReplyReceived("room:1", "1", "1", "ok", {"u": 1}),
        ChannelJoined("room:1", "1", {"u": 1}),
    ]
    assert client.channel_state("room:1") is ClientChannelState.JOINED


def test_join_refused_errors_the_channel() -> None:
    """An error join reply leaves the channel errored, to be rejoined."""
    client = connected()
    client.join("room:secret")
    events = client.receive(
        '["1","1","room:secret","phx_reply",{"status":"error","response":{"reason":"unauthorized"}}]'
    )
    assert events[1] == ChannelErrored("room:secret", "1", {"reason": "unauthorized"})
    assert client.channel_state("room:secret") is ClientChannelState.ERRORED


def test_push_reply_is_matched_by_ref() -> None:
    """A push gets a fresh ref and its reply comes back as ReplyReceived."""
    client, jr = joined()
    ref = client.push("room:1", "ping", {"n": 1})
    assert client.data_to_send() == [f'["{jr}","{ref}","room:1","ping",{{"n":1}}]']
    events = client.receive(
        f'["{jr}","{ref}","room:1","phx_reply",{{"status":"ok","response":{{"n":1}}}}]'
    )
    assert events == [ReplyReceived("room:1", ref, jr, "ok", {"n": 1})]


def test_unknown_and_repeated_replies_are_ignored() -> None:
    """A reply to a ref nobody waits for produces nothing."""
    client, jr = joined()
    ref = client.push("room:1", "ping", {})
    reply = f'["{jr}","{ref}","room:1","phx_reply",{OK}]'
    assert len(client.receive(reply)) == 1
    assert client.receive(reply) == []
    assert client.receive(f'["{jr}","999","room:1","phx_reply",{OK}]') == []


def test_reply_on_another_topic_does_not_match() -> None:
    """Replies are matched per topic as well as per ref."""
    client, _ = joined()
    ref = client.push("room:1", "ping", {})
    assert client.receive(f'[null,"{ref}","room:2","phx_reply",{OK}]') == []


def test_pushes_are_buffered_until_joined() -> None:
    """Pushes made while joining go out, with the join_ref, after the ok reply."""
    client = connected()
    client.join("room:1")
    client.data_to_send()
    ref = client.push("room:1", "ping", {})
    assert client.data_to_send() == []
    client.receive(f'["1","1","room:1","phx_reply",{OK}]')
    assert client.data_to_send() == [f'["1","{ref}","room:1","ping",{{}}]']


def test_server_push_and_broadcast_are_delivered() -> None:
    """A push with the current join_ref and a broadcast (null join_ref) both arrive."""
    client, jr = joined()
    (push,) = client.receive(f'["{jr}",null,"room:1","welcome",{{"msg":"hi"}}]')
    (broadcast,) = client.receive('[null,null,"room:1","shout",{"b":1}]')
    assert isinstance(push, PushReceived)
    assert isinstance(broadcast, PushReceived)
    assert (push.event, push.payload, push.join_ref) == ("welcome", {"msg": "hi"}, jr)
    assert (broadcast.event, broadcast.join_ref) == ("shout", None)


def test_stale_join_ref_frames_are_dropped() -> None:
    """Pushes, phx_close and phx_error of an earlier join are ignored (spec §5.3)."""
    client, _ = joined()
    assert client.receive('["0",null,"room:1","welcome",{}]') == []
    assert client.receive('["0","0","room:1","phx_close",{}]') == []
    assert client.receive('["0","0","room:1","phx_error",{}]') == []
    assert client.channel_state("room:1") is ClientChannelState.JOINED


def test_frames_for_unknown_topics_are_ignored() -> None:
    """A frame on a topic with no local channel produces nothing."""
    client = connected()
    assert client.receive('[null,null,"room:9","shout",{}]') == []


def test_phx_close_closes_without_rejoin() -> None:
    """phx_close with the current join_ref removes the channel."""
    client, jr = joined()
    assert client.receive(f'["{jr}","{jr}","room:1","phx_close",{{}}]') == [
        ChannelClosed("room:1", jr, "closed")
    ]
    assert client.channel_state("room:1") is None


def test_rejoin_after_phx_error_uses_a_new_join_ref() -> None:
    """phx_error errors the channel; rejoin sends a join with a new join_ref."""
    client, jr = joined()
    events = client.receive(f'["{jr}","{jr}","room:1","phx_error",{{"reason":"channel_crash"}}]')
    assert events == [ChannelErrored("room:1", jr, {"reason": "channel_crash"})]
    new = client.rejoin("room:1")
    assert new is not None
    assert new != jr
    assert client.data_to_send() == [f'["{new}","{new}","room:1","phx_join",{{}}]']
    # the server's late phx_close for the old join must not close the new channel
    assert client.receive(f'["{jr}","{jr}","room:1","phx_close",{{}}]') == []
    client.receive(f'["{new}","{new}","room:1","phx_reply",{OK}]')
    assert client.channel_state("room:1") is ClientChannelState.JOINED


def test_rejoin_of_a_joined_channel_is_illegal() -> None:
    """Only an errored channel may be rejoined."""
    client, _ = joined()
    with pytest.raises(LocalProtocolError):
        client.rejoin("room:1")


def test_heartbeat_ref_is_reported_and_acked_by_any_frame_with_it() -> None:
    """The pending heartbeat ref clears on any frame that carries it."""
    client = connected()
    ref = client.heartbeat()
    assert client.pending_heartbeat_ref == ref
    assert client.data_to_send() == [f'[null,"{ref}","phoenix","heartbeat",{{}}]']
    assert client.receive(f'[null,"{ref}","phoenix","phx_reply",{OK}]') == [HeartbeatAcked(ref)]
    assert client.pending_heartbeat_ref is None


def test_heartbeat_needs_a_connection() -> None:
    """No heartbeat is built while disconnected."""
    with pytest.raises(LocalProtocolError):
        ClientConnection().heartbeat()


def test_reconnect_rejoins_every_wanted_channel() -> None:
    """After a disconnect, connected() queues joins with new join_refs; left ones stay gone."""
    client, jr1 = joined("room:1")
    client.join("room:2")  # still joining when the socket drops
    client.join("room:3")
    client.leave("room:3")
    client.data_to_send()
    events = client.disconnected()
    assert events == [
        ChannelErrored("room:1", jr1, "connection_closed"),
        ChannelErrored("room:2", client.join_ref("room:2"), "connection_closed"),
    ]
    new_refs = client.connected()
    assert len(new_refs) == 2
    assert jr1 not in new_refs
    assert client.data_to_send() == [
        f'["{new_refs[0]}","{new_refs[0]}","room:1","phx_join",{{}}]',
        f'["{new_refs[1]}","{new_refs[1]}","room:2","phx_join",{{}}]',
    ]


def test_join_while_disconnected_goes_out_on_connect() -> None:
    """join() before the socket opens returns None; connected() sends it."""
    client = ClientConnection()
    assert client.join("room:1", {"p": 1}) is None
    assert client.data_to_send() == []
    (ref,) = client.connected()
    assert client.data_to_send() == [f'["{ref}","{ref}","room:1","phx_join",{{"p":1}}]']


def test_leave_sends_phx_leave_and_closes_at_once() -> None:
    """leave() sends phx_leave with the join_ref; the channel is gone immediately."""
    client, jr = joined()
    ref = client.leave("room:1")
    assert client.data_to_send() == [f'["{jr}","{ref}","room:1","phx_leave",{{}}]']
    assert client.channel_state("room:1") is None
    assert client.receive(f'["{jr}","{ref}","room:1","phx_reply",{OK}]') == [
        ReplyReceived("room:1", str(ref), jr, "ok", {})
    ]


def test_push_timeout() -> None:
    """A push with no reply by its deadline times out; a late reply is ignored."""
    clock = FakeClock(0.0)
    client = connected(clock)
    client.join("room:1")
    client.receive(f'["1","1","room:1","phx_reply",{OK}]')
    ref = client.push("room:1", "noop", {}, timeout=5.0)
    assert client.next_deadline() == 5.0
    clock.now = 4.9
    assert client.check_timeouts() == []
    clock.now = 5.0
    assert client.check_timeouts() == [ReplyTimedOut("room:1", ref)]
    assert client.next_deadline() is None
    assert client.receive(f'["1","{ref}","room:1","phx_reply",{OK}]') == []


def test_buffered_push_that_times_out_is_never_sent() -> None:
    """A push still buffered when it times out is dropped from the buffer."""
    clock = FakeClock(0.0)
    client = connected(clock)
    client.join("room:1", timeout=100.0)
    ref = client.push("room:1", "ping", {}, timeout=1.0)
    clock.now = 2.0
    assert client.check_timeouts() == [ReplyTimedOut("room:1", ref)]
    client.data_to_send()
    client.receive(f'["1","1","room:1","phx_reply",{OK}]')
    assert client.data_to_send() == []


def test_join_timeout_leaves_and_errors_the_channel() -> None:
    """A join without reply sends phx_leave for that join_ref and errors the channel."""
    clock = FakeClock(0.0)
    client = connected(clock)
    client.join("room:1")
    client.data_to_send()
    clock.now = 10.0
    events = client.check_timeouts()
    assert events == [ReplyTimedOut("room:1", "1"), ChannelErrored("room:1", "1", "timeout")]
    assert client.data_to_send() == ['["1","2","room:1","phx_leave",{}]']


def test_binary_reply_response_is_bytes() -> None:
    """A kind-1 binary reply resolves its ref with the raw bytes as response."""
    client, jr = joined()
    ref = client.push("room:1", "ping", b"\x09")
    frame = bytes((1, len(jr), len(ref), 6, 2)) + f"{jr}{ref}room:1ok".encode() + b"\x09"
    assert client.receive(frame) == [ReplyReceived("room:1", ref, jr, "ok", b"\x09")]


def test_malformed_server_frame_raises_protocol_error() -> None:
    """Garbage from the server is a ProtocolError for the I/O layer to handle."""
    with pytest.raises(ProtocolError):
        connected().receive("nope")


def test_reply_without_status_is_malformed() -> None:
    """A phx_reply for a pending ref without a status string is a ProtocolError."""
    client, jr = joined()
    ref = client.push("room:1", "ping", {})
    with pytest.raises(ProtocolError):
        client.receive(f'["{jr}","{ref}","room:1","phx_reply",{{"response":{{}}}}]')


def test_close_is_final() -> None:
    """After close() nothing can be joined and the state is CLOSED."""
    client, _ = joined()
    client.close()
    assert client.state is ClientState.CLOSED
    with pytest.raises(LocalProtocolError):
        client.join("room:2")


def test_client_against_server_core() -> None:
    """The two cores talk to each other: join, push with reply, crash, rejoin."""
    app = ScenarioApp()
    client = connected()

    def pump() -> list[object]:
        events: list[object] = []
        for frame in client.data_to_send():
            for answer in app.send(frame):
                events += client.receive(answer)
        return events

    client.join("room:lobby")
    events = pump()
    assert isinstance(events[1], ChannelJoined)
    assert isinstance(events[2], PushReceived)
    assert events[2].event == "welcome"
    ref = client.push("room:lobby", "ping", {"n": 1})
    assert pump() == [ReplyReceived("room:lobby", ref, "1", "ok", {"n": 1})]
    client.push("room:lobby", "boom", {})
    (errored,) = pump()
    assert isinstance(errored, ChannelErrored)
    new_ref = client.rejoin("room:lobby")
    events = pump()
    assert ChannelJoined("room:lobby", str(new_ref), {}) in events


def test_v1_client_frames() -> None:
    """Over V1 the client sends objects with a join_ref key and reads four-key replies."""
    client = ClientConnection(V1_JSON)
    client.connected()
    client.join("room:1")
    assert client.data_to_send() == [
        '{"topic":"room:1","event":"phx_join","payload":{},"ref":"1","join_ref":"1"}'
    ]
    events = client.receive(
        '{"topic":"room:1","event":"phx_reply","payload":{"status":"ok","response":{}},"ref":"1"}'
    )
    assert ChannelJoined("room:1", "1", {}) in events
