"""Load test of the local call path over the Phoenix socket, next to a bare echo floor.

    python bench/gateway.py [--connections 50] [--duration 10] [--warmup 2]

Starts, each in its own process: a bare ``websockets`` echo server (the floor: what a
WebSocket server in Python does when it does nothing), then a genapi gateway (uvicorn)
serving an ``echo(n: int)`` function through the whole pipeline. This process is the load
generator (``wsload.py``: lean hand-rolled framing, so it costs less than the servers): N
connections, each joined to ``api:lobby`` and running closed-loop calls (send, wait for the
answer, repeat). Prints calls/s, p50 and p99 for both, and the ratio.

For the gateway a call is done when both its ``api`` push (the Response) and its
``phx_reply`` arrived; for the floor when the echo of the frame arrived.
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
from collections.abc import Iterator

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wsload
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

GATEWAY_APP = """
import genapi

bench = genapi.Service("bench")

@bench.function()
async def echo(n: int) -> int:
    return n

gateway = genapi.Gateway([bench])
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def server(argv: list[str], port: int, env: dict[str, str] | None = None) -> Iterator[None]:
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read() if proc.stderr else b''!r}")
        time.sleep(0.05)
    try:
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def call_frame(index: int, seq: int) -> bytes:
    return (
        b'["1","%d","api:lobby","api",{"request_id":"%d-%d","service":"bench",'
        b'"request_type":"echo","args":{"n":%d}}]' % (seq, index, seq, seq)
    )


JOIN = b'["1","1","api:lobby","phx_join",{}]'


def run_load(url: str, args: argparse.Namespace, phoenix: bool) -> LoadResult:
    runner = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        runner = uvloop.run
    return runner(wsload.run(
        url, call_frame, connections=args.connections, duration=args.duration,
        warmup=args.warmup, frames_per_call=2 if phoenix else 1,
        prelude=[JOIN] if phoenix else [],
    ))


def report(name: str, result: LoadResult) -> None:
    print(f"{name:<32} {result.rate:>10,.0f} calls/s   p50 {result.percentile(0.5):6.2f} ms"
          f"   p99 {result.percentile(0.99):6.2f} ms")


def combine(results: list[LoadResult]) -> LoadResult:
    return LoadResult(sum(r.calls for r in results), sum(r.seconds for r in results),
                      [ms for r in results for ms in r.latencies_ms])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--duration", type=float, default=4.0,
                        help="seconds measured per window")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=5,
                        help="alternating floor/gateway windows (the VM is noisy)")
    args = parser.parse_args()
    print(f"python {platform.python_version()}, {args.connections} connections, "
          f"{args.rounds} alternating windows of {args.duration:.0f} s each, "
          f"{os.cpu_count()} cores shared by all processes")
    floor_port, gateway_port = free_port(), free_port()
    floor_url = f"ws://127.0.0.1:{floor_port}"
    gateway_url = f"ws://127.0.0.1:{gateway_port}/socket/websocket?vsn=2.0.0"
    floors: list[LoadResult] = []
    gateways: list[LoadResult] = []
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "bench_app.py"), "w") as handle:
            handle.write(GATEWAY_APP)
        env = {**os.environ, "PYTHONPATH": tmp}
        argv = [sys.executable, "-m", "genapi", "serve", "bench_app:gateway", "--port",
                str(gateway_port), "--log-level", "warning"]
        with server([sys.executable, "-c", ECHO_SERVER, str(floor_port)], floor_port), \
                server(argv, gateway_port, env), StealMeter() as steal:
            for round_ in range(1, args.rounds + 1):
                floors.append(run_load(floor_url, args, phoenix=False))
                gateways.append(run_load(gateway_url, args, phoenix=True))
                print(f"  window {round_}: floor {floors[-1].rate:>9,.0f}   "
                      f"gateway {gateways[-1].rate:>9,.0f} calls/s")
    floor, gateway = combine(floors), combine(gateways)
    report("floor: websockets echo", floor)
    report("genapi: local call path", gateway)
    print(f"gateway / floor: {gateway.rate / floor.rate:.0%} "
          f"(p99 {gateway.percentile(0.99):.2f} ms vs {floor.percentile(0.99):.2f} ms)")
    print(steal.describe())


if __name__ == "__main__":
    main()
