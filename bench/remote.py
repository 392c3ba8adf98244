"""The remote call path against Crossbar, in the same run, with the same load generator.

    python bench/remote.py [--connections 50] [--duration 4] [--rounds 5] [--workers 1]
                           [--baseline SRC]

Two systems, each in its own processes, measured in alternating windows so that a noisy
machine affects them alike:

* **genapi** — ``genapi serve`` (the gateway) and ``genapi node`` (a service-node process
  serving ``echo(n: int)``) over an embedded nats-server: client → gateway → NATS → node
  → back. ``--workers N`` serves the gateway with N worker processes.
* **Crossbar** — a Crossbar router and an autobahn (asyncio) callee process registering
  ``bench.echo``: client → router → callee → back, WAMP over WebSocket with JSON, the same
  shape of path (a router in the middle, the function in another process). Crossbar and
  autobahn run from their own virtualenv (``.cache/crossbar-venv``, made on first use):
  their pins clash with genapi's.

``--baseline SRC`` adds a third system: the same genapi setup run from another source tree
(e.g. a ``git worktree`` of an earlier commit: ``SRC`` is its ``src`` directory), for
before/after figures measured in one sitting.

This process is the load generator (``wsload.py``): N connections, closed loop, one call
in flight per connection. A genapi call is done when its ``api`` push and its
``phx_reply`` arrived; a WAMP call when its RESULT arrived. Prints calls/s, p50 and p99
of each and the ratios the performance goal is stated in (genapi at least 3 times
Crossbar's calls/s, p50 at most a third of Crossbar's).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wsload
from gateway import (
    BENCH_APP,
    JOIN,
    call_frame,
    check_call,
    combine,
    free_port,
    load_arguments,
    process,
    report,
)
from genapi.cluster.embedded import EmbeddedNats
from machine import StealMeter
from peers import peer_python
from wsload import LoadResult

CROSSBAR_PACKAGES = ["crossbar"]

CALLEE = """
import asyncio, sys
from autobahn.asyncio.wamp import ApplicationRunner, ApplicationSession

class Callee(ApplicationSession):
    async def onJoin(self, details):
        def echo(n):
            return n
        await self.register(echo, "bench.echo")
        print("ready", flush=True)

ApplicationRunner(sys.argv[1], "realm1").run(Callee)
"""


def crossbar_config(port: int) -> dict[str, object]:
    """A router with one realm open to anonymous callers, WebSocket + JSON only."""
    allow = {"call": True, "register": True, "publish": True, "subscribe": True}
    return {
        "version": 2,
        "controller": {},
        "workers": [{
            "type": "router",
            "realms": [{"name": "realm1", "roles": [{
                "name": "anonymous",
                "permissions": [{"uri": "", "match": "prefix", "allow": allow,
                                 "disclose": {"caller": False, "publisher": False},
                                 "cache": True}],
            }]}],
            "transports": [{
                "type": "websocket",
                "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": port},
                "serializers": ["json"],
                "options": {"compression": {}},
            }],
        }],
    }


HELLO = b'[1,"realm1",{"roles":{"caller":{}}}]'


def wamp_call(index: int, seq: int) -> bytes:
    """A WAMP CALL of ``bench.echo`` with the sequence number as its argument."""
    return b'[48,%d,{},"bench.echo",[%d]]' % (seq, seq)


def run_load(url: str, args: argparse.Namespace, wamp: bool) -> LoadResult:
    runner = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        runner = uvloop.run
    if wamp:
        return runner(wsload.run(url, wamp_call, connections=args.connections,
                                 duration=args.duration, warmup=args.warmup,
                                 frames_per_call=1, prelude=[HELLO],
                                 subprotocol="wamp.2.json"))
    return runner(wsload.run(url, call_frame("bench_remote", "echo_remote"),
                             connections=args.connections, duration=args.duration,
                             warmup=args.warmup, frames_per_call=2, prelude=[JOIN]))


def start_genapi(stack: contextlib.ExitStack, pythonpath: str, port: int, workers: int) -> None:
    """nats-server, a node and a gateway on ``port``, genapi imported via ``pythonpath``."""
    env = {**os.environ, "PYTHONPATH": pythonpath}
    nats = stack.enter_context(EmbeddedNats(jetstream=False))
    stack.enter_context(process([sys.executable, "-m", "genapi", "node", "bench_app:remote",
                                 "--nats", nats.url, "--name", "bench-node",
                                 "--log-level", "warning"], env))
    stack.enter_context(process(
        [sys.executable, "-m", "genapi", "serve", "bench_app:gateway", "--port", str(port),
         "--log-level", "warning", "--nats", nats.url,
         *(["--workers", str(workers)] if workers > 1 else [])], env, port))


def main() -> None:
    parser = load_arguments(__doc__, "per system")
    parser.add_argument("--workers", type=int, default=1, help="genapi serve --workers")
    parser.add_argument("--baseline", metavar="SRC",
                        help="also genapi from this source directory (before/after)")
    args = parser.parse_args()
    crossbar_python = peer_python("crossbar", CROSSBAR_PACKAGES, "crossbar")
    crossbar = os.path.join(os.path.dirname(crossbar_python), "crossbar")
    print(f"python {platform.python_version()}, {args.connections} connections, "
          f"{args.rounds} alternating windows of {args.duration:.0f} s per system, "
          f"{os.cpu_count()} cores shared by every process (load generator included)")
    gateway_port, router_port, baseline_port = free_port(), free_port(), free_port()
    urls = {"genapi remote": f"ws://127.0.0.1:{gateway_port}/socket/websocket?vsn=2.0.0"}
    if args.baseline:
        urls["genapi baseline"] = f"ws://127.0.0.1:{baseline_port}/socket/websocket?vsn=2.0.0"
    urls["Crossbar"] = f"ws://127.0.0.1:{router_port}/"
    results: dict[str, list[LoadResult]] = {name: [] for name in urls}
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        with open(os.path.join(tmp, "bench_app.py"), "w") as handle:
            handle.write(BENCH_APP)
        start_genapi(stack, tmp, gateway_port, args.workers)
        if args.baseline:
            start_genapi(stack, os.pathsep.join([tmp, os.path.abspath(args.baseline)]),
                         baseline_port, 1)
        cbdir = os.path.join(tmp, ".crossbar")
        os.makedirs(cbdir)
        with open(os.path.join(cbdir, "config.json"), "w") as handle:
            json.dump(crossbar_config(router_port), handle)
        peer_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        stack.enter_context(process([crossbar, "start", "--cbdir", cbdir, "--loglevel", "warn"],
                                    peer_env, router_port))
        stack.enter_context(process([crossbar_python, "-c", CALLEE, urls["Crossbar"]],
                                    peer_env))
        time.sleep(3.0)  # the node's config push reaches the gateway; the callee registers
        # The load generator counts answers, not successes: check both paths answer right.
        for port in (gateway_port, baseline_port) if args.baseline else (gateway_port,):
            asyncio.run(check_call(port, "bench_remote", "echo_remote"))
        asyncio.run(check_wamp(urls["Crossbar"]))
        with StealMeter() as steal:
            for round_ in range(1, args.rounds + 1):
                line = []
                for name, url in urls.items():
                    results[name].append(run_load(url, args, wamp=name == "Crossbar"))
                    line.append(f"{name} {results[name][-1].rate:>8,.0f}")
                print(f"  window {round_}: " + "   ".join(line) + "  calls/s")
    genapi, peer = combine(results["genapi remote"]), combine(results["Crossbar"])
    report("genapi: remote path", genapi)
    if args.baseline:
        before = combine(results["genapi baseline"])
        report("genapi: baseline", before)
        print(f"this tree against the baseline: {genapi.rate / before.rate - 1:+.0%} calls/s")
    report("Crossbar + autobahn", peer)
    print(f"ratio: {genapi.rate / peer.rate:.2f}x Crossbar's calls/s (goal >= 3x), "
          f"p50 {genapi.percentile(0.5) / peer.percentile(0.5):.2f} of Crossbar's "
          f"(goal <= 0.33)")
    print(steal.describe())


async def check_wamp(url: str) -> None:
    """One WAMP call through the router must come back as a RESULT carrying its argument."""
    from websockets.asyncio.client import connect

    async with connect(url, subprotocols=["wamp.2.json"]) as ws:  # type: ignore[list-item]
        await ws.send(HELLO.decode())
        welcome = json.loads(await ws.recv())
        await ws.send(wamp_call(0, 7).decode())
        answer = json.loads(await ws.recv())
    if welcome[0] != 2 or answer[0] != 50 or answer[3] != [7]:
        raise SystemExit(f"Crossbar answered {welcome!r} then {answer!r}")


if __name__ == "__main__":
    main()
