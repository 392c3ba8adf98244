"""Config distribution and node health on the gateway.

**Push.** A node pushes each service's config (all its functions at one
``config_version``). The gateway applies it only if the admin gate allows ``push_config``,
the push token matches (constant-time comparison) and the version is new for the service
(pushes are idempotent; ``force`` re-applies; so does a push after every function of the
service was deleted from the registry, or after :meth:`ConfigSync.delete_pushed_service`). It
applies atomically: every function compiles, or nothing changes and the reasons go to the
failed-configs log. Functions that disappeared from the service are removed. Every node
whose push of a service is accepted (or skipped: same version) becomes one of its nodes; a
refused push (wrong token, admin gate, invalid configs) is logged as a WARNING naming the
node and the reason, and the node is not routed to for that service.

**Verify.** ``matched`` / ``mismatch`` (with the stored version) / ``not_found``.

**Pull.** For each pull source (a :class:`~genapi.ServiceConfig`, configured or added at
run time with :meth:`ConfigSync.add_pull`) the gateway asks a node for the service's
version every ``pull_interval``; only when it changed does it pull the full config and
apply it like a push (failures are logged, not fatal). When every source fails, the next
round waits ``pull_interval * 2**failures`` (at most 300 s). One scheduler runs the
rounds: adding a source or :meth:`ConfigSync.force_pull` runs a pull now without starting
another periodic chain.

**Health.** Nodes send heartbeats; a node not heard from within ``grace_period`` leaves the
node lists of its services, and comes back with its next heartbeat. A draining node says
it leaves and is taken out at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ..errors import ConfigError, ConfigSourceNotFound, GenApiError, TransportError
from ..functions.config import FunConfig, PushConfig, ServiceConfig, push_config_problems
from ..functions.registry import Registry
from ..functions.routes import Route, RouteKey
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

    def remove_member(self, service: str, node: str) -> None:
        """``node`` no longer serves ``service`` (its push was refused)."""
        members = self._members.get(service, [])
        if node in members:
            members.remove(node)
        state = self._nodes.get(node)
        if state is not None:
            state.services.discard(service)

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
        #: What was pushed, by service (the last accepted push; the token is not kept).
        self.pushed: dict[str, PushConfig] = {}
        # The route keys a push or pull registered, by service: a same-version push or
        # pull is skipped only while some of them are still registered (an operator may
        # have deleted the service since; then the same version applies again).
        self._applied: dict[str, frozenset[RouteKey]] = {}
        # (service, node) pairs that joined through a push: a later refused push from
        # the same node takes it out again (pulled pairs stay: the gateway chose them).
        self._pushed_members: set[tuple[str, str]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._started = False
        self._pull_task: asyncio.Task[None] | None = None
        self._pull_wake: asyncio.Event | None = None
        self._pull_failures = 0

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
        self._started = True
        if self.pull_configs:
            self._ensure_pull_loop()

    async def stop(self) -> None:
        """Stop the background loops."""
        self._started = False
        self._pull_task = None
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- push and verify ----------------------------------------------------------------

    def apply_push(self, push: PushMessage) -> PushResult:
        """Apply a node's push (see the module docs) and say what happened."""
        refused = self._refusal(push.push_token)
        if refused is not None:
            return self._push_result(push, "rejected", [refused])
        if not push.force and self._current(push.service, push.config_version):
            self._member(push.service, push.node)
            known = self.pushed.get(push.service)
            if known is not None and push.node not in known.nodes:
                self.pushed[push.service] = dataclasses.replace(
                    known, nodes=(*known.nodes, push.node))
            return self._push_result(push, "skipped", ["version matches"])
        problems, routes = self._compile_data(push.service, push.fun_configs, source="push",
                                              node=push.node)
        if problems:
            return self._push_result(push, "rejected", problems)
        self._install(push.service, routes, push.config_version)
        self.pushed[push.service] = PushConfig(
            service=push.service, nodes=self._pushers(push.service, push.node),
            config_version=push.config_version,
            fun_configs=tuple(r.config for r in routes), pull=push.pull)
        self._member(push.service, push.node)
        if push.pull:
            self.add_pull(self.pushed[push.service].to_service_config(), now=False)
        return self._push_result(push, "accepted", [])

    def push_config(self, push: PushConfig, *, force: bool = False) -> PushResult:
        """Apply ``push`` in this process, as a node's push is applied (token, gate,
        version, atomic). Its functions may be local (with a function) or remote (run on
        ``push.nodes``, which become the service's nodes)."""
        # The message only describes the push for the log and telemetry (its count).
        message = PushMessage(service=push.service, node=",".join(push.nodes),
                              config_version=push.config_version,
                              fun_configs=[{"request_type": getattr(f, "request_type", "?")}
                                           for f in push.fun_configs],
                              push_token=push.push_token, force=force, pull=push.pull)
        problems = push_config_problems(push)
        if problems:
            return self._push_result(message, "rejected", problems)
        refused = self._refusal(push.push_token)
        if refused is not None:
            return self._push_result(message, "rejected", [refused])
        if not force and self._current(push.service, push.config_version):
            return self._push_result(message, "skipped", ["version matches"])
        problems, routes = self._compile(
            push.service, [({"request_type": f.request_type}, f) for f in push.fun_configs],
            source="push", node=None)
        if problems:
            return self._push_result(message, "rejected", problems)
        for node in push.nodes:
            self.directory.add_member(push.service, node)
        self._install(push.service, routes, push.config_version)
        self.pushed[push.service] = dataclasses.replace(push, push_token=None)
        if push.pull:
            self.add_pull(push.to_service_config(), now=False)
        return self._push_result(message, "accepted", [])

    def _refusal(self, token: str | None) -> str | None:
        if not self.gate.allows(AdminAction.PUSH_CONFIG):
            return "admin action denied: push_config"
        if not secrets_equal(self.push_token, token):
            return "invalid push token"
        return None

    def _current(self, service: str, version: str | None) -> bool:
        """True when ``version`` of ``service`` is applied and some of its functions are
        still registered. Once they are all gone (``registry.delete_service``) the same
        version applies again; a single version an operator deleted stays deleted until
        the node's configs change (a re-push after every gateway restart must not undo
        it)."""
        if version is None or self.versions.get(service) != version:
            return False
        keys = self._applied.get(service)
        return keys is not None and any(
            self.registry.get_route(*key) is not None for key in keys)

    def _member(self, service: str, node: str) -> None:
        self.directory.add_member(service, node)
        self.directory.seen(node, renewed=True)
        self._pushed_members.add((service, node))

    def _pushers(self, service: str, node: str) -> tuple[str, ...]:
        others = [n for (s, n) in self._pushed_members if s == service and n != node]
        return (*sorted(others), node)

    def _compile_data(self, service: str, fun_configs: list[dict[str, Any]], *,
                      source: str, node: str | None) -> tuple[list[str], list[Route]]:
        nodes = self.directory.live_nodes(service)
        items: list[tuple[dict[str, Any], FunConfig | Exception]] = []
        for data in fun_configs:
            try:
                items.append((data, import_config(data, service=service, nodes=nodes)))
            except (TypeError, ValueError, GenApiError) as exc:
                items.append((data, exc))
        return self._compile(service, items, source=source, node=node)

    def _compile(self, service: str,
                 items: Sequence[tuple[dict[str, Any], FunConfig | Exception]], *,
                 source: str, node: str | None) -> tuple[list[str], list[Route]]:
        routes: list[Route] = []
        problems: list[str] = []
        for data, config in items:
            try:
                if isinstance(config, Exception):
                    raise config
                routes.append(self.registry.compile(config))
            except (TypeError, ValueError, GenApiError) as exc:
                reasons = exc.errors if isinstance(exc, ConfigError) else [str(exc)]
                self.failed.record(service=service, reasons=reasons, source=source,  # type: ignore[arg-type]
                                   node=node, config=dict(data))
                problems.extend(f"{data.get('request_type', '?')}: {r}" for r in reasons)
        return problems, routes

    def _install(self, service: str, routes: list[Route], version: str) -> None:
        self.registry.replace_routes(service, routes)
        self._applied[service] = frozenset(r.key for r in routes)
        self.versions[service] = version

    def _push_result(self, push: PushMessage, status: str, reasons: list[str]) -> PushResult:
        if status == "rejected":
            # Loud: an operator must see that a node's functions are not routed to.
            logger.warning("%s refused the push of %s (version %s) from node %s: %s; "
                           "calls of %s are not routed to that node", self.name,
                           push.service, push.config_version, push.node or "?",
                           "; ".join(reasons), push.service)
            if (push.service, push.node) in self._pushed_members:
                self._pushed_members.discard((push.service, push.node))
                self.directory.remove_member(push.service, push.node)
        if self.telemetry.has_handlers(CONFIG_PUSH):
            self.telemetry.emit(CONFIG_PUSH, {"count": len(push.fun_configs)},
                                {"service": push.service, "version": push.config_version,
                                 "node": push.node, "status": status})
        return PushResult(gateway=self.name, status=status, reasons=reasons)

    # -- pushed services ------------------------------------------------------------------

    def get_pushed_config(self, service: str) -> PushConfig | None:
        """The last accepted push of ``service`` (without its token), or None."""
        return self.pushed.get(service)

    def get_all_pushed_services(self) -> dict[str, str]:
        """``{service: config_version}`` of every pushed service."""
        return {service: push.config_version for service, push in sorted(self.pushed.items())}

    def delete_pushed_service(self, service: str, *, remove_functions: bool = False) -> int:
        """Forget ``service``'s push: its record and stored version (so the same version
        pushed again applies), the pull source it registered; with ``remove_functions``
        its functions leave the registry too (else they stay, as pushed). Returns how many
        functions were removed; raises :class:`~genapi.errors.ConfigSourceNotFound` when
        nothing of ``service`` was pushed. Needs ``push_config`` (and ``manage_functions``
        to remove functions) of the admin gate."""
        self.gate.require(AdminAction.PUSH_CONFIG)
        if remove_functions:
            self.gate.require(AdminAction.MANAGE_FUNCTIONS)
        pushed = self.pushed.pop(service, None)
        if pushed is None:
            raise ConfigSourceNotFound(f"no pushed config for service {service!r}")
        self.versions.pop(service, None)
        self._applied.pop(service, None)
        if pushed.pull:
            self.pull_configs.pop(service, None)
        return self.registry.delete_service(service) if remove_functions else 0

    def verify(self, service: str, config_version: str) -> VerifyResult:
        """matched / mismatch (with the stored version) / not_found."""
        stored = self.versions.get(service)
        if stored is None:
            return VerifyResult(gateway=self.name, status="not_found")
        if stored == config_version:
            return VerifyResult(gateway=self.name, status="matched", stored_version=stored)
        return VerifyResult(gateway=self.name, status="mismatch", stored_version=stored)

    async def verify_node(self, service: str, node: str) -> dict[str, Any]:
        """Ask ``node`` which config version of ``service`` it serves and compare it with
        the version this gateway applied: ``status`` is ``matched``, ``mismatch``,
        ``not_found`` (this gateway has no config of ``service``) or ``unreachable`` (the
        node did not answer, with its ``error``)."""
        stored = self.versions.get(service)
        result: dict[str, Any] = {"service": service, "node": node,
                                  "gateway_version": stored, "node_version": None}
        try:
            answer = await self._ask([node], self.subjects.version, service)
        except GenApiError as exc:
            return {**result, "status": "unreachable", "error": str(exc)}
        result["node_version"] = answer.config_version
        if stored is None:
            return {**result, "status": "not_found"}
        return {**result, "status": "matched" if stored == answer.config_version
                else "mismatch"}

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

    def add_pull(self, source: ServiceConfig, *, now: bool = True) -> None:
        """Pull ``source.service`` from ``source.nodes`` from now on (replacing a source of
        the same service); with ``now`` the first pull runs at once, else at the next
        round. Needs the admin gate's ``push_config``, as every change below does."""
        self.gate.require(AdminAction.PUSH_CONFIG)
        self.pull_configs[source.service] = source
        if self._started:
            self._ensure_pull_loop()
            if now and self._pull_wake is not None:
                self._pull_wake.set()

    def remove_pull(self, service: str) -> ServiceConfig:
        """Stop pulling ``service``: its source and pulled version are forgotten (the
        functions it registered stay; delete them from the registry to remove them).
        Raises :class:`~genapi.errors.ConfigSourceNotFound` for an unknown service."""
        self.gate.require(AdminAction.PUSH_CONFIG)
        source = self.pull_configs.pop(service, None)
        if source is None:
            raise ConfigSourceNotFound(f"no pull source for service {service!r}")
        if service not in self.pushed:
            self.versions.pop(service, None)
            self._applied.pop(service, None)
        return source

    async def force_pull(self, service: str | None = None) -> dict[str, str]:
        """Pull now, ignoring stored versions: ``service``'s source, or every source.
        ``{service: "applied" | "failed"}``."""
        self.gate.require(AdminAction.PUSH_CONFIG)
        if service is not None and service not in self.pull_configs:
            raise ConfigSourceNotFound(f"no pull source for service {service!r}")
        sources = ([self.pull_configs[service]] if service is not None
                   else list(self.pull_configs.values()))
        return await self._pull_many(sources, force=True)

    async def pull_all(self) -> dict[str, str]:
        """One round: every source, in parallel; ``{service: status}``."""
        return await self._pull_many(list(self.pull_configs.values()), force=False)

    async def _pull_many(self, sources: list[ServiceConfig], *,
                         force: bool) -> dict[str, str]:
        statuses = await asyncio.gather(*(self.pull(s, force=force) for s in sources))
        return {s.service: status for s, status in zip(sources, statuses, strict=True)}

    def _ensure_pull_loop(self) -> None:
        if self._pull_task is None or self._pull_task.done():
            self._pull_wake = asyncio.Event()
            self._pull_task = self._spawn(self._pull_loop(self._pull_wake))

    def pull_delay(self) -> float:
        """Seconds until the next round: ``pull_interval``, doubled per round in which
        every source failed, at most 300 s (at least ``pull_interval``)."""
        if not self._pull_failures:
            return self.pull_interval
        backoff = self.pull_interval * 2 ** min(self._pull_failures, 16)
        return float(max(self.pull_interval, min(backoff, 300.0)))

    async def _pull_loop(self, wake: asyncio.Event) -> None:
        while True:
            wake.clear()
            statuses = await self.pull_all()
            if statuses and all(status == "failed" for status in statuses.values()):
                self._pull_failures += 1
            else:
                if self._pull_failures:
                    logger.info("pull recovered after %d failed round(s)", self._pull_failures)
                self._pull_failures = 0
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.pull_delay()):
                    await wake.wait()

    async def pull(self, service_config: ServiceConfig, *, force: bool = False) -> str:
        """Pull one service now: "applied", "skipped" or "failed" (``force``: no
        version check)."""
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
            answer = None if force else await self._ask(nodes, self.subjects.version, service)
            if answer is not None and self._current(service, answer.config_version):
                status, version = "skipped", answer.config_version
            else:
                full = await self._ask(nodes, self.subjects.pull, service)
                version = full.config_version
                problems, routes = self._compile_data(service, full.fun_configs,
                                                      source="pull", node=None)
                if not problems and version is not None:
                    self._install(service, routes, version)
                    known = self.pushed.get(service)
                    if known is not None:  # what `pushed show` reports is what now serves
                        self.pushed[service] = dataclasses.replace(
                            known, config_version=version,
                            fun_configs=tuple(r.config for r in routes))
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
