"""Durable calls across crashes, with real processes (``genapi serve``, ``genapi node``,
nats-server) on each backend: a gateway killed with SIGKILL after the ack and before the
run, a gateway killed in the middle of a call, and two gateways with two nodes sharing
one Postgres. Every call runs (at least once, exactly once when nothing dies mid-call)
and each caller gets exactly one terminal response.
"""

from __future__ import annotations

import asyncio
import collections
import json
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from gateway_helpers import Caller
from tests.support.durable_app import ADMIN_TOKEN
from tests.support.faults import Process
from tests.support.servers import free_port

from genapi.cluster.embedded import EmbeddedNats

PUSH_TOKEN = "durable-push-token"
pytestmark = pytest.mark.integration


def runs(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class Deployment:
    """Gateway (and node) processes on one store; stopped at the end."""

    def __init__(self, store_url: str, runs_file: Path, nats: str | None = None) -> None:
        self.store_url = store_url
        self.runs_file = runs_file
        self.nats = nats
        self.processes: list[Process] = []

    def env(self, **extra: str) -> dict[str, str]:
        return {"GENAPI_DURABLE_URL": self.store_url,
                "GENAPI_DURABLE_RUNS": str(self.runs_file), **extra}

    def gateway(self, port: int, *, workers: bool = True, lease_s: float = 2.0) -> Process:
        args = [sys.executable, "-m", "genapi", "serve", "tests.support.durable_app:gateway",
                "--port", str(port), "--log-level", "warning"]
        if self.nats is not None:
            args += ["--nats", self.nats, "--push-token", PUSH_TOKEN]
        env = self.env(GENAPI_DURABLE_WORKERS="1" if workers else "0",
                       GENAPI_DURABLE_LEASE=str(lease_s))
        process = Process(f"gateway-{port}", args, env).start()
        self.processes.append(process)
        return process

    def node(self, name: str) -> Process:
        assert self.nats is not None
        args = [sys.executable, "-m", "genapi", "node",
                "tests.support.durable_app:remote_services", "--nats", self.nats,
                "--name", name, "--push-token", PUSH_TOKEN, "--log-level", "warning"]
        process = Process(name, args, self.env()).start()
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()

    def diagnose(self) -> str:
        return "; ".join(f"{p.name}: {p.stderr()[-1500:]}" for p in self.processes
                         if not p.alive) or "all alive"


async def serving(port: int, process: Process, deployment: Deployment,
                  service: str | None = None, timeout: float = 30.0) -> str:
    """Wait until the gateway answers (and serves ``service`` when given)."""
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=url, timeout=2.0) as http:
        while True:
            assert process.alive, deployment.diagnose()
            try:
                if (await http.get("/healthz")).status_code == 200:
                    if service is None:
                        return url
                    functions = (await http.get(
                        "/admin/functions",
                        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})).json()
                    if service in json.dumps(functions):
                        return url
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"gateway not serving: {deployment.diagnose()}"
            await asyncio.sleep(0.1)


@pytest.fixture
def deployment(store_url: str, tmp_path: Path) -> Any:
    made = Deployment(store_url, tmp_path / "runs.jsonl")
    yield made
    made.stop()


async def test_a_call_acked_then_the_gateway_killed_runs_once_after_restart(
        deployment: Deployment) -> None:
    """SIGKILL after the ack, before any worker ran the call: the restarted gateway runs
    it once, and the caller, connected again, gets exactly one terminal response."""
    port = free_port()
    first = deployment.gateway(port, workers=False)
    url = await serving(port, first, deployment)
    async with Caller(url) as alice:
        await alice.push("r1", "jobs", "send", {"first_ms": 0})
        ack = await alice.ack("r1")
        assert ack["result"]["durable"] == "stored"
        first.kill()
    assert runs(deployment.runs_file) == []
    second = deployment.gateway(port, workers=True)
    url = await serving(port, second, deployment)
    async with Caller(url) as again:
        terminal = await again.terminal("r1", timeout=20)
        assert terminal["success"] and terminal["result"]["attempt"] == 1
        assert terminal["result"]["pid"] == second.popen.pid  # type: ignore[union-attr]
        await asyncio.sleep(1.0)  # sweeps: nothing more arrives
        assert len(again.terminals("r1")) == 1 and again.acks("r1") == []
    starts = [r for r in runs(deployment.runs_file) if r["event"] == "start"]
    assert [(r["request_id"], r["attempt"]) for r in starts] == [("r1", 1)]


async def test_a_gateway_killed_mid_call_the_call_runs_again_after_its_lease(
        deployment: Deployment) -> None:
    """SIGKILL while the call runs: its lease expires, the next gateway claims it again
    (attempt 2, the same idempotency key), and the caller gets exactly one terminal."""
    port = free_port()
    first = deployment.gateway(port, lease_s=2.0)
    url = await serving(port, first, deployment)
    async with Caller(url) as alice:
        await alice.push("r1", "jobs", "send", {"first_ms": 30_000})
        await alice.ack("r1")
        deadline = time.monotonic() + 15
        while not any(r["event"] == "start" for r in runs(deployment.runs_file)):
            assert time.monotonic() < deadline, deployment.diagnose()
            await asyncio.sleep(0.05)
        first.kill()
    killed_at = time.monotonic()
    second = deployment.gateway(port, lease_s=2.0)
    url = await serving(port, second, deployment)
    async with Caller(url) as again:
        terminal = await again.terminal("r1", timeout=30)
        assert time.monotonic() - killed_at < 25
        assert terminal["success"] and terminal["result"]["attempt"] == 2
        await asyncio.sleep(1.0)
        assert len(again.terminals("r1")) == 1
    recorded = runs(deployment.runs_file)
    starts = [(r["attempt"], r["pid"]) for r in recorded if r["event"] == "start"]
    assert starts == [(1, first.popen.pid), (2, second.popen.pid)]  # type: ignore[union-attr]
    assert [r["attempt"] for r in recorded if r["event"] == "end"] == [2]
    assert {r["key"] for r in recorded} == {"alice:r:r1"}


async def test_two_gateways_and_two_nodes_on_one_postgres_run_each_call_once(
        pg_url: str, pg_schema: str, tmp_path: Path) -> None:
    """Two gateways claim from one Postgres queue and run a remote durable function on two
    nodes: every call is claimed and run exactly once (attempt 1, one start each), and
    each caller gets exactly one terminal per call."""
    nats = EmbeddedNats(jetstream=False)
    nats.start()
    made = Deployment(f"{pg_url}?schema={pg_schema}", tmp_path / "runs.jsonl", nats.url)
    try:
        ports = [free_port(), free_port()]
        gateways = [made.gateway(port) for port in ports]
        made.node("n1")
        made.node("n2")
        urls = [await serving(port, process, made, "rjobs")
                for port, process in zip(ports, gateways, strict=True)]
        calls = 80
        async with Caller(urls[0], "alice") as alice, Caller(urls[1], "bob") as bob:
            for i in range(calls):
                await alice.push(f"r{i}", "rjobs", "work", {"first_ms": 20})
                await bob.push(f"r{i}", "rjobs", "work", {"first_ms": 20})
            for caller in (alice, bob):
                await caller.wait_for(lambda c=caller: all(
                    c.terminals(f"r{i}") for i in range(calls)), timeout=60)
            await asyncio.sleep(1.0)
            for caller in (alice, bob):
                assert [len(caller.terminals(f"r{i}")) for i in range(calls)] == [1] * calls
                assert all(caller.terminals(f"r{i}")[0]["success"] for i in range(calls))
        starts = collections.Counter(
            (r["user_id"], r["request_id"]) for r in runs(made.runs_file)
            if r["event"] == "start")
        assert len(starts) == 2 * calls and set(starts.values()) == {1}
        assert {r["node"] for r in runs(made.runs_file)} <= {"n1", "n2"}
        conn = await asyncpg.connect(pg_url)
        try:
            rows = await conn.fetch(
                f"SELECT state, attempts, lease_owner FROM {pg_schema}.durable_calls")
        finally:
            await conn.close()
        assert len(rows) == 2 * calls
        assert {(r["state"], r["attempts"]) for r in rows} == {("succeeded", 1)}
        assert len({r["lease_owner"] for r in rows}) == 2  # both gateways claimed calls
    finally:
        made.stop()
        nats.close()
