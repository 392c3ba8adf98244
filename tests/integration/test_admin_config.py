"""Config distribution over the admin endpoint and the CLI, against real node processes:
pushed services shown and deleted, pull sources added, forced and removed, refusals,
audit."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator

import httpx
import pytest

from genapi import AdminSettings, Gateway
from genapi.cluster.embedded import EmbeddedNats
from genapi.gateway import ClusterOptions
from genapi.security import AdminAction, AdminGate
from tests.integration.conftest import TOKEN, Nodes, wait_for
from tests.integration.test_cluster import served
from tests.support.servers import running_app

pytestmark = pytest.mark.integration

ADMIN = "admin-config-token-0123456789"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
ALL = {AdminAction.VIEW_DIAGNOSTICS, AdminAction.PUSH_CONFIG, AdminAction.MANAGE_FUNCTIONS}


def make_gateway(url: str, actions: set[AdminAction], name: str = "gw-a") -> Gateway:
    return Gateway(cluster=ClusterOptions(nats=url, push_token=TOKEN, node_grace=1.5,
                                          name=name),
                   admin=AdminSettings(token=ADMIN, gate=AdminGate(actions)))


@pytest.fixture
async def served_gateway(nats_server: EmbeddedNats) -> AsyncIterator[tuple[Gateway, str]]:
    gateway = make_gateway(nats_server.url, ALL)
    async with running_app(gateway) as url:
        assert gateway.cluster is not None
        await gateway.cluster.ready(15)
        yield gateway, url


async def genapi(url: str, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "GENAPI_ADMIN_TOKEN": ADMIN, "COLUMNS": "200"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "genapi", "admin", *args, "--url", url, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_pushed_services_over_http_and_cli(
        served_gateway: tuple[Gateway, str], nodes: Nodes,
        caplog: pytest.LogCaptureFixture) -> None:
    gateway, url = served_gateway
    caplog.set_level(logging.INFO, logger="genapi.admin.audit")
    nodes.start("p1")
    await wait_for(lambda: served(gateway, "p1"))
    async with httpx.AsyncClient(base_url=url, headers=AUTH) as http:
        listed = (await http.get("/admin/config/pushed")).json()["services"]
        assert list(listed) == ["data_service"]
        shown = (await http.get("/admin/config/pushed/data_service")).json()
        assert shown["nodes"] == ["p1"] and shown["config_version"] == listed["data_service"]
        assert "get_data" in {f["request_type"] for f in shown["functions"]}
        assert (await http.get("/admin/config/pushed/nope")).status_code == 404
    code, out, _ = await genapi(url, "pushed", "show", "data_service")
    assert code == 0 and "get_data" in out and "p1" in out
    code, out, _ = await genapi(url, "pushed", "delete", "data_service")
    assert code == 0 and out.startswith("pushed config deleted: data_service")
    assert gateway.cluster is not None
    assert gateway.cluster.sync.get_pushed_config("data_service") is None
    assert gateway.registry.get_route("data_service", "get_data") is not None  # kept
    assert any("admin delete_pushed_service applied" in r.getMessage()
               and "data_service" in r.getMessage() for r in caplog.records)
    # The node pushes the same version again (on the gateway's request): it applies.
    await gateway.cluster.link.publish(gateway.cluster.subjects.config_request, b"{}")
    await wait_for(lambda: gateway.cluster.sync.get_pushed_config("data_service"))  # type: ignore[union-attr]
    code, _, _ = await genapi(url, "pushed", "delete", "data_service", "--functions")
    assert code == 0
    assert gateway.registry.get_route("data_service", "get_data") is None
    code, _, err = await genapi(url, "pushed", "delete", "data_service")
    assert code == 1 and "no pushed config for service 'data_service'" in err


async def test_pull_sources_over_http_and_cli(
        served_gateway: tuple[Gateway, str], nodes: Nodes) -> None:
    gateway, url = served_gateway
    nodes.start("src", token="not-the-token")  # its pushes are refused: only pulls work
    assert gateway.cluster is not None
    await wait_for(lambda: gateway.cluster.directory.alive("src"))  # type: ignore[union-attr]
    assert gateway.registry.get_route("data_service", "get_data") is None
    code, out, err = await genapi(url, "pull", "add", "data_service", "src")
    assert code == 0, err
    assert out.strip() == "pull source added: data_service from src (on every gateway)"
    await wait_for(lambda: gateway.registry.get_route("data_service", "get_data"))
    code, out, _ = await genapi(url, "pull", "list")
    assert code == 0 and "data_service" in out and "src" in out
    code, out, _ = await genapi(url, "pull", "force", "data_service")
    assert (code, out.strip()) == (0, "data_service: applied")
    code, out, _ = await genapi(url, "pull", "remove", "data_service")
    assert code == 0
    assert gateway.cluster.sync.pull_configs == {}
    code, _, err = await genapi(url, "pull", "force", "data_service")
    assert code == 1 and "no pull source for service 'data_service'" in err
    async with httpx.AsyncClient(base_url=url, headers=AUTH) as http:
        bad = await http.post("/admin/config/pull", json={"service": "x", "nodes": []})
        assert (bad.status_code, bad.json()) == (
            400, {"error": "nodes must be a non-empty list of node names"})


async def test_a_node_started_with_pull_is_pulled_from_as_well(
        served_gateway: tuple[Gateway, str], nodes: Nodes) -> None:
    """`genapi node --pull`: its push asks the gateway to pull from it afterwards (a pull
    source for its service), not only to apply the push."""
    gateway, _ = served_gateway
    nodes.start("pp", extra=("--pull",))
    await wait_for(lambda: served(gateway, "pp"))
    assert gateway.cluster is not None
    sync = gateway.cluster.sync
    await wait_for(lambda: "data_service" in sync.pull_configs)
    source = sync.pull_configs["data_service"]
    assert list(source.nodes() if callable(source.nodes) else source.nodes) == ["pp"]
    pushed = sync.get_pushed_config("data_service")
    assert pushed is not None and pushed.pull


async def test_verify_asks_each_node_its_config_version(
        served_gateway: tuple[Gateway, str], nodes: Nodes) -> None:
    """`genapi admin verify` compares what each node serves with what the gateway applied:
    matched; not_found once the gateway forgot the push; unreachable for a node that does
    not answer."""
    gateway, url = served_gateway
    nodes.start("v1")
    await wait_for(lambda: served(gateway, "v1"))
    code, out, err = await genapi(url, "verify", "data_service")
    assert code == 0, err
    assert "v1" in out and "matched" in out
    async with httpx.AsyncClient(base_url=url, headers=AUTH) as http:
        data = (await http.get("/admin/config/verify/data_service")).json()
        [row] = data["nodes"]
        assert row["status"] == "matched" and row["node_version"] == row["gateway_version"]
        ghost = (await http.get("/admin/config/verify/data_service",
                                params={"node": "ghost"})).json()["nodes"][0]
        assert ghost["status"] == "unreachable" and ghost["node_version"] is None
        assert (await http.get("/admin/config/verify/nope")).status_code == 404
    assert gateway.cluster is not None
    gateway.cluster.sync.delete_pushed_service("data_service")
    code, out, _ = await genapi(url, "verify", "data_service", "--node", "v1")
    assert code == 1 and "not_found" in out


async def test_changes_are_refused_without_the_actions(nats_server: EmbeddedNats) -> None:
    """view_diagnostics reads; push_config changes; manage_functions removes functions."""
    gateway = make_gateway(nats_server.url, {AdminAction.VIEW_DIAGNOSTICS})
    async with running_app(gateway) as url:
        assert gateway.cluster is not None
        await gateway.cluster.ready(15)
        async with httpx.AsyncClient(base_url=url, headers=AUTH) as http:
            assert (await http.get("/admin/config/pull")).status_code == 200
            refused = await http.post("/admin/config/pull",
                                      json={"service": "s", "nodes": ["n"]})
            assert (refused.status_code, refused.json()) == (
                403, {"error": "Admin action denied: push_config"})
            assert gateway.cluster.sync.pull_configs == {}
        code, _, err = await genapi(url, "pull", "force")
        assert code == 1 and "Admin action denied: push_config" in err
    gateway = make_gateway(nats_server.url, {AdminAction.VIEW_DIAGNOSTICS,
                                             AdminAction.PUSH_CONFIG})
    async with running_app(gateway) as url:
        assert gateway.cluster is not None
        await gateway.cluster.ready(15)
        async with httpx.AsyncClient(base_url=url, headers=AUTH) as http:
            refused = await http.delete("/admin/config/pushed/s?functions=true")
            assert (refused.status_code, refused.json()) == (
                403, {"error": "Admin action denied: manage_functions"})


async def test_changes_reach_every_gateway_within_a_second(
        served_gateway: tuple[Gateway, str], nats_server: EmbeddedNats, nodes: Nodes,
        caplog: pytest.LogCaptureFixture) -> None:
    """Each config action asked of one gateway is applied (and audited) on the other
    within 1 s; a gateway whose gate does not allow it refuses it (audited)."""
    caplog.set_level(logging.INFO, logger="genapi.admin.audit")
    a, url = served_gateway
    b = make_gateway(nats_server.url, ALL, "gw-b")
    closed = make_gateway(nats_server.url, {AdminAction.VIEW_DIAGNOSTICS}, "gw-closed")
    async with b.running(), closed.running():
        for gateway in (b, closed):
            assert gateway.cluster is not None
            await gateway.cluster.ready(15)
            await gateway.ops.ready(15)
        nodes.start("p1")
        await wait_for(lambda: served(a, "p1") and served(b, "p1"))
        async with httpx.AsyncClient(base_url=url, headers=AUTH) as http:
            added = await http.post("/admin/config/pull",
                                    json={"service": "data_service", "nodes": ["p1"]})
            assert added.status_code == 200 and added.json()["shared"] is True
        assert b.cluster is not None and closed.cluster is not None
        await wait_for(lambda: "data_service" in b.cluster.sync.pull_configs,  # type: ignore[union-attr]
                       timeout=1.0)
        assert closed.cluster.sync.pull_configs == {}  # its gate does not allow push_config
        change = await b.ops.run("delete_pushed_service", {"service": "data_service"})
        assert change.shared
        assert a.cluster is not None
        await wait_for(lambda: a.cluster.sync.get_pushed_config("data_service") is None,  # type: ignore[union-attr]
                       timeout=1.0)
        forced = await b.ops.run("force_pull", {"service": "data_service"})
        assert forced.after["results"] == {"data_service": "applied"}
        async with httpx.AsyncClient(base_url=url, headers=AUTH) as http:
            removed = await http.delete("/admin/config/pull/data_service")
            assert removed.status_code == 200
        await wait_for(lambda: b.cluster.sync.pull_configs == {}, timeout=1.0)  # type: ignore[union-attr]

        def audited(action: str, gateway: str, outcome: str) -> bool:
            return any(f"admin {action} {outcome}" in r.getMessage()
                       and f"({gateway}" in r.getMessage() for r in caplog.records)

        await wait_for(lambda: audited("force_pull", "gw-a", "applied"), timeout=1.0)
        for action in ("add_pull_source", "delete_pushed_service", "force_pull",
                       "remove_pull_source"):
            assert audited(action, "gw-a", "applied"), action
            assert audited(action, "gw-b", "applied"), action
            assert audited(action, "gw-closed", "denied"), action
