"""``genapi serve --workers N``, run as real processes: one port, N gateway processes,
one cluster (relay messages reach members on every worker), a dead worker replaced,
a clean stop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from genapi import Client
from genapi.client.wire import WireSocket
from genapi.cluster.embedded import EmbeddedNats
from genapi.relay import PRESENCE_REQUEST_ID
from tests.support.procs import children, owner
from tests.support.servers import free_port

pytestmark = pytest.mark.integration

DEMO = "genapi.demo.app:build_demo_gateway"


class Workers:
    """``genapi serve DEMO --workers 2`` on a free port."""

    def __init__(self, *extra: str) -> None:
        self.port = free_port()
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "genapi", "serve", DEMO, "--port", str(self.port),
             "--workers", "2", "--log-level", "warning", *extra],
            stdout=self.log, stderr=self.log)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def workers(self) -> set[int]:
        return children(self.process.pid) - {p for p in children(self.process.pid)
                                              if _is_nats(p)}

    def wait_ready(self, count: int = 2, timeout: float = 30.0) -> set[int]:
        """The worker pids, once ``count`` of them answer (each has its listening socket)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"supervisor exited:\n{self.output()}")
            pids = self.workers()
            if len(pids) == count and all(_listening(pid, self.port) for pid in pids):
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"http://127.0.0.1:{self.port}/healthz",
                                 timeout=1).is_success:
                        return pids
            time.sleep(0.1)
        raise AssertionError(f"workers did not start:\n{self.output()}")

    def stop(self) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        return self.process.returncode


def _is_nats(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return b"nats-server" in open(f"/proc/{pid}/cmdline", "rb").read()
    return False


def _listening(pid: int, port: int) -> bool:
    # A worker's own listening socket (SO_REUSEPORT: one per worker) is a connection from
    # port 0 in /proc/net/tcp.
    return owner(port, 0, {pid}) == pid


@pytest.fixture
def served() -> Iterator[Workers]:
    with EmbeddedNats() as nats:
        workers = Workers("--nats", nats.url)
        try:
            yield workers
        finally:
            workers.stop()


class Member:
    """A client signed in as ``user_id``, and the worker process that accepted it."""

    def __init__(self, client: Client, worker: int) -> None:
        self.client = client
        self.worker = worker


@contextlib.asynccontextmanager
async def member(workers: Workers, pids: set[int], user_id: str
                 ) -> AsyncIterator[Member]:
    ports: list[int] = []

    @contextlib.asynccontextmanager
    async def connector(url: str, headers: Mapping[str, str]) -> AsyncIterator[WireSocket]:
        async with connect(url, additional_headers=dict(headers)) as ws:
            ports.append(ws.local_address[1])
            yield ws

    url = f"ws://127.0.0.1:{workers.port}/socket"
    async with Client(url, params={"user_id": user_id}, timeout=10, reconnect=False,
                      connector=connector) as client:
        worker = owner(workers.port, ports[-1], pids)
        assert worker is not None
        yield Member(client, worker)


async def relay(client: Client, request_type: str, **args: Any) -> Any:
    return await client.call("relay", request_type, args)


async def next_message(client: Client) -> dict[str, Any]:
    while True:
        push = await client.next_push(10)
        if push.request_id != PRESENCE_REQUEST_ID:
            return dict(push.result)


async def test_a_relay_message_reaches_members_on_both_workers(served: Workers) -> None:
    """Members are spread by the kernel over two worker processes; a message sent on one
    reaches every member, whichever worker holds its socket."""
    pids = served.wait_ready()
    async with contextlib.AsyncExitStack() as stack:
        sender = await stack.enter_async_context(member(served, pids, "alice"))
        await relay(sender.client, "create_group", group_id="room", group_type="public")
        members: list[Member] = []
        # Until both workers hold a member (each connection lands on either, by hash).
        for i in range(64):
            members.append(await stack.enter_async_context(member(served, pids, f"u{i}")))
            if {m.worker for m in members} == pids and len(members) >= 4:
                break
        assert {m.worker for m in members} == pids, "the kernel used one worker only"
        for m in members:
            await relay(m.client, "join_group", group_id="room")
        sent = await relay(sender.client, "send_message", group_id="room",
                           message={"text": "hi"})
        assert sent["recipients_count"] == len(members) + 1
        got = await asyncio.gather(*(next_message(m.client) for m in members))
        assert all(g["message"] == {"text": "hi"} and g["from_user_id"] == "alice"
                   for g in got)


async def test_a_killed_worker_is_replaced_and_the_port_keeps_serving(served: Workers
                                                                     ) -> None:
    pids = served.wait_ready()
    victim = min(pids)
    os.kill(victim, signal.SIGKILL)
    after = served.wait_ready()
    assert victim not in after and len(after) == 2
    for _ in range(10):  # whichever worker takes it, a call is answered
        async with Client(f"ws://127.0.0.1:{served.port}/socket",
                          params={"user_id": "1"}, reconnect=False, timeout=10) as client:
            assert (await client.call("user_service", "get_user", {"user_id": "1"}))["id"] == "1"


def test_sigterm_stops_every_worker_and_exits_zero(served: Workers) -> None:
    pids = served.wait_ready()
    assert served.stop() == 0
    deadline = time.monotonic() + 10
    while any(os.path.exists(f"/proc/{pid}") for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(os.path.exists(f"/proc/{pid}") for pid in pids)


def test_workers_without_nats_start_their_own_cluster() -> None:
    """No --nats: the supervisor runs a private nats-server; it is gone after the stop."""
    workers = Workers()
    try:
        workers.wait_ready()
        nats = {p for p in children(workers.process.pid) if _is_nats(p)}
        assert len(nats) == 1
        assert "cluster over nats://127.0.0.1:" in workers.output()
    finally:
        assert workers.stop() == 0
    time.sleep(0.2)
    assert not any(os.path.exists(f"/proc/{pid}") for pid in nats)


def test_a_taken_port_fails_once_with_a_clear_message() -> None:
    with contextlib.closing(socket.socket()) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "genapi", "serve", DEMO, "--port", str(port),
             "--workers", "2"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
