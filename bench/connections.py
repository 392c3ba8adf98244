"""Memory per idle joined connection: RSS of a gateway process before and after N clients.

A minimal gateway (one function, anonymous access, the admission rate limits off so one
load process may open every connection) is served as its own process, once with
``genapi serve`` (genapi's WebSocket driver) and once with plain ``uvicorn`` (its default
WebSocket protocol; ``--ws-max-size`` at the gateway's limit). A load process opens N
WebSockets, each joins ``api:lobby`` and gets its ``phx_reply``, then all idle. The
server's RSS (``/proc/<pid>/status``) is read after a warm-up connection and again once
every connection joined and idled; the difference over N is the figure.

The client is hand-rolled on ``asyncio.Protocol`` with raw frames (no WebSocket library):
10,000 of them fit in one process. RLIMIT_NOFILE is raised to its hard limit here, and
the server processes inherit it.

    PYTHONPATH=src:. .venv/bin/python bench/connections.py --connections 10000
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JOIN = b'["1","1","api:lobby","phx_join",{}]'
HANDSHAKE = ("GET /socket/websocket?vsn=2.0.0 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
             "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
             "Sec-WebSocket-Version: 13\r\n\r\n")


def build_gateway() -> object:
    """The gateway both drivers serve (``bench.connections:gateway``)."""
    import genapi
    from genapi.gateway import AdmissionLimits

    svc = genapi.Service("svc")

    @svc.function()
    async def echo(n: int) -> int:
        return n

    return genapi.Gateway(
        [svc],
        settings=genapi.GatewaySettings(
            allow_anonymous=True,
            # One address opens every connection here: the per-address rates are off.
            admission=AdmissionLimits(connects=None, joins=None),
            # Idle for minutes without heartbeats: only memory is measured.
            limits=genapi.ConnectionLimits(heartbeat_timeout=3600.0),
        ),
    )


def client_frame(payload: bytes) -> bytes:
    """A masked text frame with a zero key (the payload unchanged by masking)."""
    assert len(payload) < 126
    return bytes([0x81, 0x80 | len(payload)]) + b"\x00\x00\x00\x00" + payload


class Client(asyncio.Protocol):
    """One WebSocket: handshake, join, then wait for the ``phx_reply`` and idle."""

    def __init__(self, port: int, joined: asyncio.Future[None]) -> None:
        self.port = port
        self.joined = joined
        self.buffer = b""
        self.upgraded = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(HANDSHAKE.format(port=self.port, key=key).encode())

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded:
            head, sep, rest = self.buffer.partition(b"\r\n\r\n")
            if not sep:
                return
            if not head.startswith(b"HTTP/1.1 101"):
                self._fail(f"handshake refused: {head[:80]!r}")
                return
            self.upgraded = True
            self.buffer = rest
            assert self.transport is not None
            self.transport.write(client_frame(JOIN))
        if b"phx_reply" in self.buffer and not self.joined.done():
            if b'"ok"' in self.buffer:
                self.joined.set_result(None)
            else:
                self._fail(f"join refused: {self.buffer[:200]!r}")
            self.buffer = b""  # idle from here: keep nothing

    def _fail(self, why: str) -> None:
        if not self.joined.done():
            self.joined.set_exception(RuntimeError(why))

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(f"connection lost: {exc}")


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def server(driver: str, port: int) -> Iterator[subprocess.Popen[bytes]]:
    # PYTHONPATH first: PYTHONPATH=/other/checkout/src measures another version's gateway.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [os.environ.get("PYTHONPATH", ""), str(ROOT / "src"), str(ROOT)])}
    target = "bench.connections:gateway"
    if driver == "genapi serve":
        argv = [sys.executable, "-m", "genapi", "serve", target, "--port", str(port),
                "--log-level", "warning"]
    else:
        argv = [sys.executable, "-m", "uvicorn", target, "--port", str(port),
                "--log-level", "warning", "--ws-max-size", str(2 * 1024 * 1024)]
    proc = subprocess.Popen(argv, env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{driver} did not start")
            time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def open_joined(port: int, count: int, concurrency: int) -> list[asyncio.Transport]:
    """``count`` joined connections, opened ``concurrency`` at a time."""
    loop = asyncio.get_running_loop()
    transports: list[asyncio.Transport] = []
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            joined: asyncio.Future[None] = loop.create_future()
            transport, _ = await loop.create_connection(lambda: Client(port, joined),
                                                        "127.0.0.1", port)
            transports.append(transport)
            await asyncio.wait_for(joined, 60)

    await asyncio.gather(*(one() for _ in range(count)))
    return transports


async def measure(driver: str, count: int, idle: float, concurrency: int) -> tuple[int, int]:
    """(RSS before, RSS after) in KB for ``count`` idle joined connections."""
    port = free_port()
    with server(driver, port) as proc:
        # Warm up (imports, first-use caches, the event loop's structures), then settle.
        warm = await open_joined(port, min(200, count), concurrency)
        for transport in warm:
            transport.close()
        await asyncio.sleep(2.0)
        before = rss_kb(proc.pid)
        started = time.perf_counter()
        transports = await open_joined(port, count, concurrency)
        opened = time.perf_counter() - started
        await asyncio.sleep(idle)
        after = rss_kb(proc.pid)
        print(f"  {driver}: {count} joined in {opened:.1f} s", flush=True)
        for transport in transports:
            transport.abort()
    return before, after


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--idle", type=float, default=5.0, help="seconds idle before reading")
    parser.add_argument("--concurrency", type=int, default=100,
                        help="connections being opened at once")
    parser.add_argument("--drivers", default="genapi serve,uvicorn",
                        help="comma-separated: 'genapi serve', 'uvicorn'")
    args = parser.parse_args()
    limit = raise_nofile()
    if limit < args.connections + 100:
        sys.exit(f"RLIMIT_NOFILE hard limit {limit} is below {args.connections} connections")
    print(f"{args.connections} idle joined connections (api:lobby), idle {args.idle:g} s")
    rows = []
    for driver in args.drivers.split(","):
        before, after = asyncio.run(measure(driver.strip(), args.connections, args.idle,
                                            args.concurrency))
        rows.append((driver, before, after))
    print(f"\n{'driver':<14}{'RSS before':>12}{'RSS after':>12}{'KB/connection':>15}")
    for driver, before, after in rows:
        per = (after - before) / args.connections
        print(f"{driver:<14}{before / 1024:>9.1f} MB{after / 1024:>9.1f} MB{per:>15.1f}")


if __name__ == "__main__":
    main()
else:
    gateway = build_gateway()
