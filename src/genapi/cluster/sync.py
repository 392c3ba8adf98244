"""Config distribution and node health on the gateway.

**Push.** A node pushes each service's config (all its functions at one
``config_version``). The gateway applies it only if the admin gate allows ``push_config``,
the push token matches (constant-time comparison) and the version is new for the service
(pushes are idempotent; ``force`` re-applies). It applies atomically: every function
compiles, or nothing changes and the reasons go to the failed-configs log. Functions that
disappeared from the service are removed. Every node that pushes a service (at whatever
version) becomes one of its nodes.

**Verify.** ``matched`` / ``mismatch`` (with the stored version) / ``not_found``.

**Pull.** For each configured :class:`~genapi.ServiceConfig` the gateway asks a node for
the service's version every ``pull_interval``; only when it changed does it pull the full
config and apply it like a push (failures are logged, not fatal).

**Health.** Nodes send heartbeats; a node not heard from within ``grace_period`` leaves the
node lists of its services, and comes back with its next heartbeat. A draining node says
it leaves and is taken out at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ..errors import ConfigError, GenApiError, TransportError
from ..functions.config import ServiceConfig
from ..functions.registry import Registry
from ..functions.routes import Route
from ..security import AdminAction, AdminGate, secrets_equal
from ..telemetry.events import Telemetry, default_telemetry, register_event
from ..transport.nats.link import Link, Msg
from ..transport.nats.subjects import Subjects
from ..transport.nats.wire import (
    ConfigsMessage,
    HeartbeatMessage,
    PullMessage,
    PushMessage,
    PushResult,
    VerifyMessage,
    VerifyResult,
    decode,
    encode,
)
from .codec import import_config
from .failed import FailedConfigs

__all__ = ["ConfigSync", "NodeDirectory"]

logger = logging.getLogger("genapi.sync")

CONFIG_PUSH = register_event("config.push", ("count",), ("service", "version", "node", "status"),
                             "A node's config push was applied, skipped or rejected.")
CONFIG_PULL_START = register_event("config.pull.start", ("system_time",), ("service",),
                                   "A pull of a service's config started.")
CONFIG_PULL_STOP = register_event("config.pull.stop", ("duration_us", "count"),
                                  ("service", "version", "status"),
                                  "A pull finished: applied, skipped (same version) or failed.")
NODE_UP = register_event("node.up", (), ("node",), "A node was heard from (first or again).")
NODE_DOWN = register_event("node.down", (), ("node", "reason"),
                           "A node left, or was silent longer than the grace period.")


UpListener = Callable[[str], object]
DownListener = Callable[[str, str], object]


@dataclass
class _NodeState:
    last_seen: float
    services: set[str] = field(default_factory=set)
    up: bool = True


class NodeDirectory:
    """Which nodes serve which service, and which are alive (heard within the grace)."""

    def __init__(self, grace_period: float = 5.0, *, clock: Callable[[], float] = time.monotonic,
                 telemetry: Telemetry | None = None) -> None:
        self.grace_period = grace_period
        self.clock = clock
        self.telemetry = telemetry if telemetry is not None else default_telemetry
        self._nodes: dict[str, _NodeState] = {}
        self._members: dict[str, list[str]] = {}
        self._up: list[UpListener] = []
        self._down: list[DownListener] = []

    def listen(self, *, up: UpListener | None = None, down: DownListener | None = None) -> None:
        """Call ``up(node)`` when a node is heard from after silence, first or renewed (a
        config push: a restart), and ``down(node, reason)`` when it leaves (``"left"``: it
        drains, in-flight work still finishes) or goes silent (``"silent"``: presumed
        dead)."""
        if up is not None:
            self._up.append(up)
        if down is not None:
            self._down.append(down)

    def seen(self, node: str, services: Iterable[str] = (), *, renewed: bool = False) -> None:
        """``node`` is alive (and serves ``services``); ``renewed`` when it pushed its
        configs (it may have restarted within the grace period)."""
        state = self._nodes.get(node)
        came_up = state is None or not self.alive(node)
        if state is None:
            state = self._nodes[node] = _NodeState(self.clock())
        state.last_seen = self.clock()
        state.up = True
        if came_up:
            self.telemetry.emit(NODE_UP, {}, {"node": node})
        if came_up or renewed:
            _tell(self._up, node)
        for service in services:
            self.add_member(service, node)

    def add_member(self, service: str, node: str) -> None:
        """Record that ``node`` serves ``service``."""
        members = self._members.setdefault(service, [])
        if node not in members:
            members.append(node)
        state = self._nodes.get(node)
        if state is None:
            self.seen(node, ())
            state = self._nodes[node]
        state.services.add(service)

    def left(self, node: str) -> None:
        """``node`` is draining: out of every node list now."""
        state = self._nodes.get(node)
        if state is not None and state.up:
            state.up = False
            self._went_down(node, "left")

    def alive(self, node: str) -> bool:
        """Heard from within the grace period and not gone."""
        state = self._nodes.get(node)
        return state is not None and state.up and (
            self.clock() - state.last_seen <= self.grace_period)

    def nodes_for(self, service: str) -> list[str]:
        """The live nodes of ``service``, in the order they joined."""
        return [n for n in self._members.get(service, []) if self.alive(n)]

    def live_nodes(self, service: str) -> Callable[[], Sequence[str]]:
        """A callable for a FunConfig's ``nodes``: resolved on every call."""
        return lambda: self.nodes_for(service)

    def check(self) -> None:
        """Report nodes that went silent (telemetry); called periodically."""
        for node, state in list(self._nodes.items()):
            if state.up and not self.alive(node):
                state.up = False
                self._went_down(node, "silent")

    def _went_down(self, node: str, reason: str) -> None:
        self.telemetry.emit(NODE_DOWN, {}, {"node": node, "reason": reason})
        _tell(self._down, node, reason)

    def snapshot(self) -> dict[str, Any]:
        """Nodes with their liveness and services, for diagnostics."""
        now = self.clock()
        return {
            node: {"alive": self.alive(node), "services": sorted(state.services),
                   "seen_ago": round(now - state.last_seen, 3)}
            for node, state in self._nodes.items()
        }


def _tell(listeners: Sequence[Callable[..., object]], *args: str) -> None:
    for listener in listeners:
        try:
            listener(*args)
        except Exception:  # one listener's bug must not hide a node's change from the rest
            logger.exception("node listener %r failed", listener)


class ConfigSync:
    """The gateway's side of config distribution (see the module docs)."""

    def __init__(
        self,
        registry: Registry,
        link: Link,
        *,
        name: str,
        subjects: Subjects | None = None,
        push_token: str | None = None,
        gate: AdminGate | None = None,
        pull: Iterable[ServiceConfig] = (),
        pull_interval: float = 30.0,
        pull_timeout: float = 5.0,
        directory: NodeDirectory | None = None,
        failed: FailedConfigs | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.registry = registry
        self.link = link
        self.name = name
        self.subjects = subjects or Subjects()
        self.push_token = push_token
        self.gate = gate if gate is not None else AdminGate()
        self.pull_configs = {sc.service: sc for sc in pull}
        self.pull_interval = pull_interval
        self.pull_timeout = pull_timeout
        self.telemetry = telemetry if telemetry is not None else registry.telemetry
        self.directory = directory or NodeDirectory(telemetry=self.telemetry)
        self.failed = failed or FailedConfigs()
        self.versions: dict[str, str] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Subscribe, ask nodes to push, start pulling and health checks."""
        await self.link.ready()
        s = self.subjects
        await self.link.subscribe(s.push, self._on_push)
        await self.link.subscribe(s.verify, self._on_verify)
        await self.link.subscribe(s.heartbeat, self._on_heartbeat)
        await self.link.subscribe(s.leave, self._on_leave)
        with contextlib.suppress(TransportError):
            await self.link.publish(s.config_request, b"{}")
        self._spawn(self._health_loop())
        if self.pull_configs:
            self._spawn(self._pull_loop())

    async def stop(self) -> None:
        """Stop the background loops."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- push and verify ----------------------------------------------------------------

    def apply_push(self, push: PushMessage) -> PushResult:
        """Apply a push (see the module docs) and say what happened."""
        if not self.gate.allows(AdminAction.PUSH_CONFIG):
            return self._push_result(push, "rejected", ["admin action denied: push_config"])
        if not secrets_equal(self.push_token, push.push_token):
            return self._push_result(push, "rejected", ["invalid push token"])
        self.directory.add_member(push.service, push.node)
        self.directory.seen(push.node, renewed=True)
        if not push.force and self.versions.get(push.service) == push.config_version:
            return self._push_result(push, "skipped", ["version matches"])
        problems = self.apply(push.service, push.fun_configs, source="push", node=push.node)
        if problems:
            return self._push_result(push, "rejected", problems)
        self.versions[push.service] = push.config_version
        return self._push_result(push, "accepted", [])

    def apply(self, service: str, fun_configs: list[dict[str, Any]], *, source: str,
              node: str | None) -> list[str]:
        """Replace ``service``'s functions with ``fun_configs`` atomically; the problems."""
        nodes = self.directory.live_nodes(service)
        routes: list[Route] = []
        problems: list[str] = []
        for data in fun_configs:
            try:
                routes.append(self.registry.compile(
                    import_config(data, service=service, nodes=nodes)))
            except (TypeError, ValueError, GenApiError) as exc:
                reasons = exc.errors if isinstance(exc, ConfigError) else [str(exc)]
                self.failed.record(service=service, reasons=reasons, source=source,  # type: ignore[arg-type]
                                   node=node, config=dict(data))
                problems.extend(f"{data.get('request_type', '?')}: {r}" for r in reasons)
        if problems:
            return problems
        self.registry.replace_routes(service, routes)
        return []

    def _push_result(self, push: PushMessage, status: str, reasons: list[str]) -> PushResult:
        if self.telemetry.has_handlers(CONFIG_PUSH):
            self.telemetry.emit(CONFIG_PUSH, {"count": len(push.fun_configs)},
                                {"service": push.service, "version": push.config_version,
                                 "node": push.node, "status": status})
        return PushResult(gateway=self.name, status=status, reasons=reasons)

    def verify(self, service: str, config_version: str) -> VerifyResult:
        """matched / mismatch (with the stored version) / not_found."""
        stored = self.versions.get(service)
        if stored is None:
            return VerifyResult(gateway=self.name, status="not_found")
        if stored == config_version:
            return VerifyResult(gateway=self.name, status="matched", stored_version=stored)
        return VerifyResult(gateway=self.name, status="mismatch", stored_version=stored)

    async def _on_push(self, msg: Msg) -> None:
        try:
            push = decode(msg.data, PushMessage)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            result = PushResult(gateway=self.name, status="rejected",
                                reasons=[f"invalid push: {exc}"])
        else:
            result = self.apply_push(push)
        if msg.reply:
            await self._answer(msg, encode(result), "push")

    async def _on_verify(self, msg: Msg) -> None:
        try:
            query = decode(msg.data, VerifyMessage)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return
        if msg.reply:
            await self._answer(msg, encode(self.verify(query.service, query.config_version)),
                               "verify")

    async def _answer(self, msg: Msg, payload: bytes, what: str) -> None:
        try:
            await self.link.respond(msg, payload)
        except TransportError as exc:  # the node waits push_wait, then goes on without us
            logger.warning("%s: could not answer a %s: %s", self.name, what, exc)

    # -- health -------------------------------------------------------------------------

    async def _on_heartbeat(self, msg: Msg) -> None:
        with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
            # Liveness only: a node serves a service once its push was accepted (or the
            # service was pulled from it), never because its heartbeat names it.
            self.directory.seen(decode(msg.data, HeartbeatMessage).node)

    async def _on_leave(self, msg: Msg) -> None:
        with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
            self.directory.left(decode(msg.data, HeartbeatMessage).node)

    async def _health_loop(self) -> None:
        # Checked often: a node's death is noticed within a quarter of the grace period.
        while True:
            await asyncio.sleep(max(0.05, min(0.25, self.directory.grace_period / 4)))
            self.directory.check()

    # -- pull ---------------------------------------------------------------------------

    async def _pull_loop(self) -> None:
        while True:
            for service_config in list(self.pull_configs.values()):
                await self.pull(service_config)
            await asyncio.sleep(self.pull_interval)

    async def pull(self, service_config: ServiceConfig) -> str:
        """Pull one service now: "applied", "skipped" or "failed"."""
        service = service_config.service
        started = time.perf_counter_ns()
        self.telemetry.emit(CONFIG_PULL_START, {"system_time": time.time_ns()},
                            {"service": service})
        status, count, version = "failed", 0, None
        try:
            nodes = list(service_config.nodes() if callable(service_config.nodes)
                         else service_config.nodes)
            for node in nodes:
                self.directory.add_member(service, node)
            answer = await self._ask(nodes, self.subjects.version, service)
            version = answer.config_version
            if version is not None and version == self.versions.get(service):
                status = "skipped"
            else:
                full = await self._ask(nodes, self.subjects.pull, service)
                problems = self.apply(service, full.fun_configs, source="pull", node=None)
                if not problems and full.config_version is not None:
                    self.versions[service] = full.config_version
                    status, count = "applied", len(full.fun_configs)
        except GenApiError as exc:
            self.failed.record(service=service, reasons=[str(exc)], source="pull")
            logger.warning("pull of %s failed: %s", service, exc)
        self.telemetry.emit(
            CONFIG_PULL_STOP,
            {"duration_us": (time.perf_counter_ns() - started) // 1000, "count": count},
            {"service": service, "version": version, "status": status},
        )
        return status

    async def _ask(self, nodes: list[str], subject_of: Callable[[str], str],
                   service: str) -> ConfigsMessage:
        last: str = "no nodes configured"
        for node in nodes:
            try:
                reply = await self.link.client().request(
                    subject_of(node), encode(PullMessage(service=service)),
                    timeout=self.pull_timeout)
                answer: ConfigsMessage = decode(reply.data, ConfigsMessage)
            except Exception as exc:  # nats errors, bad answers: try the next node
                last = f"{node}: {exc!r}"
                continue
            if answer.error is None:
                self.directory.seen(node)
                return answer
            last = f"{node}: {answer.error}"
        raise TransportError(f"pull of {service} failed ({last})")
