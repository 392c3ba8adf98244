"""Relay fan-out: one sender, a group of N members, the time until the last one has it.

    python bench/relay.py [--members 100 1000] [--messages 300] [--window 1 16] [--skip-ws]
                          [--skip-nats]

Two setups per group size:

* **in-process** — a :class:`~genapi.relay.RelayHub` with fake endpoints: ``noop`` (the
  delivery does nothing) and ``encode`` (the delivery JSON-encodes a Phoenix push frame,
  what a gateway connection does per member). The in-process bus delivers inside
  ``send``, so the time of one ``send`` is the time to the last delivery (5 times --messages
  sends per run).
* **two gateways over NATS** — two hubs, each with its own NATS connection, sharing groups
  (key-value bucket) and messages (JetStream stream) on an embedded nats-server; half
  the members on each, the sender on the first. Delivery goes through the stream, so
  this is the cross-gateway path without the sockets (one message in flight at a time).
* **websocket** — a real gateway (``genapi serve`` in its own process) and N member
  connections from this process (hand-rolled framing, see ``wsload.py``), each joined to
  the group with ``join_group``; a sender connection pushes ``send_message``. A message is
  done when every member socket received its frame. ``--window`` messages are kept in
  flight (1: latency; more: throughput).

Prints deliveries/s and p50 / p95 of the time to the last delivery.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import platform
import struct
import sys
import tempfile
import time
from typing import Any

import msgspec

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gateway import free_port, process
from genapi import Response
from genapi.cluster.embedded import EmbeddedNats
from genapi.relay import Endpoint, GroupType, MemoryGroupStore, RelayHub, RelayLimits
from genapi.relay.groups import new_group
from genapi.relay.nats_bus import NatsRelayBus
from genapi.relay.nats_store import NatsGroupStore
from genapi.transport.nats.link import Link
from machine import StealMeter
from wsload import client_frame

BENCH_APP = """
import time
import genapi
from genapi.gateway.admission import AdmissionLimits
from genapi.relay import GroupType, MemoryGroupStore, RelayHub, RelayLimits, add_relay
from genapi.relay.groups import new_group

store = MemoryGroupStore()
store.seed(new_group("bench", GroupType.PUBLIC, creator=None, now=time.time(),
                     persistent=True))
gateway = genapi.Gateway(
    authenticator=genapi.InsecureDemoAuthenticator(),
    limits=genapi.ConnectionLimits(max_queue_messages=200_000, heartbeat_timeout=600),
    admission=AdmissionLimits(connects=None, joins=None),  # every member is on 127.0.0.1
)
add_relay(gateway, RelayHub(store=store, limits=RelayLimits(max_members=20_000)))
"""


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def report(label: str, members: int, latencies_ms: list[float], seconds: float) -> None:
    """One result line."""
    deliveries = members * len(latencies_ms)
    print(f"  {label:<28} {members:>5} members  {deliveries / seconds:>11,.0f} deliveries/s"
          f"   last delivery p50 {percentile(latencies_ms, 0.5):7.3f} ms"
          f"   p95 {percentile(latencies_ms, 0.95):7.3f} ms")


# -- in-process -------------------------------------------------------------------------

_frame = msgspec.json.Encoder()


async def in_process(members: int, messages: int, mode: str) -> tuple[list[float], float]:
    """Send ``messages`` to a group of ``members`` fake endpoints; per-send times."""
    store = MemoryGroupStore()
    store.seed(new_group("bench", GroupType.PUBLIC, creator=None, now=time.time(),
                         persistent=True))
    hub = RelayHub(store=store, limits=RelayLimits(max_members=members + 10))
    received = [0]
    frames: list[bytes] = []

    def noop(response: Response) -> None:
        received[0] += 1

    def encode(response: Response) -> None:
        # what a connection does for each member: one Phoenix v2 push frame
        frames.append(_frame.encode(["1", None, "api:lobby", "api", response]))
        if len(frames) > 10_000:
            frames.clear()
        received[0] += 1

    deliver = noop if mode == "noop" else encode
    for n in range(members):
        await hub.join("bench", f"u{n}", Endpoint(deliver, owner=object()))
    await hub.join("bench", "sender")
    received[0] = 0  # the presence notices of the joins
    latencies: list[float] = []
    started = time.perf_counter()
    for n in range(messages):
        t0 = time.perf_counter()
        await hub.send("bench", "sender", {"text": "hello", "n": n}, request_id=f"r{n}")
        latencies.append((time.perf_counter() - t0) * 1000)
    seconds = time.perf_counter() - started
    assert received[0] == members * messages, received
    await hub.aclose()
    return latencies, seconds


async def over_nats(url: str, members: int, messages: int) -> tuple[list[float], float]:
    """Members split over two NATS-connected hubs; per-message time to the last delivery."""
    links = [Link(url, name=f"bench-{n}") for n in range(2)]
    for link in links:
        await link.ready(timeout=10)
    prefix = f"bench{members}"
    limits = RelayLimits(max_members=members + 10)
    hubs = [RelayHub(store=NatsGroupStore(link, bucket=f"{prefix}_groups", storage="memory"),
                     bus=NatsRelayBus(link, prefix=prefix, storage="memory"), limits=limits)
            for link in links]
    await hubs[0].create("bench", GroupType.PUBLIC, None, persistent=True)
    received = [0]
    done = asyncio.Event()
    target = [0]

    def deliver(response: Response) -> None:
        received[0] += 1
        if received[0] >= target[0]:
            done.set()

    for n in range(members):
        await hubs[n % 2].join("bench", f"u{n}", Endpoint(deliver, owner=object()))
    await hubs[0].join("bench", "sender")
    for hub in hubs:
        await hub.bus.settle(timeout=60)
    received[0] = 0  # the presence notices of the joins
    latencies: list[float] = []
    started = time.perf_counter()
    for n in range(messages):
        target[0] = members * (n + 1)
        done.clear()
        t0 = time.perf_counter()
        await hubs[0].send("bench", "sender", {"text": "hello", "n": n}, request_id=f"r{n}")
        await asyncio.wait_for(done.wait(), 30)
        latencies.append((time.perf_counter() - t0) * 1000)
    seconds = time.perf_counter() - started
    for hub in hubs:
        await hub.aclose()
    for link in links:
        await link.close()
    return latencies, seconds


# -- over WebSockets --------------------------------------------------------------------


class Fanout:
    """Shared bookkeeping: when did every member get message k."""

    def __init__(self, members: int) -> None:
        self.members = members
        self.arrivals: dict[int, int] = {}
        self.sent_at: dict[int, float] = {}
        self.latencies: list[float] = []
        self.done: asyncio.Queue[int] = asyncio.Queue()
        self.counting = False

    def arrived(self, count: int) -> None:
        if not self.counting or count not in self.sent_at:
            return
        seen = self.arrivals.get(count, 0) + 1
        self.arrivals[count] = seen
        if seen == self.members:
            self.latencies.append((time.perf_counter() - self.sent_at[count]) * 1000)
            del self.arrivals[count]
            self.done.put_nowait(count)


class Member(asyncio.Protocol):
    """A member socket that only counts the frames it receives."""

    def __init__(self, host: str, path: str, fanout: Fanout, join: bytes,
                 join_group: bytes) -> None:
        key = base64.b64encode(os.urandom(16)).decode()
        self.request = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                        f"Sec-WebSocket-Version: 13\r\n\r\n").encode()
        self.fanout = fanout
        self.join = join
        self.join_group = join_group
        self.buffer = b""
        self.upgraded = False
        self.refused: str | None = None
        self.frames = 0  # every frame received
        self.count = 0  # frames since counting started: the messages
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = buffer
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                self.refused = buffer[:end].decode(errors="replace")
                self.transport.close()  # type: ignore[union-attr]
                return
            self.upgraded = True
            buffer = buffer[end + 4:]
            self.transport.write(client_frame(self.join))  # type: ignore[union-attr]
        pos, size = 0, len(buffer)
        while size - pos >= 2:
            length, head = buffer[pos + 1] & 0x7F, 2
            if length == 126:
                if size - pos < 4:
                    break
                length, head = struct.unpack_from("!H", buffer, pos + 2)[0], 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, head = struct.unpack_from("!Q", buffer, pos + 2)[0], 10
            if size - pos < head + length:
                break
            pos += head + length
            self.frames += 1
            if self.frames == 1:  # the join reply: now join the group
                self.transport.write(client_frame(self.join_group))  # type: ignore[union-attr]
            if self.fanout.counting:
                self.count += 1
                self.fanout.arrived(self.count)
        self.buffer = buffer[pos:]



def call(topic: str, request_id: str, request_type: str, **args: Any) -> bytes:
    """A Phoenix push of a relay call."""
    payload = {"request_id": request_id, "service": "relay", "request_type": request_type,
               "args": args}
    return json.dumps(["1", request_id, topic, "api", payload]).encode()


async def quiet(members: list[Member], seconds: float = 1.0) -> int:
    """Wait until no member received anything for ``seconds``; the frames seen."""
    last = -1
    while True:
        total = sum(m.frames for m in members)
        if total == last:
            return total
        last = total
        await asyncio.sleep(seconds)


async def over_websockets(port: int, members: int, messages: int,
                          window: int) -> tuple[list[float], float]:
    """Members and a sender on a real gateway; time until every member has each message."""
    import websockets

    loop = asyncio.get_running_loop()
    fanout = Fanout(members)
    topic = "api:bench"
    join = json.dumps(["1", "1", topic, "phx_join", {}]).encode()
    conns: list[Member] = []
    async with websockets.connect(
        f"ws://127.0.0.1:{port}/socket/websocket?vsn=2.0.0&user_id=sender", max_queue=None,
    ) as sender:
        # text frames: binary ones are another protocol
        await sender.send(join.decode())
        await sender.send(call(topic, "s-join", "join_group", group_id="bench").decode())
        reader = asyncio.create_task(_drain(sender))
        for n in range(members):
            path = f"/socket/websocket?vsn=2.0.0&user_id=m{n}"
            _, conn = await loop.create_connection(
                lambda path=path, n=n: Member(f"127.0.0.1:{port}", path, fanout, join,
                                              call(topic, f"j{n}", "join_group",
                                                   group_id="bench")),
                "127.0.0.1", port)
            conns.append(conn)
        setup_frames = await quiet(conns)
        refused = [c.refused for c in conns if c.refused]
        if refused:
            raise SystemExit(f"{len(refused)} members were refused: {refused[0]}")
        print(f"    ({members} joined; {setup_frames:,} setup frames incl. presence notices)")
        fanout.counting = True
        started = time.perf_counter()
        next_message = 1
        in_flight = 0
        while next_message <= messages or in_flight:
            while in_flight < window and next_message <= messages:
                fanout.sent_at[next_message] = time.perf_counter()
                await sender.send(call(topic, f"m{next_message}", "send_message",
                                       group_id="bench", message={"text": "hello"}).decode())
                next_message += 1
                in_flight += 1
            await asyncio.wait_for(fanout.done.get(), timeout=30)
            in_flight -= 1
        seconds = time.perf_counter() - started
        fanout.counting = False  # the sender's leave notice is not a message
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
    for conn in conns:
        if conn.transport is not None:
            conn.transport.close()
    await asyncio.sleep(0.5)  # let the gateway clean the memberships up
    return fanout.latencies, seconds


async def _drain(ws: Any) -> None:
    async for _ in ws:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--window", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--skip-ws", action="store_true", help="no runs over WebSockets")
    parser.add_argument("--skip-nats", action="store_true", help="no runs over NATS")
    args = parser.parse_args()
    print(f"python {platform.python_version()}, {os.cpu_count()} cores shared by every "
          f"process (load generator included), {args.messages} messages per run")
    runner = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        runner = uvloop.run
    with StealMeter() as steal:
        print("in-process hub, fake endpoints (time of send = time to the last delivery):")
        for members in args.members:
            for mode in ("noop", "encode"):
                latencies, seconds = runner(in_process(members, args.messages * 5, mode))
                report(f"in-process, deliver={mode}", members, latencies, seconds)
        if not args.skip_nats:
            print("two gateways (hubs) sharing an embedded nats-server, no sockets:")
            with EmbeddedNats() as nats:
                for members in args.members:
                    latencies, seconds = runner(over_nats(nats.url, members, args.messages))
                    report("two gateways over NATS", members, latencies, seconds)
        if not args.skip_ws:
            print("gateway over WebSockets (genapi serve in its own process):")
            port = free_port()
            with tempfile.TemporaryDirectory() as tmp:
                with open(os.path.join(tmp, "relay_bench_app.py"), "w") as handle:
                    handle.write(BENCH_APP)
                env = {**os.environ, "PYTHONPATH": tmp}
                serve = [sys.executable, "-m", "genapi", "serve", "relay_bench_app:gateway",
                         "--port", str(port), "--log-level", "warning"]
                with process(serve, env, port):
                    for members in args.members:
                        for window in args.window:
                            latencies, seconds = runner(
                                over_websockets(port, members, args.messages, window))
                            report(f"websocket, window={window}", members, latencies,
                                   seconds)
    print(steal.describe())


if __name__ == "__main__":
    main()
