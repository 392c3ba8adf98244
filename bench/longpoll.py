"""Calls over long poll against calls over a WebSocket, on the same gateway.

The demo gateway runs in a child process (`genapi serve`); ``--clients`` closed-loop
clients per transport each push one call (``user_service.get_user``) and wait for its
answer before the next. A long-poll client POSTs the call and polls until the answer
arrives, as phoenix.js does; a WebSocket client pushes and reads. The transports alternate
in windows of ``--duration`` seconds; calls/s and latency percentiles per transport, and
the server's CPU share and CPU time per call (a server far from 100 % means the load
generator, httpx here, is the limit).

    python bench/longpoll.py [--clients 20] [--duration 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time

import httpx
import websockets

CALL = {"service": "user_service", "request_type": "get_user", "args": {"user_id": "1"}}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (Linux)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def longpoll_client(base: str, until: float, latencies: list[float], n: int) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        opened = (await http.get("/socket/longpoll",
                                 params={"vsn": "2.0.0", "user_id": f"u{n}"})).json()
        params = {"vsn": "2.0.0", "token": opened["token"]}
        ndjson = {"content-type": "application/x-ndjson"}
        await http.post("/socket/longpoll", params=params, headers=ndjson,
                        content=json.dumps(["1", "1", "api:lobby", "phx_join", {}]))
        pending = 1
        ref = 1
        while pending:  # the join's reply
            answer = (await http.get("/socket/longpoll", params=params)).json()
            pending -= len(answer["messages"])
        while time.monotonic() < until:
            ref += 1
            rid = f"r{ref}"
            frame = ["1", str(ref), "api:lobby", "api", {**CALL, "request_id": rid}]
            started = time.perf_counter()
            await http.post("/socket/longpoll", params=params, headers=ndjson,
                            content=json.dumps(frame))
            seen = 0
            while seen < 2:  # the api push and the phx_reply
                answer = (await http.get("/socket/longpoll", params=params)).json()
                seen += len(answer["messages"])
            latencies.append(time.perf_counter() - started)


async def websocket_client(base: str, until: float, latencies: list[float], n: int) -> None:
    url = base.replace("http", "ws", 1) + f"/socket/websocket?vsn=2.0.0&user_id=u{n}"
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps(["1", "1", "api:lobby", "phx_join", {}]))
        await ws.recv()
        ref = 1
        while time.monotonic() < until:
            ref += 1
            frame = ["1", str(ref), "api:lobby", "api", {**CALL, "request_id": f"r{ref}"}]
            started = time.perf_counter()
            await ws.send(json.dumps(frame))
            await ws.recv()
            await ws.recv()
            latencies.append(time.perf_counter() - started)


async def window(kind: str, base: str, clients: int, duration: float) -> list[float]:
    latencies: list[float] = []
    until = time.monotonic() + duration
    run = longpoll_client if kind == "longpoll" else websocket_client
    await asyncio.gather(*(run(base, until, latencies, n) for n in range(clients)))
    return latencies


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "genapi", "serve",  # noqa: ASYNC220
                               "genapi.demo.app:build_demo_gateway", "--port", str(port),
                               "--log-level", "warning"], env=os.environ.copy())
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(300):
                try:
                    if (await http.get(base + "/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        results: dict[str, list[float]] = {"websocket": [], "longpoll": []}
        seconds = {"websocket": 0.0, "longpoll": 0.0}
        busy = {"websocket": 0.0, "longpoll": 0.0}  # the server's CPU seconds
        for _ in range(args.rounds):
            for kind in ("websocket", "longpoll"):
                before = cpu_seconds(server.pid)
                got = await window(kind, base, args.clients, args.duration)
                busy[kind] += cpu_seconds(server.pid) - before
                results[kind].extend(got)
                seconds[kind] += args.duration
                print(f"  {kind:9s} {len(got) / args.duration:9,.0f} calls/s", flush=True)
        for kind, latencies in results.items():
            latencies.sort()
            p50 = statistics.median(latencies) * 1000
            p99 = latencies[int(len(latencies) * 0.99)] * 1000
            print(f"{kind:9s} {len(latencies) / seconds[kind]:9,.0f} calls/s  "
                  f"p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  ({args.clients} clients; "
                  f"server CPU {busy[kind] / seconds[kind]:.0%}, "
                  f"{busy[kind] / len(latencies) * 1e6:,.0f} µs per call)")
    finally:
        server.terminate()
        server.wait(20)


if __name__ == "__main__":
    asyncio.run(main())
