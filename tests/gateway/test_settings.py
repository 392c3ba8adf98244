"""Gateway settings: checked when built, grouped by concern, composed into the gateway."""

from __future__ import annotations

import pytest

from genapi import (
    AdminAction,
    AdminGate,
    AdminSettings,
    ConfigError,
    ConnectionLimits,
    Gateway,
    GatewaySettings,
    MetricsSettings,
    TracingSettings,
)
from genapi.gateway import ClusterOptions


@pytest.mark.parametrize(("options", "message"), [
    ({"socket_path": "socket"}, "socket_path must be a path starting with '/'"),
    ({"api_prefix": ""}, "api_prefix must be a path starting with '/'"),
    ({"topics": ()}, "topics must list at least one pattern"),
    ({"topics": "api:*"}, "topics must be a collection of strings, not one string"),
    ({"event": ""}, "event must be a non-empty string"),
    ({"trusted_proxies": [1]}, "trusted_proxies must hold strings"),
])
def test_bad_gateway_settings_are_refused_with_a_config_error(
        options: dict[str, object], message: str) -> None:
    """Each problem is named; the error is a ValueError like any bad argument."""
    with pytest.raises(ConfigError, match=message) as info:
        GatewaySettings(**options)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)


def test_collections_are_kept_immutable() -> None:
    """Lists given for topics and proxies become tuples and frozensets."""
    settings = GatewaySettings(topics=["api:*", "room:*"],  # type: ignore[arg-type]
                               trusted_proxies=["10.0.0.1"])  # type: ignore[arg-type]
    assert settings.topics == ("api:*", "room:*")
    assert settings.trusted_proxies == frozenset({"10.0.0.1"})
    assert GatewaySettings(socket_path="/rt/").socket_route == "/rt/websocket"


def test_the_gateway_reads_its_settings() -> None:
    """Paths, topics, event and limits reach the gateway as given."""
    limits = ConnectionLimits(max_inflight=7)
    gateway = Gateway(settings=GatewaySettings(socket_path="/rt", topics=("chat:*",),
                                               event="call", limits=limits))
    assert (gateway.socket_path, gateway.topics, gateway.event) == ("/rt", ["chat:*"], "call")
    assert gateway.limits is limits
    assert any(getattr(r, "path", "") == "/rt/websocket" for r in gateway.app.routes)


def test_anonymous_access_defaults_follow_the_authenticator() -> None:
    """No authenticator: everyone is anonymous and allowed; with one, anonymous is refused
    unless the settings allow it."""
    assert Gateway().allow_anonymous is True
    assert Gateway(authenticator=lambda p, h: None).allow_anonymous is False
    assert Gateway(authenticator=lambda p, h: None,
                   settings=GatewaySettings(allow_anonymous=True)).allow_anonymous is True


def test_admin_settings_compose_the_gate_and_the_console() -> None:
    """A token mounts the console and implies view_diagnostics; a bare gate mounts nothing."""
    token = "t" * 32
    with_token = Gateway(admin=AdminSettings(token=token))
    assert with_token.admin_console is not None
    assert with_token.admin.allowed_actions == {AdminAction.VIEW_DIAGNOSTICS}
    gate_only = Gateway(admin=AdminGate({"push_config"}))
    assert gate_only.admin_console is None
    assert gate_only.admin.allowed_actions == {AdminAction.PUSH_CONFIG}
    assert Gateway().admin.allowed_actions == frozenset()
    assert token not in repr(AdminSettings(token=token))


def test_metrics_and_tracing_accept_true_or_settings() -> None:
    """True means the defaults; settings objects carry the options."""
    assert MetricsSettings.of(False) is None
    assert MetricsSettings.of(True) == MetricsSettings()
    assert "s3cret" not in repr(MetricsSettings(token="s3cret"))
    assert TracingSettings.of(True) == TracingSettings()
    with pytest.raises(ConfigError, match="sample_rate must be between 0 and 1"):
        TracingSettings(sample_rate=1.5)


def test_unknown_admin_actions_are_a_config_error() -> None:
    """A misspelt action is refused when the gate is built, naming the known ones."""
    with pytest.raises(ConfigError, match="unknown admin action 'view_diagnostic'"):
        AdminGate(["view_diagnostic"])


def test_gateways_of_one_process_get_different_default_cluster_names() -> None:
    """A gateway ignores cluster messages carrying its own name, so two unnamed gateways in
    one process must not share one (they ignored each other's admin changes)."""
    first = Gateway(cluster=ClusterOptions(nats="nats://127.0.0.1:1"))
    second = Gateway(cluster=ClusterOptions(nats="nats://127.0.0.1:1"))
    named = Gateway(cluster=ClusterOptions(nats="nats://127.0.0.1:1", name="edge-1"))
    assert first.cluster is not None and second.cluster is not None
    assert named.cluster is not None
    assert first.cluster.name != second.cluster.name
    assert first.cluster.name.startswith("gateway-") and second.cluster.name.startswith("gateway-")
    assert named.cluster.name == "edge-1"
