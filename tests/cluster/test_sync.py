"""Config push and the node directory, without a NATS server."""

from __future__ import annotations

import types
from typing import Any

import pytest

from genapi import Registry, Service, ServiceConfig
from genapi.cluster.codec import export_route, import_config
from genapi.cluster.failed import FailedConfigs
from genapi.cluster.sync import ConfigSync, NodeDirectory
from genapi.security import AdminGate
from genapi.telemetry.events import Telemetry
from genapi.transport.nats.link import Link
from genapi.transport.nats.subjects import Subjects
from genapi.transport.nats.wire import ConfigsMessage, HeartbeatMessage, PushMessage, encode

svc = Service("data_service", retry=2, choose_node_mode=("hash", "key"))


@svc.function(check_permission="any_authenticated")
async def get_data(key: str, limit: int = 10) -> dict[str, Any]:
    return {"key": key}


@svc.function(response_type="stream", version="2.0.0")
async def watch(count: int):  # type: ignore[no-untyped-def]
    yield count


def exported() -> list[dict[str, Any]]:
    node_registry = Registry(telemetry=Telemetry())
    return [export_route(r) for r in node_registry.add_service(svc)]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make_sync(token: str | None = "t", gate: AdminGate | None = None,
              clock: Clock | None = None) -> ConfigSync:
    tel = Telemetry()
    directory = NodeDirectory(2.0, clock=clock or Clock(), telemetry=tel)
    return ConfigSync(Registry(telemetry=tel), Link("nats://unused", name="g"), name="g",
                      push_token=token, gate=gate or AdminGate({"push_config"}),
                      directory=directory, failed=FailedConfigs(), telemetry=tel)


def push(version: str = "v1", token: str | None = "t", node: str = "n1",
         configs: list[dict[str, Any]] | None = None, force: bool = False) -> PushMessage:
    return PushMessage(service="data_service", node=node, config_version=version,
                       fun_configs=exported() if configs is None else configs,
                       push_token=token, force=force)


def test_export_and_import_round_trip() -> None:
    """Exported configs carry explicit arg specs and import as remote configs."""
    data = exported()
    get = next(d for d in data if d["request_type"] == "get_data")
    assert get["arg_types"] == {"key": {"type": "string"},
                                "limit": {"type": "num", "default_value": 10}}
    assert get["choose_node_mode"] == ["hash", "key"]
    config = import_config(get, service="data_service", nodes=lambda: ["n1"])
    assert config.function is None
    assert config.choose_node_mode == ("hash", "key")
    assert config.check_permission == "any_authenticated"
    route = Registry(telemetry=Telemetry()).add(config)
    assert route.validator.bind({"key": "k"}) == (("k", 10), {})
    with pytest.raises(ValueError, match="unknown config fields: bogus"):
        import_config({**get, "bogus": 1}, service="data_service", nodes=list)


def test_push_applies_and_is_idempotent() -> None:
    """A push is accepted once; the same version again is skipped; force re-applies."""
    sync = make_sync()
    assert sync.apply_push(push()).status == "accepted"
    assert sync.registry.get_all_functions() == {
        "data_service": {"get_data": [None], "watch": ["2.0.0"]}}
    assert sync.apply_push(push()).status == "skipped"
    assert sync.apply_push(push(force=True)).status == "accepted"
    assert sync.verify("data_service", "v1").status == "matched"
    mismatch = sync.verify("data_service", "v2")
    assert (mismatch.status, mismatch.stored_version) == ("mismatch", "v1")
    assert sync.verify("other", "v1").status == "not_found"


@pytest.mark.parametrize(
    ("token", "gate", "reason"),
    [("wrong", AdminGate({"push_config"}), "invalid push token"),
     (None, AdminGate({"push_config"}), "invalid push token"),
     ("t", AdminGate(), "admin action denied: push_config")],
)
def test_push_refusals(token: str | None, gate: AdminGate, reason: str) -> None:
    """Wrong or missing tokens, or a closed admin gate, refuse the push."""
    sync = make_sync(gate=gate)
    result = sync.apply_push(push(token=token))
    assert (result.status, result.reasons) == ("rejected", [reason])
    assert len(sync.registry) == 0


def test_push_is_atomic_and_failures_are_logged() -> None:
    """One invalid function refuses the whole push and is recorded in the failed log."""
    sync = make_sync()
    sync.apply_push(push())
    bad = [*exported(), {"request_type": "broken", "timeout": 5}]
    result = sync.apply_push(push("v2", configs=bad))
    assert result.status == "rejected"
    assert any("broken" in r for r in result.reasons)
    assert sync.versions["data_service"] == "v1"
    assert "broken" not in sync.registry.get_all_functions()["data_service"]
    [entry] = sync.failed.list()
    assert (entry.service, entry.request_type, entry.source, entry.node) == (
        "data_service", "broken", "push", "n1")


def test_new_version_removes_vanished_functions() -> None:
    """A new version replaces the service: functions it no longer has are removed."""
    sync = make_sync()
    sync.apply_push(push())
    only_get = [d for d in exported() if d["request_type"] == "get_data"]
    assert sync.apply_push(push("v2", configs=only_get)).status == "accepted"
    assert sync.registry.get_all_functions() == {"data_service": {"get_data": [None]}}


def test_every_pushing_node_joins_the_node_list() -> None:
    """Each node that pushes a service serves it, even when the version is already known."""
    sync = make_sync()
    sync.apply_push(push(node="n1"))
    sync.apply_push(push(node="n2"))
    route = sync.registry.resolve("data_service", "get_data")
    assert list(route.config.nodes()) == ["n1", "n2"]  # type: ignore[operator]


def test_directory_grace_period_and_leave() -> None:
    """Silent nodes leave the lists after the grace period and return when heard."""
    clock = Clock()
    directory = NodeDirectory(2.0, clock=clock, telemetry=Telemetry())
    directory.seen("n1", ["svc"])
    directory.seen("n2", ["svc"])
    assert directory.nodes_for("svc") == ["n1", "n2"]
    clock.now = 1.5
    directory.seen("n2")
    clock.now = 2.5
    assert directory.nodes_for("svc") == ["n2"]
    directory.seen("n1")
    assert directory.nodes_for("svc") == ["n1", "n2"]
    directory.left("n2")
    assert directory.nodes_for("svc") == ["n1"]
    assert directory.snapshot()["n2"]["alive"] is False


def test_failed_configs_log() -> None:
    """The failed log filters, summarises and expires entries."""
    now = [0]
    log = FailedConfigs(ttl_ms=1000, clock_ms=lambda: now[0])
    log.record(service="a", reasons="bad", source="push", config={"request_type": "x"})
    log.record(service="b", reasons=["worse"], source="pull")
    assert [e.service for e in log.list()] == ["b", "a"]
    assert [e.service for e in log.list(source="push")] == ["a"]
    assert log.summary() == {"total": 2, "push": 1, "pull": 1, "by_service": {"a": 1, "b": 1}}
    now[0] = 2000
    assert log.count() == 0
    assert log.cleanup() == 2


def test_subjects() -> None:
    """Subjects live under the prefix; names that would break subjects are refused."""
    subjects = Subjects("acme.rt")
    assert subjects.call("n1") == "acme.rt.call.n1"
    assert subjects.push == "acme.rt.config.push"
    with pytest.raises(ValueError, match="node name"):
        subjects.call("a.b")
    with pytest.raises(ValueError, match="prefix"):
        Subjects("bad prefix")




def test_directory_tells_when_nodes_come_and_go() -> None:
    """up: first heard, heard after silence, or pushing again (a restart); down: left or
    silent past the grace period."""
    clock = Clock()
    directory = NodeDirectory(2.0, clock=clock, telemetry=Telemetry())
    events: list[tuple[str, ...]] = []
    directory.listen(up=lambda n: events.append(("up", n)),
                     down=lambda n, why: events.append(("down", n, why)))
    directory.seen("n1")
    directory.seen("n1")  # still alive: nothing new
    clock.now = 3.0
    directory.check()
    directory.seen("n1")
    directory.seen("n1", renewed=True)
    directory.left("n1")
    assert events == [("up", "n1"), ("down", "n1", "silent"), ("up", "n1"), ("up", "n1"),
                      ("down", "n1", "left")]


def test_a_failing_listener_does_not_hide_the_change_from_others() -> None:
    """Each listener hears of it even when one before it raises."""
    directory = NodeDirectory(2.0, clock=Clock(), telemetry=Telemetry())
    heard: list[str] = []

    def broken(node: str) -> None:
        raise RuntimeError("bug")

    directory.listen(up=broken)
    directory.listen(up=heard.append)
    directory.seen("n1")
    assert heard == ["n1"]


async def test_a_heartbeat_alone_does_not_make_a_node_serve_a_service() -> None:
    """Only an accepted push (or a pull) adds a node to a service's list; a node whose
    push was refused is alive but not routed to."""
    sync = make_sync()
    beat = types.SimpleNamespace(data=encode(HeartbeatMessage(node="n9",
                                                              services={"data_service": "v1"})))
    await sync._on_heartbeat(beat)  # type: ignore[arg-type]
    assert sync.directory.alive("n9")
    assert sync.directory.nodes_for("data_service") == []
    assert sync.apply_push(push(token="wrong", node="n9")).status == "rejected"
    assert sync.directory.nodes_for("data_service") == []
    assert sync.apply_push(push(node="n9")).status == "accepted"
    assert sync.directory.nodes_for("data_service") == ["n9"]


class PulledSync(ConfigSync):
    """A ConfigSync whose nodes answer pulls from ``answers`` (no NATS)."""

    answers: dict[str, ConfigsMessage]

    async def _ask(self, nodes: list[str], subject_of: Any, service: str) -> ConfigsMessage:
        return self.answers[service]


async def test_a_pull_of_a_newer_version_updates_the_pushed_record() -> None:
    """A service pushed at v1, then pulled at v2 with one function less: the pushed record
    (what `genapi admin pushed show` reports) says v2 and lists what is now served."""
    base = make_sync()
    sync = PulledSync(base.registry, base.link, name="g", push_token="t",
                      gate=AdminGate({"push_config"}), directory=base.directory,
                      failed=FailedConfigs(), telemetry=Telemetry())
    assert sync.apply_push(push("v1")).status == "accepted"
    only_get = [c for c in exported() if c["request_type"] == "get_data"]
    sync.answers = {"data_service": ConfigsMessage(service="data_service",
                                                   config_version="v2",
                                                   fun_configs=only_get)}
    status = await sync.pull(ServiceConfig(service="data_service", nodes=("n1",)))
    assert status == "applied"
    pushed = sync.get_pushed_config("data_service")
    assert pushed is not None and pushed.config_version == "v2"
    assert [f.request_type for f in pushed.fun_configs] == ["get_data"]
