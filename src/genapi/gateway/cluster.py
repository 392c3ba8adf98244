"""The gateway's cluster side: the NATS link, remote calls and config sync together.

Imported only when a gateway joins a cluster (it loads nats-py).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from ..cluster.node import default_node_name
from ..cluster.sync import ConfigSync, NodeDirectory
from ..errors import TransportError
from ..execution.executor import Executor
from ..functions.registry import Registry
from ..relay import LocalBus, RelayHub
from ..relay.nats_bus import NatsRelayBus
from ..relay.nats_store import NatsGroupStore
from ..security import AdminGate
from ..transport.nats.link import Link, Msg
from ..transport.nats.subjects import Subjects
from ..transport.nats.transport import NatsTransport
from .settings import ClusterOptions

__all__ = ["GatewayCluster"]

logger = logging.getLogger("genapi.gateway")


_instances = itertools.count(1)


def _default_name() -> str:
    """``gateway-<host>-<pid>``, then ``-2``, ``-3``… for more gateways in one process:
    a gateway ignores cluster messages that carry its own name (its admin changes
    come back to it), so two with one name would ignore each other."""
    number = next(_instances)
    base = f"gateway-{default_node_name()}"
    return base if number == 1 else f"{base}-{number}"


class GatewayCluster:
    """Owns the gateway's NATS link, the remote transport and the config sync."""

    def __init__(self, registry: Registry, executor: Executor, options: ClusterOptions,
                 admin: AdminGate) -> None:
        self.options = options
        self.name = options.name or _default_name()
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
        self._longpoll: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]] | None = None
        self._longpoll_window = 10.0
        self._forwarded: set[asyncio.Task[None]] = set()

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
            if self._longpoll is not None:
                await self.link.subscribe(self.subjects.longpoll(self.name), self._on_longpoll)
        except Exception:
            logger.exception("cluster start failed")

    # -- long poll across gateways ---------------------------------------------------------

    def serve_longpoll(self, serve: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]],
                       window: float) -> None:
        """Answer long-poll requests other gateways forward for this gateway's sessions."""
        self._longpoll = serve
        self._longpoll_window = window

    async def forward_longpoll(self, owner: str, request: dict[str, Any]) -> dict[str, Any]:
        """Send a long-poll request to the gateway owning its session; a gone owner (or
        an unreachable one) means the session is gone: 410."""
        try:
            reply = await self.link.client().request(
                self.subjects.longpoll(owner), msgspec.json.encode(request),
                timeout=self._longpoll_window + 2.0)
            answer: dict[str, Any] = msgspec.json.decode(reply.data)
            return answer
        except Exception as exc:  # no responders, timeout, NATS away: the client rejoins
            logger.info("long-poll session of gateway %s unreachable: %r", owner, exc)
            return {"status": 410}

    async def _on_longpoll(self, msg: Msg) -> None:
        # A poll is held for up to the window: each request runs in its own task, or one
        # held poll would stall every other request forwarded here.
        if self._longpoll is None or not msg.reply:
            return
        task = asyncio.get_running_loop().create_task(self._answer_longpoll(msg))
        self._forwarded.add(task)
        task.add_done_callback(self._forwarded.discard)

    async def _answer_longpoll(self, msg: Msg) -> None:
        assert self._longpoll is not None
        try:
            request = msgspec.json.decode(msg.data)
            answer = await self._longpoll(request)
        except msgspec.DecodeError:
            answer = {"status": 410}
        try:
            await self.link.respond(msg, msgspec.json.encode(answer))
        except TransportError as exc:  # the forwarding gateway times out and answers 410
            logger.warning("long-poll answer to %s lost: %s", msg.reply, exc)

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
