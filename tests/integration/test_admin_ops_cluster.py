"""Admin actions across a cluster: two gateway processes (``genapi serve --nats``) on a
real nats-server. An action asked of gateway A is applied on B within a second, and
audited on both; B applies only what its own gate allows."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from genapi.cluster.embedded import EmbeddedNats
from tests.support.ops_app import (
    ALL,
    CASES,
    EXPECTED_AFTER,
    TOKEN,
    Case,
    Step,
    state,
)
from tests.support.servers import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class GatewayProcess:
    """``genapi serve tests.support.ops_app:gateway --nats URL`` with its log in a file."""

    def __init__(self, nats: str, log: Path, actions: frozenset[str] = ALL,
                 env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        env = {**os.environ, **(env or {}), "OPS_ACTIONS": ",".join(sorted(actions)),
               "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])}
        self._out = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "genapi", "serve", "tests.support.ops_app:gateway",
             "--nats", nats, "--port", str(self.port), "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=self._out, stderr=subprocess.STDOUT)

    async def up(self, client: httpx.AsyncClient) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(self.url + "/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
        raise AssertionError(f"gateway did not start: {self.log.read_text()}")

    def audit(self) -> list[str]:
        return [line for line in self.log.read_text().splitlines()
                if "genapi.admin.audit" in line]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._out.close()


@pytest.fixture
def nats() -> Iterator[str]:
    with EmbeddedNats() as server:
        yield server.url


@contextlib.asynccontextmanager
async def two_gateways(nats: str, tmp_path: Path, b_actions: frozenset[str] = ALL,
                       env: dict[str, str] | None = None
                       ) -> AsyncIterator[tuple[GatewayProcess, GatewayProcess,
                                                httpx.AsyncClient]]:
    a = GatewayProcess(nats, tmp_path / "a.log", env=env)
    b = GatewayProcess(nats, tmp_path / "b.log", b_actions, env=env)
    try:
        async with httpx.AsyncClient(headers=AUTH, timeout=10) as client:
            await a.up(client)
            await b.up(client)
            await _linked(a, b, client)
            yield a, b, client
    finally:
        a.stop()
        b.stop()


async def _linked(a: GatewayProcess, b: GatewayProcess, client: httpx.AsyncClient) -> None:
    """Wait until B hears A's actions: a probe limit set on A, seen on B, removed."""
    probe = {"key": "device_id", "max_requests": 7, "window_ms": 7_000}
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert (await client.put(a.url + "/admin/rate-limits", json=probe)).status_code == 200
        config = (await client.get(b.url + "/admin/rate-limits")).json()["config"]
        if any(g["key"] == "device_id" for g in config["global_limits"]):
            break
        await asyncio.sleep(0.2)
    else:
        raise AssertionError("B never heard A: " + b.log.read_text())
    await client.delete(a.url + "/admin/rate-limits", params={"key": "device_id"})
    await _until(lambda: _devices(b, client), [])


async def _devices(gw: GatewayProcess, client: httpx.AsyncClient) -> list[Any]:
    config = (await client.get(gw.url + "/admin/rate-limits")).json()["config"]
    return [g for g in config["global_limits"] if g["key"] == "device_id"]


async def _until(read: Any, expected: Any, within: float = 5.0) -> float:
    """Poll ``read()`` until it returns ``expected``; the seconds it took."""
    started = time.monotonic()
    while True:
        value = await read()
        if value == expected:
            return time.monotonic() - started
        if time.monotonic() - started > within:
            raise AssertionError(f"{value!r} != {expected!r} after {within} s")
        await asyncio.sleep(0.02)


async def _on(gw: GatewayProcess, client: httpx.AsyncClient, step: Step) -> httpx.Response:
    method, path, params, body = step
    return await client.request(method, gw.url + path, params=params, json=body)


async def _read_state(gw: GatewayProcess, client: httpx.AsyncClient) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=gw.url, headers=AUTH, timeout=10) as scoped:
        return await state(scoped)


async def test_every_action_reaches_the_other_gateway_within_a_second(
        nats: str, tmp_path: Path) -> None:
    """Each action asked of A shows on B within 1 s (check, which counts once, only on
    A), and B's log audits it as coming from A."""
    async with two_gateways(nats, tmp_path) as (a, b, client):
        for case in CASES:
            for step in case.prepare:
                assert (await _on(a, client, step)).status_code == 200
            for step in case.prepare_seer:
                assert (await _on(b, client, step)).status_code == 200
            if case.prepare:
                await _wait_b_matches_a(a, b, client)
            b_before = await _read_state(b, client)
            response = await _on(a, client, case.request)
            assert response.status_code == 200, response.text
            change = response.json()
            expected = EXPECTED_AFTER[case.action]
            assert {k: (await _read_state(a, client))[k] for k in expected} == expected \
                or not case.cluster_wide
            if case.cluster_wide:
                assert change["shared"] is True
                took = await _until(lambda e=expected: _part(b, client, e), expected, within=1.0)
                assert took < 1.0, case.action
            else:
                assert change["shared"] is False
                await asyncio.sleep(0.3)
                assert await _read_state(b, client) == b_before  # counted on A only
            await _restore(a, b, client, case)
        await asyncio.sleep(0.2)
        lines = b.audit()
        for case in CASES:
            if case.cluster_wide:
                assert any(f"admin {case.action} applied by ops" in line and ", from " in line
                           for line in lines), (case.action, lines)
        # B ran checks of its own (preparing), never one asked of A
        assert not any("admin check_rate_limit" in line and ", from " in line
                       for line in lines)


async def _part(gw: GatewayProcess, client: httpx.AsyncClient,
                expected: dict[str, Any]) -> dict[str, Any]:
    current = await _read_state(gw, client)
    return {k: current[k] for k in expected}


async def _wait_b_matches_a(a: GatewayProcess, b: GatewayProcess,
                            client: httpx.AsyncClient) -> None:
    target = await _read_state(a, client)
    await _until(lambda: _part(b, client, {"price_v1": 0, "limits": 0}),
                 {"price_v1": target["price_v1"], "limits": target["limits"]})


async def _restore(a: GatewayProcess, b: GatewayProcess, client: httpx.AsyncClient,
                   case: Case) -> None:
    """Back to the start on both (through A; no usage anywhere). A deleted price 1.0.0
    stays deleted: the cases after delete_function do not look at it."""
    steps: list[Step] = [
        ("POST", "/admin/functions/shop/price/enable", {"version": "1.0.0"}, None),
        ("PUT", "/admin/rate-limits", None,
         {"key": "user_id", "max_requests": 5, "window_ms": 60_000}),
        ("POST", "/admin/rate-limits/clear", None, None),
    ]
    for step in steps:
        await _on(a, client, step)  # 404 once price 1.0.0 is deleted: fine
    for gw in (a, b):
        await _on(gw, client, ("POST", "/admin/rate-limits/clear", None, None))
    await _wait_b_matches_a(a, b, client)


async def test_a_check_is_seen_by_gateways_sharing_a_redis_store(
        nats: str, redis_url: str, tmp_path: Path) -> None:
    """check counts on the gateway asked; with the counts in Redis, B sees it within 1 s
    (and a reset asked of B shows on A)."""
    import uuid

    env = {"OPS_REDIS": redis_url, "OPS_REDIS_PREFIX": f"ops:{uuid.uuid4().hex}:"}
    async with two_gateways(nats, tmp_path, env=env) as (a, b, client):
        [check] = [case for case in CASES if case.action == "check_rate_limit"]
        assert (await _on(a, client, check.request)).status_code == 200
        took = await _until(lambda: _part(b, client, {"u1_used": 0}), {"u1_used": [1]},
                            within=1.0)
        assert took < 1.0
        step: Step = ("POST", "/admin/rate-limits/reset", None, {"value": "u1"})
        assert (await _on(b, client, step)).status_code == 200
        await _until(lambda: _part(a, client, {"u1_used": 0}), {"u1_used": [0]}, within=1.0)


async def test_a_gateway_applies_only_what_its_own_gate_allows(
        nats: str, tmp_path: Path) -> None:
    """B's gate does not allow manage_functions: A's disable applies on A only, and B
    audits the refusal."""
    async with two_gateways(nats, tmp_path,
                            b_actions=ALL - {"manage_functions"}) as (a, b, client):
        step: Step = ("POST", "/admin/functions/shop/price/disable", {"version": "1.0.0"},
                      None)
        assert (await _on(a, client, step)).status_code == 200
        await asyncio.sleep(0.5)
        assert (await _read_state(a, client))["price_v1"] == "disabled"
        assert (await _read_state(b, client))["price_v1"] == "enabled"
        assert any("admin disable_function denied by ops" in line for line in b.audit())


async def test_published_actions_need_the_cluster_push_token(
        nats_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """With a push token, an action published on NATS without it (a forged one) is
    refused and audited; with it, applied; a malformed one is ignored."""
    import logging
    import uuid

    import msgspec
    import nats as nats_py

    from genapi import ClusterOptions
    from tests.support.ops_app import build

    caplog.set_level(logging.INFO, "genapi.admin.audit")
    prefix = f"ops{uuid.uuid4().hex[:8]}"
    gateway = build(cluster=ClusterOptions(nats=nats_url, prefix=prefix, name="gw-x",
                                           push_token="cluster-secret"))
    async with gateway.running():
        assert gateway.cluster is not None
        await gateway.cluster.ready(15)
        await gateway.ops.ready(15)
        client = await nats_py.connect(nats_url)
        try:
            def message(token: str | None) -> bytes:
                return msgspec.json.encode({
                    "action": "disable_function", "who": "mallory", "origin": "gw-evil",
                    "token": token,
                    "args": {"service": "shop", "request_type": "price",
                             "version": "1.0.0"}})

            subject = f"{prefix}.admin.ops"
            await client.publish(subject, b"{not json")
            await client.publish(subject, message(None))
            await client.publish(subject, message("wrong"))
            await client.flush()
            await asyncio.sleep(0.3)
            route = gateway.registry.get_route("shop", "price", "1.0.0")
            assert route is not None and not route.disabled
            await client.publish(subject, message("cluster-secret"))
            await client.flush()
            await _until(lambda: _disabled(gateway), True, within=2.0)
        finally:
            await client.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "genapi.admin.audit"]
    denied = [line for line in lines if "denied by mallory" in line]
    assert len(denied) == 2 and all("invalid cluster token" in line for line in denied)
    assert any("applied by mallory" in line and "from gw-evil" in line for line in lines)


async def _disabled(gateway: Any) -> bool:
    route = gateway.registry.get_route("shop", "price", "1.0.0")
    return route is not None and route.disabled
