"""The fan-out's performance work, checked for correctness (no timings): presence diffs
(O(N) frames for N joins, the same final presence), message order kept around them, and
encode-once (the same frame bytes to every member socket)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import websockets

from genapi import Gateway, InsecureDemoAuthenticator, Response
from genapi.relay import PRESENCE_REQUEST_ID, LocalBus, RelayHub, RelayLimits, add_relay
from genapi.relay.diffs import PresenceDiffs
from genapi.relay.endpoints import Endpoint, LocalEndpoints
from tests.gateway.conftest import RawClient, ws_url
from tests.relay.backends import Clock, Conn
from tests.support.servers import running_app


def hub(**options: Any) -> RelayHub:
    clock = Clock()
    return RelayHub(clock=clock, bus=LocalBus(clock=clock), **options)


# -- presence diffs ---------------------------------------------------------------------


async def test_joining_n_members_costs_one_diff_per_member_per_interval() -> None:
    """200 members join within one interval: each member gets one diff (200 frames in
    all, not 200·201/2), and every member's presence is the whole group."""
    h = hub()
    await h.create("g", "public", None, persistent=True)
    conns = {f"u{n}": Conn(f"u{n}") for n in range(200)}
    for user, conn in conns.items():
        await h.join("g", user, conn.endpoint())
    assert sum(len(c.got) for c in conns.values()) == 0  # nothing before the interval ends
    h.flush_presence()
    assert all(len(c.got) == 1 for c in conns.values())
    assert all(c.presence() == set(conns) for c in conns.values())
    info = await h.presence("g")
    assert {m.user_id for m in info.members} == set(conns)


async def test_a_member_sees_the_same_final_presence_as_with_single_notices() -> None:
    """Joins, leaves, rejoins and second connections over several intervals: every member
    that applies the diffs it got to the presence it fetched on joining ends with the
    group's presence; the leaves appear."""
    h = hub()
    await h.create("g", "public", None, persistent=True)
    conns: dict[str, Conn] = {}
    snapshots: dict[str, set[str]] = {}

    async def join(user: str) -> None:
        conns[user] = Conn(user)
        await h.join("g", user, conns[user].endpoint())
        snapshots[user] = {m.user_id for m in (await h.presence("g")).members}

    for n in range(10):
        await join(f"u{n}")
    h.flush_presence()
    await h.close_owner(conns.pop("u3"))
    await h.leave("g", "u4")
    conns.pop("u4")
    await join("late")
    await h.close_owner(conns.pop("late"))  # joins and goes within one interval
    await join("u3")  # u3 comes back
    second = Conn("u5")
    await h.join("g", "u5", second.endpoint())  # a second connection: no news
    h.flush_presence()
    await h.close_owner(conns.pop("u7"))
    h.flush_presence()

    final = {m.user_id for m in (await h.presence("g")).members}
    assert final == {f"u{n}" for n in range(10)} - {"u4", "u7"}
    for user, conn in conns.items():
        seen = set(snapshots[user])
        for response in conn.got:
            result = response.result
            if response.request_id == PRESENCE_REQUEST_ID and result["presence"] == "diff":
                assert not set(result["joins"]) & set(result["leaves"])
                seen = (seen - set(result["leaves"])) | set(result["joins"])
        assert seen == final, user
    assert ("leave", "u7") in conns["u0"].notices()
    assert ("leave", "u4") in conns["u0"].notices()


def test_a_diff_keeps_each_users_latest_change() -> None:
    """Within one interval: join then leave is a leave, leave then join is a join."""
    async def run() -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []
        diffs = PresenceDiffs(lambda group_id, notice: sent.append(notice), 3600)
        diffs.add("g", "a", True, {"status": "active", "role": "member"})
        diffs.add("g", "a", False, {"status": None, "role": "member"})
        diffs.add("g", "b", False, {"status": None, "role": "member"})
        diffs.add("g", "b", True, {"status": "active", "role": "member"})
        diffs.add("h", "c", True, {"status": "active", "role": "member"})
        assert len(diffs) == 2
        diffs.flush("g")
        diffs.drop("h")  # the group went: its diff is never sent
        diffs.flush_all()
        diffs.close()
        return sent

    sent = asyncio.run(run())
    assert sent == [{"group_id": "g", "presence": "diff",
                     "joins": {"b": {"status": "active", "role": "member"}},
                     "leaves": {"a": {"status": None, "role": "member"}}}]


async def test_diffs_arrive_on_their_own_after_the_interval() -> None:
    """Without a flush, the interval's timer delivers the diff."""
    h = hub(limits=RelayLimits(presence_interval_ms=1))
    alice, bob = Conn("alice"), Conn("bob")
    await h.create("g", "public", "alice", alice.endpoint())
    await h.join("g", "bob", bob.endpoint())
    while not alice.got:
        await asyncio.sleep(0.01)
    assert alice.notices() == [("join", "bob")]
    await h.aclose()


# -- order --------------------------------------------------------------------------------


async def test_batching_keeps_the_order_of_each_group() -> None:
    """Messages interleaved with joins: every member gets the messages in offset order,
    and sees a sender's join before the sender's first message."""
    h = hub()
    await h.create("g", "public", None, persistent=True)
    conns: dict[str, Conn] = {}
    offsets = []
    for n in range(20):
        user = f"u{n}"
        conns[user] = Conn(user)
        await h.join("g", user, conns[user].endpoint())
        if n % 3 == 0:
            sent = await h.send("g", user, {"n": n}, origin=conns[user])
            offsets.append(sent.offset)
    h.flush_presence()
    for user, conn in conns.items():
        got = conn.offsets()
        assert got == sorted(got) and set(got) <= set(offsets)
        joined: set[str] = set()
        for response in conn.got:
            result = response.result
            if response.request_id == PRESENCE_REQUEST_ID:
                joined |= set(result["joins"])
            elif result["from_user_id"] != user:
                assert result["from_user_id"] in joined, (user, result)
    # the last member gets no message sent before it joined; the first gets all but its own
    assert conns["u0"].offsets() == offsets[1:]


# -- encode once --------------------------------------------------------------------------


async def test_one_encode_per_fan_out() -> None:
    """Endpoints with deliver_shared share one frames dict per delivery: the first one
    encodes, the others reuse the very same frame."""
    encodes: list[int] = []
    written: list[tuple[str, Any]] = []

    class Sink:
        def __init__(self, name: str) -> None:
            self.name = name

        def __call__(self, response: Response) -> None:
            raise AssertionError("the shared path is taken")

        def deliver_shared(self, response: Response, frames: dict[Any, Any]) -> None:
            frame = frames.get("api")
            if frame is None:
                encodes.append(1)
                frame = frames["api"] = json.dumps(response.result)
            written.append((self.name, frame))

    local = LocalEndpoints("h")
    for n in range(50):
        local.add("g", f"u{n}", Endpoint(Sink(f"u{n}"), owner=object()), receives=True)
    for k in range(3):
        assert local.deliver("g", Response.sync("r", {"k": k})) == 50
    assert len(encodes) == 3 and len(written) == 150
    assert all(frame is written[0][1] for _, frame in written[:50])


async def test_every_member_socket_gets_the_same_frame_bytes() -> None:
    """Over real sockets (members on different topics too): each topic's members receive
    byte-identical frames, a broadcast with a null join_ref, which the members accept."""
    gateway = Gateway(authenticator=InsecureDemoAuthenticator())
    add_relay(gateway)
    async with running_app(gateway) as url:
        sockets = [await websockets.connect(ws_url(url, f"vsn=2.0.0&user_id=u{n}"))
                   for n in range(6)]
        try:
            clients = [RawClient(ws) for ws in sockets]
            topics = ["api:lobby" if n % 2 == 0 else "api:room" for n in range(6)]
            await clients[0].join()
            await clients[0].call({"request_id": "c", "service": "relay",
                                   "request_type": "create_group", "args": {"group_id": "g"}})
            for n, client in enumerate(clients[1:], 1):
                await client.join(topics[n])
                await client.push({"request_id": f"j{n}", "service": "relay",
                                   "request_type": "join_group", "args": {"group_id": "g"}},
                                  topic=topics[n])
            await clients[0].push({"request_id": "m1", "service": "relay",
                                   "request_type": "send_message",
                                   "args": {"group_id": "g", "message": {"text": "same"}}})
            raw: dict[int, str] = {}
            for n, ws in enumerate(sockets[1:], 1):
                while n not in raw:
                    text = await asyncio.wait_for(ws.recv(), 10)
                    frame = json.loads(text)
                    if frame[3] == "api" and frame[4]["request_id"] == "m1":
                        raw[n] = text
            by_topic: dict[str, set[str]] = {}
            for n, text in raw.items():
                by_topic.setdefault(topics[n], set()).add(text)
            assert {t: len(frames) for t, frames in by_topic.items()} == {
                "api:lobby": 1, "api:room": 1}
            frame = json.loads(raw[1])
            assert frame[:4] == [None, None, "api:room", "api"]
            assert frame[4]["result"]["message"] == {"text": "same"}
        finally:
            for ws in sockets:
                await ws.close()
    await gateway.aclose()


async def test_coalesced_writes_keep_each_members_order() -> None:
    """Many messages fanned out in one loop turn are written together per connection:
    every member still gets all of them, in offset order, interleaved rightly with its
    own call answers."""
    gateway = Gateway(authenticator=InsecureDemoAuthenticator())
    add_relay(gateway)
    async with running_app(gateway) as url:
        # the sender leaves its answers unread: do not wait 10 s for its closing handshake
        sockets = [await websockets.connect(ws_url(url, f"vsn=2.0.0&user_id=u{n}"),
                                            close_timeout=0.1)
                   for n in range(4)]
        try:
            clients = [RawClient(ws) for ws in sockets]
            for n, client in enumerate(clients):
                await client.join()
                await client.call({"request_id": f"j{n}", "service": "relay",
                                   "request_type": "create_group" if n == 0 else "join_group",
                                   "args": {"group_id": "g"}})
            frames = [json.dumps([clients[0].join_ref, f"s{k}", "api:lobby", "api",
                                  {"request_id": f"m{k}", "service": "relay",
                                   "request_type": "send_message",
                                   "args": {"group_id": "g", "message": k}}])
                      for k in range(30)]
            await sockets[0].send(frames[0])
            for frame in frames[1:]:  # sent back to back: many arrive in one read
                await sockets[0].send(frame)
            for client in clients[1:]:
                got: list[int] = []
                while len(got) < 30:
                    frame = await client.recv(10)
                    payload = frame[4]
                    if frame[3] == "api" and payload["request_id"].startswith("m"):
                        got.append(payload["result"]["message"])
                assert got == list(range(30))
        finally:
            for ws in sockets:
                await ws.close()
    await gateway.aclose()
