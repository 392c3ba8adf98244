"""Diagnostics of a gateway in a real cluster: nodes, pushed versions, refused configs."""

from __future__ import annotations

import json

import pytest

from genapi import Diagnostics, Gateway, ServiceConfig
from genapi.cluster.embedded import EmbeddedNats
from genapi.cluster.node import Node
from tests.integration import cluster_app
from tests.integration.conftest import TOKEN, Nodes, wait_for

pytestmark = pytest.mark.integration


async def test_cluster_view_and_remote_call_flow(gateway: Gateway, nodes: Nodes,
                                                 nats_server: EmbeddedNats) -> None:
    """Pushed services, live nodes, a remote flow, failed configs; no token anywhere."""
    nodes.start("n1")
    assert gateway.cluster is not None
    cluster = gateway.cluster
    await wait_for(lambda: gateway.registry.get_route("data_service", "get_data") is not None
                   and cluster.directory.alive("n1"))
    diag = Diagnostics(gateway)
    view = diag.cluster()
    assert view["enabled"] is True and view["connected"] is True
    assert [s["service"] for s in view["services"]] == ["data_service"]
    assert view["services"][0]["version"] == cluster.sync.versions["data_service"]
    assert view["nodes"]["n1"]["alive"] is True
    assert "data_service" in view["nodes"]["n1"]["services"]
    assert view["health"] == {"nodes": 1, "alive": 1}
    assert diag.health()["status"] == "ok"

    flow = diag.call_flow("data_service", "get_data")
    assert flow["local"] is False
    steps = {s["phase"]: s for s in flow["steps"]}
    assert steps["node_selection"]["active"] is True
    assert "n1" in steps["node_selection"]["reachable"]

    intruder = Node([cluster_app.data_service], nats=nats_server.url, name="bad",
                    push_token="wrong-" + TOKEN, push_wait=0.5)
    await intruder.start()
    try:  # refused for its token: not even logged as a failed config
        await intruder.push("data_service")
    finally:
        await intruder.drain()
    assert diag.failed_configs()["summary"]["total"] == 0
    cluster.sync.versions.pop("data_service")
    assert await cluster.sync.pull(ServiceConfig(service="data_service",
                                                 nodes=["nobody"])) == "failed"
    failed = diag.failed_configs()
    assert failed["summary"]["total"] == 1
    assert failed["entries"][0]["service"] == "data_service"
    assert failed["entries"][0]["source"] == "pull"
    dumped = json.dumps(diag.snapshot())
    assert "wrong-" + TOKEN not in dumped
    assert TOKEN not in dumped
