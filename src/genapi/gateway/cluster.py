"""The gateway's cluster side: the NATS link, remote calls and config sync together.

Imported only when a gateway joins a cluster (it loads nats-py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from ..cluster.node import default_node_name
from ..cluster.sync import ConfigSync, NodeDirectory
from ..execution.executor import Executor
from ..functions.registry import Registry
from ..relay import LocalBus, RelayHub
from ..relay.nats_bus import NatsRelayBus
from ..relay.nats_store import NatsGroupStore
from ..security import AdminGate
from ..transport.nats.link import Link
from ..transport.nats.subjects import Subjects
from ..transport.nats.transport import NatsTransport
from .settings import ClusterOptions

__all__ = ["GatewayCluster"]

logger = logging.getLogger("genapi.gateway")


class GatewayCluster:
    """Owns the gateway's NATS link, the remote transport and the config sync."""

    def __init__(self, registry: Registry, executor: Executor, options: ClusterOptions,
                 admin: AdminGate) -> None:
        self.options = options
        self.name = options.name or f"gateway-{default_node_name()}"
        self.subjects = Subjects(options.prefix)
        self.link = Link(options.nats, name=self.name)
        telemetry = executor.telemetry
        self.directory = NodeDirectory(options.node_grace, telemetry=telemetry)
        self.sync = ConfigSync(
            registry, self.link, name=self.name, subjects=self.subjects,
            push_token=options.push_token, gate=admin, pull=options.pull,
            pull_interval=options.pull_interval, pull_timeout=options.pull_timeout,
            directory=self.directory, telemetry=telemetry,
        )
        self.transport = NatsTransport(self.link, subjects=self.subjects,
                                       stream_window=options.stream_window,
                                       stream_idle=options.stream_idle)
        executor.transport = self.transport
        # Health follows reality: a node heard again (or pushing after a restart) is used at
        # once; a silent one loses its in-flight calls now, not at their timeouts.
        self.directory.listen(up=executor.breakers.reset, down=self.transport.node_down)
        self._hubs: list[RelayHub] = []
        self._starter: asyncio.Task[None] | None = None

    def share_relay(self, hub: RelayHub, *, storage: str = "file") -> None:
        """Move ``hub`` (not yet used) onto the cluster: groups in a NATS key-value
        bucket, messages through a JetStream stream, shared with the other gateways. Its
        history settings carry over; it is closed when the cluster stops."""
        prefix = self.options.prefix
        kept = hub.bus if isinstance(hub.bus, LocalBus) else LocalBus()
        hub.use_backend(
            store=NatsGroupStore(self.link, bucket=prefix.replace(".", "_") + "_relay_groups",
                                 storage=storage),
            bus=NatsRelayBus(self.link, prefix=prefix, storage=storage,
                             history_size=kept.history_size, history_age=kept.history_age),
        )
        self._hubs.append(hub)

    def start(self) -> None:
        """Connect and start syncing in the background (the gateway serves meanwhile)."""
        if self._starter is None:
            self._starter = asyncio.get_running_loop().create_task(self._start())

    async def _start(self) -> None:
        try:
            await self.sync.start()
        except Exception:
            logger.exception("cluster start failed")

    async def ready(self, timeout: float | None = None) -> None:
        """Wait until connected and subscribed."""
        self.start()
        if self._starter is not None:
            async with asyncio.timeout(timeout):
                await asyncio.shield(self._starter)

    async def stop(self) -> None:
        """Stop syncing and disconnect."""
        if self._starter is not None:
            self._starter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._starter
        for hub in self._hubs:  # their cleanups (connections that closed) still need NATS
            await hub.aclose()
        await self.sync.stop()
        await self.link.close()

    def status(self) -> dict[str, Any]:
        """Connection, nodes and pushed versions, for diagnostics."""
        return {
            "name": self.name,
            "connected": self.link.usable,
            "reconnects": self.link.reconnects,
            "nodes": self.directory.snapshot(),
            "versions": dict(self.sync.versions),
            "failed_configs": self.sync.failed.summary(),
        }
