"""``genapi demo --cluster``: nats-server and two service nodes beside the demo gateway."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator

from ..cluster.embedded import EmbeddedNats
from ..gateway.settings import ClusterOptions

__all__ = ["CLUSTER_HELP", "DEMO_PUSH_TOKEN", "running_cluster"]

DEMO_PUSH_TOKEN = "demo-push-token"
NODE_NAMES = ("node-a", "node-b")

CLUSTER_HELP = """\
Cluster: nats-server at {nats}; nodes {nodes} serve data_service:
  get_data (retry and fail-over across both nodes; the answer names the node),
  export_data (async), watch (stream).

  curl {host}:{port}/api/data_service/get_data --json '{{"key":"k1"}}'
""".replace("{nodes}", " and ".join(NODE_NAMES))


@contextlib.contextmanager
def running_cluster(node_names: tuple[str, ...] = NODE_NAMES) -> Iterator[ClusterOptions]:
    """Run nats-server and the node processes; stop all of them on exit."""
    with EmbeddedNats() as server:
        nodes = [
            subprocess.Popen([
                sys.executable, "-m", "genapi", "node",
                "genapi.demo.cluster_services:data_service",
                "--nats", server.url, "--name", name, "--push-token", DEMO_PUSH_TOKEN,
                "--log-level", "warning",
            ])
            for name in node_names
        ]
        try:
            yield ClusterOptions(nats=server.url, push_token=DEMO_PUSH_TOKEN, node_grace=3.0)
        finally:
            for node in nodes:
                if node.poll() is None:
                    node.send_signal(signal.SIGTERM)  # nodes drain, then exit
            for node in nodes:
                try:
                    node.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    node.kill()
