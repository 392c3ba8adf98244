"""Relay fan-out: one sender, a group of N members, the time until the last one has it.

    python bench/relay.py [--members 200 1000] [--messages 300] [--window 1 16] [--repeat 3]
                          [--genapi-src PATH] [--skip-socketio] [--skip-ws] [--skip-nats]
                          [--skip-in-process]

Three setups per group size:

* **in-process** — a :class:`~genapi.relay.RelayHub` with fake endpoints: ``noop`` (the
  delivery does nothing) and ``encode`` (the delivery JSON-encodes a Phoenix push frame
  per member, what a gateway connection did before encode-once). The in-process bus
  delivers inside ``send``, so the time of one ``send`` is the time to the last delivery.
* **two gateways over NATS** — two hubs, each with its own NATS connection, sharing groups
  (key-value bucket) and messages (JetStream stream) on an embedded nats-server; half
  the members on each, the sender on the first. No sockets.
* **websocket, genapi vs python-socketio** — a real gateway (``genapi serve`` in its own
  process) and python-socketio's room emit (``AsyncServer`` on aiohttp with uvloop — its
  faster server here; ``--socketio-server uvicorn`` for ASGI — in its own virtualenv, see
  ``peers.py``), driven by one load generator: N member sockets
  from this process (hand-rolled framing, uvloop), each joined to the group (``join_group``
  / a ``join`` event with ack that enters the room), and a sender whose messages are
  answered (genapi: the call's answer; socket.io: an ack) and emitted to the others with
  the same fields. A message is done when every member socket received it. ``--window``
  messages are kept in flight (1: latency; more: throughput). Each figure is the median of
  ``--repeat`` runs; "lost" counts deliveries that never came; "setup" is the time from
  the first member's connect to the last frame of the joins (presence notices included).
  ``--genapi-src`` serves another checkout's genapi (the "before" figures).

Prints deliveries/s and p50 / p95 of the time to the last delivery, and the ratio.
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
import genapi
from gateway import free_port, process
from genapi import Response
from genapi.cluster.embedded import EmbeddedNats
from genapi.relay import Endpoint, GroupType, MemoryGroupStore, RelayHub, RelayLimits
from genapi.relay.groups import new_group
from genapi.relay.nats_bus import NatsRelayBus
from genapi.relay.nats_store import NatsGroupStore
from genapi.transport.nats.link import Link
from machine import StealMeter
from peers import peer_python
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
    settings=genapi.GatewaySettings(
        limits=genapi.ConnectionLimits(max_queue_messages=200_000, heartbeat_timeout=600),
        admission=AdmissionLimits(connects=None, joins=None),  # every member is on 127.0.0.1
    ),
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

    class Encode:
        """What a connection's sink does: one Phoenix v2 frame per member, or (where the
        hub shares a batch's frames, see genapi.relay.endpoints) one per fan-out."""

        def __call__(self, response: Response) -> None:
            frames.append(_frame.encode(["1", None, "api:lobby", "api", response]))
            if len(frames) > 10_000:
                frames.clear()
            received[0] += 1

        def deliver_shared(self, response: Response, shared: dict[Any, Any]) -> None:
            frame = shared.get("api:lobby")
            if frame is None:
                frame = shared["api:lobby"] = _frame.encode(
                    [None, None, "api:lobby", "api", response])
            frames.append(frame)
            if len(frames) > 10_000:
                frames.clear()
            received[0] += 1

    deliver = noop if mode == "noop" else Encode()
    for n in range(members):
        await hub.join("bench", f"u{n}", Endpoint(deliver, owner=object()))
    await hub.join("bench", "sender")
    flush = getattr(hub, "flush_presence", None)  # absent before presence diffs
    if flush is not None:
        flush()
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


# -- over WebSockets: genapi and python-socketio, one load generator ------------------------

SOCKETIO_APP = """
import datetime, itertools, sys
import socketio

SERVER = sys.argv[2] if len(sys.argv) > 2 else "uvicorn"
sio = socketio.AsyncServer(async_mode="asgi" if SERVER == "uvicorn" else "aiohttp",
                           cors_allowed_origins="*")
offsets = itertools.count(1)


@sio.event
async def join(sid, room):
    await sio.enter_room(sid, room)
    return {"ok": True}


@sio.event
async def send(sid, data):
    # the same fields genapi delivers: a like-for-like payload
    message = {"group_id": "bench", "from_user_id": sid, "message": data,
               "timestamp": datetime.datetime.now(datetime.UTC).isoformat(),
               "offset": next(offsets)}
    await sio.emit("msg", message, room="bench", skip_sid=sid)
    return {"status": "relayed", "offset": message["offset"]}


if SERVER == "uvicorn":
    import uvicorn

    uvicorn.run(socketio.ASGIApp(sio), host="127.0.0.1", port=int(sys.argv[1]),
                loop="uvloop", log_level="warning")
else:
    import asyncio, uvloop
    from aiohttp import web

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    app = web.Application()
    sio.attach(app)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"""
SOCKETIO_PACKAGES = ["python-socketio==5.18.1", "uvicorn[standard]", "uvloop", "aiohttp"]


class Wire:
    """What differs between the two servers for the same load generator: the socket path,
    the frames a member sends to join, how the join is acknowledged and what marks a
    delivered message."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        if kind == "genapi":
            self.path = "/socket/websocket?vsn=2.0.0&user_id={user}"
            self.marker = b'"from_user_id"'  # only relay messages carry it
        else:
            self.path = "/socket.io/?EIO=4&transport=websocket"
            self.marker = b'42["msg"'

    def first(self, n: int) -> bytes:
        """Sent as soon as the socket is open."""
        if self.kind == "genapi":
            return json.dumps(["1", "1", "api:bench", "phx_join", {}]).encode()
        return b"40"  # socket.io: connect to the default namespace

    def after_first_reply(self, n: int) -> bytes:
        """Sent after the first frame back (the join reply / the engine.io open packet)."""
        if self.kind == "genapi":
            return call("api:bench", f"j{n}", "join_group", group_id="bench")
        return b'420["join","bench"]'

    def joined(self, frames: int) -> bool:
        """Joined the group after ``frames`` frames: genapi sends the phx_join reply, then
        the call's api push and phx_reply; socket.io the open packet, the namespace
        connect and the join's ack."""
        return frames >= 3


class Fanout:
    """Shared bookkeeping: when did every member get message k."""

    def __init__(self, members: int) -> None:
        self.members = members
        self.arrivals: dict[int, int] = {}
        self.sent_at: dict[int, float] = {}
        self.latencies: list[float] = []
        self.done: asyncio.Queue[int] = asyncio.Queue()
        self.counting = False
        self.joined = 0
        self.all_joined = asyncio.Event()
        self.last_frame = 0.0

    def arrived(self, count: int) -> None:
        if count not in self.sent_at:
            return
        seen = self.arrivals.get(count, 0) + 1
        self.arrivals[count] = seen
        if seen == self.members:
            self.latencies.append((time.perf_counter() - self.sent_at[count]) * 1000)
            del self.arrivals[count]
            self.done.put_nowait(count)


class Member(asyncio.Protocol):
    """A member socket that counts the frames it receives (parsing only headers, and a
    marker search for relayed messages)."""

    def __init__(self, host: str, n: int, wire: Wire, fanout: Fanout) -> None:
        key = base64.b64encode(os.urandom(16)).decode()
        path = wire.path.format(user=f"m{n}")
        self.request = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                        f"Sec-WebSocket-Version: 13\r\n\r\n").encode()
        self.n = n
        self.wire = wire
        self.fanout = fanout
        self.buffer = b""
        self.upgraded = False
        self.refused: str | None = None
        self.frames = 0  # every frame received
        self.count = 0  # messages received while counting
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data
        transport = self.transport
        assert transport is not None
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = buffer
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                self.refused = buffer[:end].decode(errors="replace")
                transport.close()
                return
            self.upgraded = True
            buffer = buffer[end + 4:]
            if self.wire.kind == "genapi":
                transport.write(client_frame(self.wire.first(self.n)))
        fanout = self.fanout
        marker = self.wire.marker
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
            start, pos = pos + head, pos + head + length
            self.frames += 1
            fanout.last_frame = time.perf_counter()
            if self.frames <= 3:
                self._setup(buffer[start:pos])
            elif length == 1 and buffer[start] == 0x32:  # engine.io ping "2": answer "3"
                transport.write(client_frame(b"3"))
            elif fanout.counting and buffer.find(marker, start, pos) >= 0:
                self.count += 1
                fanout.arrived(self.count)
        self.buffer = buffer[pos:]

    def _setup(self, payload: bytes) -> None:
        transport = self.transport
        assert transport is not None
        wire = self.wire
        if self.frames == 1:
            if wire.kind == "socketio":  # the engine.io open packet: connect
                transport.write(client_frame(wire.first(self.n)))
            else:  # the phx_join reply: join the group
                transport.write(client_frame(wire.after_first_reply(self.n)))
        elif self.frames == 2 and wire.kind == "socketio":  # namespace connected: join
            transport.write(client_frame(wire.after_first_reply(self.n)))
        if wire.joined(self.frames):
            self.fanout.joined += 1
            if self.fanout.joined == self.fanout.members:
                self.fanout.all_joined.set()


def call(topic: str, request_id: str, request_type: str, **args: Any) -> bytes:
    """A Phoenix push of a relay call."""
    payload = {"request_id": request_id, "service": "relay", "request_type": request_type,
               "args": args}
    return json.dumps(["1", request_id, topic, "api", payload]).encode()


async def quiet(fanout: Fanout, seconds: float = 1.0) -> float:
    """Wait until no member received anything for ``seconds``; when the last frame came."""
    while True:
        last = fanout.last_frame
        await asyncio.sleep(seconds)
        if fanout.last_frame == last:
            return last


class Sender:
    """The sending member, over the ``websockets`` library (its answers are drained)."""

    def __init__(self, port: int, wire: Wire) -> None:
        self.port = port
        self.wire = wire
        self.n = 0

    async def __aenter__(self) -> Sender:
        import websockets

        if self.wire.kind == "genapi":
            url = f"ws://127.0.0.1:{self.port}/socket/websocket?vsn=2.0.0&user_id=sender"
        else:
            url = f"ws://127.0.0.1:{self.port}/socket.io/?EIO=4&transport=websocket"
        self.ws = await websockets.connect(url, max_queue=None)
        if self.wire.kind == "genapi":
            # text frames: binary ones are another protocol
            await self.ws.send(self.wire.first(0).decode())
            await self.ws.send(call("api:bench", "s-join", "join_group",
                                    group_id="bench").decode())
        else:
            await self.ws.recv()  # the open packet
            await self.ws.send("40")
            await self.ws.recv()
            await self.ws.send('420["join","bench"]')
        self.reader = asyncio.create_task(self._drain())
        return self

    async def _drain(self) -> None:
        async for frame in self.ws:
            if frame == "2":  # engine.io ping
                await self.ws.send("3")

    async def send(self) -> None:
        self.n += 1
        if self.wire.kind == "genapi":
            await self.ws.send(call("api:bench", f"m{self.n}", "send_message", group_id="bench",
                                    message={"text": "hello"}).decode())
        else:
            await self.ws.send(f'42{self.n}["send",{{"text":"hello"}}]')

    async def __aexit__(self, *exc: object) -> None:
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader
        await self.ws.close()


class Run:
    """One measurement: deliveries/s, the last-delivery latencies, what was lost."""

    def __init__(self, members: int, latencies: list[float], seconds: float, lost: int,
                 setup: float, setup_frames: int) -> None:
        self.members = members
        self.latencies = latencies
        self.seconds = seconds
        self.lost = lost
        self.setup = setup
        self.setup_frames = setup_frames

    @property
    def rate(self) -> float:
        return (self.members * len(self.latencies)) / self.seconds if self.seconds else 0.0

    @property
    def p95(self) -> float:
        return percentile(self.latencies, 0.95)


async def over_websockets(port: int, kind: str, members: int, messages: int,
                          window: int) -> Run:
    """Members and a sender on a real server; time until every member has each message."""
    loop = asyncio.get_running_loop()
    wire = Wire(kind)
    fanout = Fanout(members)
    conns: list[Member] = []
    async with Sender(port, wire) as sender:
        await asyncio.sleep(0.2)  # the sender is a member before the others come
        fanout.last_frame = started = time.perf_counter()
        for n in range(members):
            _, conn = await loop.create_connection(
                lambda n=n: Member(f"127.0.0.1:{port}", n, wire, fanout), "127.0.0.1", port)
            conns.append(conn)
        await asyncio.wait_for(fanout.all_joined.wait(), 120)
        # setup is over when the last presence notice has arrived
        setup = await quiet(fanout) - started
        setup_frames = sum(c.frames for c in conns)
        refused = [c.refused for c in conns if c.refused]
        if refused:
            raise SystemExit(f"{len(refused)} members were refused: {refused[0]}")
        fanout.counting = True
        started = time.perf_counter()
        next_message = 1
        in_flight = 0
        lost = 0
        while next_message <= messages or in_flight:
            while in_flight < window and next_message <= messages:
                fanout.sent_at[next_message] = time.perf_counter()
                await sender.send()
                next_message += 1
                in_flight += 1
            try:
                await asyncio.wait_for(fanout.done.get(), timeout=10)
            except TimeoutError:  # something is lost: count it, stop
                break
            in_flight -= 1
        seconds = time.perf_counter() - started
        lost = members * (next_message - 1) - sum(c.count for c in conns)
        fanout.counting = False
    for conn in conns:
        if conn.transport is not None:
            conn.transport.close()
    await asyncio.sleep(1.0)  # let the server clean the memberships up
    return Run(members, fanout.latencies, seconds, lost, setup, setup_frames)


def median_run(runs: list[Run]) -> Run:
    """The run with the median deliveries/s."""
    return sorted(runs, key=lambda r: r.rate)[len(runs) // 2]


def servers(kind: str, port: int, tmp: str, src: str | None,
            socketio_server: str = "aiohttp") -> contextlib.AbstractContextManager[None]:
    """The server process of ``kind`` on ``port``."""
    if kind == "genapi":
        with open(os.path.join(tmp, "relay_bench_app.py"), "w") as handle:
            handle.write(BENCH_APP)
        # genapi from ``src`` (another checkout: the "before" figures) or this one
        here = src or os.path.dirname(os.path.dirname(os.path.abspath(genapi.__file__)))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join((tmp, here))}
        return process([sys.executable, "-m", "genapi", "serve", "relay_bench_app:gateway",
                        "--port", str(port), "--log-level", "warning"], env, port)
    python = peer_python("socketio", SOCKETIO_PACKAGES, "aiohttp")
    with open(os.path.join(tmp, "socketio_app.py"), "w") as handle:
        handle.write(SOCKETIO_APP)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return process([python, os.path.join(tmp, "socketio_app.py"), str(port), socketio_server],
                   env, port)


def compare(args: argparse.Namespace, runner: Any) -> None:
    """genapi against python-socketio room emit, same members, same load generator."""
    kinds = ["genapi"] + ([] if args.skip_socketio else ["socketio"])
    results: dict[tuple[str, int, int], Run] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            port = free_port()
            with servers(kind, port, tmp, args.genapi_src, args.socketio_server):
                for members in args.members:
                    for window in args.window:
                        runs = [runner(over_websockets(port, kind, members, args.messages,
                                                       window))
                                for _ in range(args.repeat)]
                        for n, run in enumerate(runs, 1):
                            print(f"    {kind:<8} {members:>5} members window {window:>2} "
                                  f"run {n}: {run.rate:>9,.0f} deliveries/s  p95 "
                                  f"{run.p95:7.2f} ms  lost {run.lost}  setup {run.setup:6.2f} s"
                                  f" ({run.setup_frames:,} frames)", flush=True)
                        results[kind, members, window] = median_run(runs)
    print(f"median of {args.repeat} runs, {args.messages} messages each:")
    print(f"  {'members':>7} {'window':>6} | {'genapi deliveries/s':>19} {'p95 ms':>7} "
          f"{'lost':>4} {'setup s':>7} | {'socketio deliveries/s':>21} {'p95 ms':>7} "
          f"{'lost':>4} {'setup s':>7} | ratio")
    for members in args.members:
        for window in args.window:
            ours = results["genapi", members, window]
            line = (f"  {members:>7} {window:>6} | {ours.rate:>19,.0f} {ours.p95:>7.2f} "
                    f"{ours.lost:>4} {ours.setup:>7.2f}")
            peer = results.get(("socketio", members, window))
            if peer is not None:
                line += (f" | {peer.rate:>21,.0f} {peer.p95:>7.2f} {peer.lost:>4} "
                         f"{peer.setup:>7.2f} | {ours.rate / peer.rate:.2f}x")
            print(line)
    lost = sum(r.lost for r in results.values())
    print(f"lost: {lost}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--window", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--genapi-src", default=None,
                        help="serve genapi from this src folder (to measure another checkout)")
    parser.add_argument("--skip-ws", action="store_true", help="no runs over WebSockets")
    parser.add_argument("--skip-socketio", action="store_true", help="genapi only")
    parser.add_argument("--socketio-server", choices=("aiohttp", "uvicorn"), default="aiohttp",
                        help="what serves python-socketio (both on uvloop)")
    parser.add_argument("--skip-nats", action="store_true", help="no runs over NATS")
    parser.add_argument("--skip-in-process", action="store_true", help="no in-process runs")
    args = parser.parse_args()
    print(f"python {platform.python_version()}, {os.cpu_count()} cores shared by every "
          f"process (load generator included), {args.messages} messages per run; "
          f"load average {os.getloadavg()[0]:.2f}")
    runner = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        runner = uvloop.run
    with StealMeter() as steal:
        if not args.skip_in_process:
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
            print(f"over WebSockets: genapi serve vs python-socketio room emit "
                  f"({args.socketio_server}, uvloop), each in its own process; one load "
                  f"generator (uvloop):")
            compare(args, runner)
    print(steal.describe(), f"load average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
