"""A node whose push is refused (wrong ``--push-token``) is not routed to, and says so."""

from __future__ import annotations

import logging
import re
import signal

import pytest

from genapi import Gateway
from tests.integration.conftest import Nodes, wait_for
from tests.integration.test_cluster import req, served

pytestmark = pytest.mark.integration


def refusals(caplog: pytest.LogCaptureFixture, node: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records
            if "refused the push" in r.getMessage() and f"node {node}:" in r.getMessage()]


async def test_node_with_a_wrong_push_token_is_not_routed_to(
        gateway: Gateway, nodes: Nodes, caplog: pytest.LogCaptureFixture) -> None:
    """The gateway logs a WARNING naming the node and the reason and routes nothing to it;
    the node logs ERRORs, never says it serves the service, and keeps pushing (backoff)."""
    caplog.set_level(logging.WARNING, logger="genapi.sync")
    nodes.start("good-node")
    await wait_for(lambda: served(gateway, "good-node"))
    bad = nodes.start("bad-node", token="not-the-token")
    await wait_for(lambda: refusals(caplog, "bad-node"))
    [first, *_] = refusals(caplog, "bad-node")
    assert first.levelno == logging.WARNING
    assert "invalid push token" in first.getMessage()
    assert gateway.cluster is not None
    await wait_for(lambda: gateway.cluster.directory.alive("bad-node"))  # type: ignore[union-attr]
    assert gateway.cluster.directory.nodes_for("data_service") == ["good-node"]
    for i in range(30):
        response = await gateway.executor.execute(req("get_data", f"r{i}", key=str(i)))
        assert response is not None and response.success, response
        assert response.result["node"] == "good-node"
    await wait_for(lambda: len(refusals(caplog, "bad-node")) >= 2)  # pushed again
    assert bad.poll() is None  # still running, retrying
    assert gateway.cluster.directory.nodes_for("data_service") == ["good-node"]
    bad.send_signal(signal.SIGTERM)
    _, stderr = bad.communicate(timeout=15)
    log = stderr.decode()
    assert re.search(r"ERROR genapi\.node: node bad-node: gateway \S+: invalid push token", log)
    assert "pushing data_service again in" in log
    assert not re.search(r"serving data_service", log), log
