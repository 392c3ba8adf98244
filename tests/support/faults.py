"""A fault-injection harness with real processes: a nats-server, a gateway (`genapi serve`)
and service nodes (`genapi node`), a recording Phoenix client, and the verdict on what it
recorded. Used by ``tests/faults`` (short runs) and ``bench/faults.py`` (long runs).

The verdict holds genapi's promise to the letter: every call gets exactly one terminal
response (a sync answer; an async call's final answer after its ack; a stream's one
terminator after its chunks), none is lost, none duplicated, none later than its timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from genapi.cluster.embedded import EmbeddedNats
from tests.support.fault_app import ADMIN_TOKEN
from tests.support.phoenix_socket import JoinedSocket
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
PUSH_TOKEN = "fault-push-token"
TOPIC = "api:lobby"


class Process:
    """One child process of the scenario (a gateway or a node)."""

    def __init__(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        self.name = name
        self.args = args
        # This checkout's code, whatever genapi the environment has installed.
        path = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
        self.env = {**os.environ, "PYTHONPATH": path, **(env or {})}
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        self.popen = subprocess.Popen(self.args, cwd=ROOT, env=self.env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return self

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive:
            assert self.popen is not None
            self.popen.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL: a crash, nothing cleaned up."""
        self.signal(signal.SIGKILL)
        self.wait(5)

    def wait(self, timeout: float) -> int | None:
        if self.popen is None:
            return None
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        if self.alive:
            self.signal(signal.SIGTERM)
            if self.wait(15) is None:
                self.kill()

    def stderr(self) -> str:
        if self.popen is None or self.popen.stderr is None or self.alive:
            return ""
        return self.popen.stderr.read().decode(errors="replace")


class FaultCluster:
    """nats-server + one gateway + named nodes, all real processes on loopback."""

    def __init__(self, *, gateway_drain: float = 2.0, node_drain: float = 10.0) -> None:
        self.nats = EmbeddedNats(jetstream=False)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.gateway_drain = gateway_drain
        self.node_drain = node_drain
        self.gateway: Process | None = None
        self.nodes: dict[str, Process] = {}

    def start_gateway(self) -> Process:
        args = [sys.executable, "-m", "genapi", "serve", "tests.support.fault_app:gateway",
                "--port", str(self.port), "--nats", self.nats.url,
                "--push-token", PUSH_TOKEN, "--log-level", "warning"]
        self.gateway = Process("gateway", args,
                               {"GENAPI_FAULT_DRAIN": str(self.gateway_drain)}).start()
        return self.gateway

    def start_node(self, name: str) -> Process:
        args = [sys.executable, "-m", "genapi", "node", "tests.support.fault_app:services",
                "--nats", self.nats.url, "--name", name, "--push-token", PUSH_TOKEN,
                "--log-level", "warning", "--drain-timeout", str(self.node_drain)]
        self.nodes[name] = Process(name, args).start()
        return self.nodes[name]

    async def cluster_status(self) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.url, timeout=5) as http:
            answer = await http.get("/admin/cluster",
                                    headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
            answer.raise_for_status()
            data: dict[str, Any] = answer.json()
            return data

    async def wait_serving(self, *names: str, timeout: float = 30.0) -> None:
        """Until the gateway answers and lists ``names`` alive, serving the remote service."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                status = await self.cluster_status()
                nodes = status["nodes"]
                if status["connected"] and all(
                        n in nodes and nodes[n]["alive"] and "remote" in nodes[n]["services"]
                        for n in names):
                    return
            except (httpx.HTTPError, KeyError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the cluster did not serve {names}: {self.diagnose()}")
            await asyncio.sleep(0.1)

    def diagnose(self) -> str:
        parts = []
        for process in [self.gateway, *self.nodes.values()]:
            if process is not None and not process.alive:
                parts.append(f"{process.name} exited: {process.stderr()[-2000:]}")
        return "; ".join(parts) or "all processes alive"

    def __enter__(self) -> FaultCluster:
        self.nats.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for process in [*self.nodes.values(), self.gateway]:
            if process is not None:
                process.stop()
        self.nats.close()


@dataclass
class Record:
    """One call as the client saw it."""

    request_id: str
    kind: str  # sync, async or stream
    sent: float
    timeout: float | None
    responses: list[tuple[float, dict[str, Any]]] = field(default_factory=list)

    def terminals(self) -> list[tuple[float, dict[str, Any]]]:
        if self.kind == "sync":
            return list(self.responses)
        if self.kind == "async":
            return [(t, r) for t, r in self.responses if not r["async"] or not r["success"]]
        return [(t, r) for t, r in self.responses if not r["has_more"]]


class Recorder(JoinedSocket):
    """A raw Phoenix client (v2 JSON) that records every Response by request id."""

    def __init__(self, url: str) -> None:
        super().__init__(url.replace("http", "ws", 1) + "/socket/websocket?vsn=2.0.0", TOPIC)
        self.records: dict[str, Record] = {}

    def on_frame(self, ref: str | None, event: str, payload: Any) -> None:
        if event == "api":
            record = self.records.get(payload["request_id"])
            if record is not None:
                record.responses.append((time.monotonic(), payload))

    async def call(self, request_type: str, kind: str, args: dict[str, Any], *,
                   service: str = "remote", timeout: float | None = 20.0,
                   request_id: str | None = None) -> str:
        """Push one call; returns its request id (reused ids are allowed)."""
        rid = request_id or f"{request_type}-{self.next_ref()}"
        self.records.setdefault(rid, Record(rid, kind, time.monotonic(), timeout))
        payload = {"request_id": rid, "service": service, "request_type": request_type,
                   "args": args}
        await self.send_push(self.next_ref(), payload)
        return rid

    async def settle(self, deadline: float) -> None:
        """Wait until every call has its terminal or ``deadline`` (monotonic) passes."""
        while time.monotonic() < deadline:
            if all(r.terminals() for r in self.records.values()):
                return
            await asyncio.sleep(0.05)


@dataclass
class Verdict:
    """What happened to the calls of one scenario."""

    sent: int = 0
    ok: int = 0
    error: int = 0
    lost: int = 0
    duplicated: int = 0
    late: int = 0
    hung: int = 0
    not_retryable: list[str] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)  # each failed call, for assertion messages

    def line(self) -> str:
        return (f"sent {self.sent}  ok {self.ok}  error {self.error}  lost {self.lost}  "
                f"duplicated {self.duplicated}  late {self.late}  hung {self.hung}")


def verdict(records: Iterable[Record], *, slack: float = 3.0) -> Verdict:
    """Judge the recorded calls (see the module docs)."""
    v = Verdict()
    for record in records:
        v.sent += 1
        terminals = record.terminals()
        if not terminals:
            v.lost += 1
            if record.kind == "stream" and record.timeout is None:
                v.hung += 1
            continue
        if len(terminals) > 1:
            v.duplicated += 1
        at, last = terminals[0]
        if record.timeout is not None and at - record.sent > record.timeout + slack:
            v.late += 1
        if last["success"]:
            v.ok += 1
        else:
            v.error += 1
            v.errors[last["error"]] = v.errors.get(last["error"], 0) + 1
            v.failures.append(f"{record.request_id} ({record.kind}, sent at "
                              f"{record.sent:.2f}, ended at {at:.2f}): {last}")
            if not last["can_retry"]:
                v.not_retryable.append(f"{record.request_id}: {last['error']}")
    return v


def judged(records: list[Record], *, served_from: float | None = None) -> Verdict:
    """The verdict, asserting what every fault scenario promises: no call lost,
    duplicated or late, every error retryable and, with ``served_from`` (monotonic), every
    call sent from then on served."""
    v = verdict(records)
    assert (v.lost, v.duplicated, v.late) == (0, 0, 0), v.line()
    assert v.not_retryable == []
    if served_from is not None:
        later, good = served_after(records, served_from)
        assert later > 0 and good == later, v.errors
    return v


@dataclass
class Mix:
    """How many calls of each kind a load sends per second."""

    sync_per_s: float = 40.0
    async_per_s: float = 8.0
    stream_per_s: float = 3.0
    async_ms: int = 400
    stream_count: int = 15
    stream_interval_ms: int = 100
    sync_type: str = "echo"


async def load(recorder: Recorder, seconds: float, mix: Mix | None = None) -> None:
    """Send a steady mix of remote sync, async and stream calls for ``seconds``."""
    mix = mix or Mix()
    started = time.monotonic()
    tick = 0.02
    due = {"sync": 0.0, "async": 0.0, "stream": 0.0}
    rates = {"sync": mix.sync_per_s, "async": mix.async_per_s, "stream": mix.stream_per_s}
    while (elapsed := time.monotonic() - started) < seconds:
        for kind, rate in rates.items():
            while rate and due[kind] <= elapsed:
                due[kind] += 1.0 / rate
                if kind == "sync":
                    await recorder.call(mix.sync_type, "sync", {"x": 1}, timeout=20.0)
                elif kind == "async":
                    await recorder.call("work", "async", {"ms": mix.async_ms}, timeout=20.0)
                else:
                    await recorder.call("ticks", "stream", {"count": mix.stream_count,
                                                            "interval_ms": mix.stream_interval_ms},
                                        timeout=None)
        await asyncio.sleep(tick)


def served_after(records: Iterable[Record], moment: float) -> tuple[int, int]:
    """Calls sent after ``moment``: (how many, how many succeeded)."""
    later = [r for r in records if r.sent >= moment]
    good = sum(1 for r in later if r.terminals() and r.terminals()[0][1]["success"])
    return len(later), good


def first_answer_after(records: Iterable[Record], moment: float) -> float | None:
    """Seconds from ``moment`` until the last call in flight at ``moment`` got its terminal
    (None when none was in flight)."""
    ends = []
    for record in records:
        terminals = record.terminals()
        if record.sent < moment and terminals and terminals[0][0] >= moment:
            ends.append(terminals[0][0] - moment)
    return max(ends) if ends else None


@contextlib.contextmanager
def started(cluster: FaultCluster, nodes: Iterable[str] = ("a", "b")) -> Iterator[FaultCluster]:
    """Start the gateway and ``nodes`` of ``cluster`` (stopped when the cluster exits)."""
    cluster.start_gateway()
    for name in nodes:
        cluster.start_node(name)
    yield cluster
