"""Config distribution parity: pushed services, re-push after delete, refused pushes,
in-process PushConfig, pull sources at run time (without a NATS server)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from genapi import AdminActionDenied, ConfigSourceNotFound, FunConfig, PushConfig, ServiceConfig
from genapi.cluster.sync import ConfigSync
from genapi.security import AdminGate
from genapi.transport.nats.wire import ConfigsMessage

from .test_sync import make_sync, push


def test_repush_after_registry_delete_applies() -> None:
    """After registry.delete_service the same version applies again; one version an
    operator deleted stays deleted until the configs change (or force)."""
    sync = make_sync()
    assert sync.apply_push(push()).status == "accepted"
    assert sync.apply_push(push()).status == "skipped"
    sync.registry.delete_service("data_service")
    assert sync.apply_push(push()).status == "accepted"
    assert sync.registry.get_route("data_service", "get_data") is not None
    sync.registry.delete("data_service", "watch", "2.0.0")
    assert sync.apply_push(push()).status == "skipped"
    assert sync.registry.get_route("data_service", "watch", "2.0.0") is None
    assert sync.apply_push(push(force=True)).status == "accepted"
    assert sync.registry.get_route("data_service", "watch", "2.0.0") is not None


def test_a_disabled_function_survives_a_same_version_push() -> None:
    """Disabling is not deleting: the same version is skipped and stays disabled."""
    sync = make_sync()
    sync.apply_push(push())
    sync.registry.disable("data_service", "get_data")
    assert sync.apply_push(push()).status == "skipped"
    route = sync.registry.get_route("data_service", "get_data")
    assert route is not None and route.disabled


def test_get_and_delete_pushed_service() -> None:
    """The pushed record (no token), every pushed service, and forgetting one."""
    sync = make_sync(gate=AdminGate({"push_config", "manage_functions"}))
    assert sync.get_pushed_config("data_service") is None
    sync.apply_push(push(node="n1"))
    sync.apply_push(push(node="n2"))
    pushed = sync.get_pushed_config("data_service")
    assert pushed is not None
    assert (pushed.config_version, pushed.push_token) == ("v1", None)
    assert {f.request_type for f in pushed.fun_configs} == {"get_data", "watch"}
    assert pushed.nodes == ("n1", "n2")
    assert sync.get_all_pushed_services() == {"data_service": "v1"}
    assert sync.delete_pushed_service("data_service") == 0
    assert sync.get_pushed_config("data_service") is None
    assert sync.registry.get_route("data_service", "get_data") is not None  # kept
    assert sync.verify("data_service", "v1").status == "not_found"
    assert sync.apply_push(push()).status == "accepted"  # the same version applies again
    assert sync.delete_pushed_service("data_service", remove_functions=True) == 2
    assert len(sync.registry) == 0
    with pytest.raises(ConfigSourceNotFound, match="no pushed config"):
        sync.delete_pushed_service("data_service")


def test_changes_need_the_admin_gate() -> None:
    """push_config for pull sources and pushed services; manage_functions to remove
    functions."""
    sync = make_sync()
    sync.apply_push(push())
    with pytest.raises(AdminActionDenied, match="manage_functions"):
        sync.delete_pushed_service("data_service", remove_functions=True)
    sync.gate = AdminGate()
    with pytest.raises(AdminActionDenied, match="push_config"):
        sync.delete_pushed_service("data_service")
    with pytest.raises(AdminActionDenied, match="push_config"):
        sync.add_pull(ServiceConfig(service="data_service", nodes=["n1"]))
    with pytest.raises(AdminActionDenied, match="push_config"):
        sync.remove_pull("data_service")
    assert sync.get_pushed_config("data_service") is not None


def test_refused_push_is_a_warning_and_takes_the_node_out(
        caplog: pytest.LogCaptureFixture) -> None:
    """The gateway names the node and the reason; a node refused later leaves the list."""
    sync = make_sync()
    sync.apply_push(push(node="n1"))
    sync.apply_push(push(node="n2"))
    with caplog.at_level(logging.WARNING, logger="genapi.sync"):
        result = sync.apply_push(push(token="wrong", node="n2"))
    assert result.status == "rejected"
    [record] = [r for r in caplog.records if "refused the push" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert "node n2" in record.getMessage() and "invalid push token" in record.getMessage()
    assert sync.directory.nodes_for("data_service") == ["n1"]
    bad = [{"request_type": "broken", "timeout": 5}]
    assert sync.apply_push(push("v2", configs=bad, node="n1")).status == "rejected"
    assert sync.directory.nodes_for("data_service") == []


async def local_echo(text: str) -> str:
    return text


def test_push_config_in_process() -> None:
    """A PushConfig applies like a node's push: token, validation, version, record."""
    sync = make_sync()
    fun = FunConfig(service="local_service", request_type="echo", function=local_echo)
    config = PushConfig(service="local_service", nodes=("here",), config_version="1",
                        fun_configs=(fun,), push_token="t")
    assert sync.push_config(config).status == "accepted"
    assert sync.registry.get_route("local_service", "echo") is not None
    assert sync.push_config(config).status == "skipped"
    assert sync.push_config(config, force=True).status == "accepted"
    recorded = sync.get_pushed_config("local_service")
    assert recorded is not None and recorded.push_token is None
    wrong = PushConfig(service="local_service", nodes=("here",), config_version="2",
                       fun_configs=(fun,), push_token="nope")
    assert sync.push_config(wrong).reasons == ["invalid push token"]
    invalid = PushConfig(service="other", nodes=("here",), config_version="2",
                         fun_configs=(fun,), push_token="t")
    assert sync.push_config(invalid).reasons == [
        "all fun_configs must have the same service name as the push config"]


def test_a_push_asking_for_pull_registers_a_source() -> None:
    """``pull=True``: the gateway pulls the service from the pushing node afterwards."""
    sync = make_sync()
    message = push()
    message.pull = True
    sync.apply_push(message)
    assert sync.pull_configs["data_service"].nodes == ("n1",)
    sync.delete_pushed_service("data_service")
    assert "data_service" not in sync.pull_configs


class FakeAsk:
    """Stands in for the NATS request: version and full answers from a table."""

    def __init__(self, sync: ConfigSync, version: str, configs: list[dict[str, Any]]) -> None:
        self.version = version
        self.configs = configs
        self.asked: list[str] = []
        sync._ask = self  # type: ignore[method-assign]
        self.sync = sync

    async def __call__(self, nodes: list[str], subject_of: Any,
                       service: str) -> ConfigsMessage:
        full = subject_of == self.sync.subjects.pull
        self.asked.append("pull" if full else "version")
        return ConfigsMessage(service=service, config_version=self.version,
                              fun_configs=self.configs if full else [])


async def test_pull_sources_at_run_time() -> None:
    """add_pull pulls at once (one scheduler); force_pull ignores the version; remove_pull
    forgets the source; unknown services raise ConfigSourceNotFound."""
    from .test_sync import exported

    sync = make_sync()
    fake = FakeAsk(sync, "v1", exported())
    sync._started = True  # the loop without subscribing to NATS
    try:
        sync.add_pull(ServiceConfig(service="data_service", nodes=["n1"]))
        async with asyncio.timeout(5):
            while sync.versions.get("data_service") != "v1":
                await asyncio.sleep(0.01)
        assert fake.asked == ["version", "pull"]
        assert sync.registry.get_route("data_service", "get_data") is not None
        assert await sync.pull_all() == {"data_service": "skipped"}
        assert await sync.force_pull("data_service") == {"data_service": "applied"}
        assert await sync.force_pull() == {"data_service": "applied"}
        assert fake.asked[-3:] == ["version", "pull", "pull"]
        sync.registry.delete_service("data_service")
        assert await sync.pull_all() == {"data_service": "applied"}  # not skipped
        assert sync.remove_pull("data_service").service == "data_service"
        assert "data_service" not in sync.versions
        with pytest.raises(ConfigSourceNotFound):
            await sync.force_pull("data_service")
        with pytest.raises(ConfigSourceNotFound):
            sync.remove_pull("data_service")
    finally:
        await sync.stop()


def test_pull_backoff() -> None:
    """pull_interval, doubled per all-failed round, capped at 300 s."""
    sync = make_sync()
    sync.pull_interval = 30.0
    assert sync.pull_delay() == 30.0
    sync._pull_failures = 2
    assert sync.pull_delay() == 120.0
    sync._pull_failures = 50
    assert sync.pull_delay() == 300.0
