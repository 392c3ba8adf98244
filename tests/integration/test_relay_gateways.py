"""Relay groups across two gateway processes sharing a real nats-server.

Each gateway is ``genapi serve genapi.demo.app:build_demo_gateway --nats URL`` in its own
process; clients are :class:`genapi.Client` connections to one gateway or the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Any

import httpx
import pytest

from genapi import ApiError, Client, Response
from genapi.cluster.embedded import EmbeddedNats
from genapi.relay import PRESENCE_REQUEST_ID
from tests.integration.conftest import ROOT
from tests.support.servers import free_port

pytestmark = pytest.mark.integration


class GatewayProcess:
    """A demo gateway in its own process, in the cluster of ``nats``."""

    def __init__(self, nats: str) -> None:
        self.port = free_port()
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - outlives __init__; stop() closes it
        args = [sys.executable, "-m", "genapi", "serve", "genapi.demo.app:build_demo_gateway",
                "--port", str(self.port), "--nats", nats, "--log-level", "warning"]
        self.process = subprocess.Popen(args, cwd=ROOT, stdout=self.log, stderr=self.log,
                                        env={**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])})

    @property
    def socket(self) -> str:
        return f"ws://127.0.0.1:{self.port}/socket"

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"gateway exited:\n{self.output()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).is_success:
                    return
            time.sleep(0.05)
        raise AssertionError(f"gateway did not start:\n{self.output()}")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@pytest.fixture
def gateways(nats_server: EmbeddedNats) -> Iterator[tuple[GatewayProcess, GatewayProcess]]:
    """Two gateway processes in one cluster."""
    pair = (GatewayProcess(nats_server.url), GatewayProcess(nats_server.url))
    try:
        for gateway in pair:
            gateway.wait_ready()
        yield pair
    finally:
        for gateway in pair:
            gateway.stop()


@contextlib.asynccontextmanager
async def user(gateway: GatewayProcess, user_id: str) -> AsyncIterator[Client]:
    """A client of ``gateway`` signed in (demo authenticator) as ``user_id``."""
    async with Client(gateway.socket, params={"user_id": user_id}, timeout=10) as client:
        yield client


async def relay(client: Client, request_type: str, **args: Any) -> Any:
    """Call a relay function."""
    return await client.call("relay", request_type, args)


async def refused(call: Awaitable[Any]) -> str | None:
    """The error message ``call`` answers, or None when it succeeds."""
    try:
        await call
    except ApiError as exc:
        return str(exc)
    return None


async def next_message(client: Client, timeout: float = 10.0) -> dict[str, Any]:
    """The next relay message pushed to ``client`` (presence notices skipped)."""
    while True:
        push = await client.next_push(timeout)
        if push.request_id != PRESENCE_REQUEST_ID:
            return dict(push.result)


async def next_notice(client: Client, timeout: float = 10.0) -> dict[str, Any]:
    """The next presence notice pushed to ``client``."""
    while True:
        push: Response = await client.next_push(timeout)
        if push.request_id == PRESENCE_REQUEST_ID:
            return dict(push.result)


async def test_members_on_two_gateway_processes_chat(
    gateways: tuple[GatewayProcess, GatewayProcess],
) -> None:
    """Messages, notices, presence and cleanup cross from one gateway process to the other."""
    one, two = gateways
    async with user(one, "alice") as alice:
        await relay(alice, "create_group", group_id="room", group_type="public")
        async with user(two, "bob") as bob:
            joined = await relay(bob, "join_group", group_id="room")
            assert joined["status"] == "active"
            assert list((await next_notice(alice))["joins"]) == ["bob"]
            sent = await relay(alice, "send_message", group_id="room", message={"text": "hi"})
            assert sent["status"] == "relayed" and sent["recipients_count"] == 2
            got = await next_message(bob)
            assert got == {"group_id": "room", "from_user_id": "alice",
                           "message": {"text": "hi"}, "timestamp": sent["timestamp"],
                           "offset": sent["offset"]}
            back = await relay(bob, "send_message", group_id="room", message="hello alice")
            assert (await next_message(alice))["message"] == "hello alice"
            assert back["offset"] > sent["offset"]
            presence = await relay(alice, "presence", group_id="room")
            assert presence["count"] == 2
            assert sorted(m["user_id"] for m in presence["members"]) == ["alice", "bob"]
        left = await next_notice(alice)
        assert (left["presence"], list(left["leaves"])) == ("diff", ["bob"])
        info = await relay(alice, "group_info", group_id="room")
        assert [m["user_id"] for m in info["members"]] == ["alice"]
    async with user(two, "carol") as carol:
        refusal = None
        for _ in range(100):  # alice's socket closing on gateway one deletes the group
            refusal = await refused(relay(carol, "group_info", group_id="room"))
            if refusal is not None:
                break
            await asyncio.sleep(0.05)
        assert refusal == "Group not found"


async def test_a_member_back_on_the_other_gateway_recovers_what_it_missed(
    gateways: tuple[GatewayProcess, GatewayProcess],
) -> None:
    """Rejoining with the last offset seen, through the other gateway, returns the gap."""
    one, two = gateways
    async with user(one, "alice") as alice:
        await relay(alice, "join_group", group_id="lobby")  # the demo's persistent room
        async with user(two, "bob") as bob:
            await relay(bob, "join_group", group_id="lobby")
            await relay(alice, "send_message", group_id="lobby", message="one")
            seen = (await next_message(bob))["offset"]
        await relay(alice, "send_message", group_id="lobby", message="two")
        await relay(alice, "send_message", group_id="lobby", message="three")
        async with user(one, "bob") as bob_again:
            back = await relay(bob_again, "join_group", group_id="lobby", last_offset=seen)
        assert [m["message"] for m in back["messages"]] == ["two", "three"]
        assert back["recovered"] is True
        assert back["offset"] == back["messages"][-1]["offset"] > seen
        async with user(two, "dave") as dave:
            stale = await relay(dave, "join_group", group_id="lobby", last_offset=10**9)
        assert stale["recovered"] is False and stale["messages"] == []
