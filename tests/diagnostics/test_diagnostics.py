"""Diagnostics: call flows, state views and live call statistics, as plain data."""

from __future__ import annotations

import json
import threading
from typing import Any

import msgspec
import pytest

from genapi import CallStats, Diagnostics, FunConfig, Gateway, Request, Telemetry
from genapi.demo import SERVICES
from genapi.diagnostics import plain, redact
from genapi.ratelimit import RateLimit, RateLimitConfig, RateLimiter
from genapi.telemetry.events import EXECUTOR_STOP

PHASES = ["channel", "decode", "config_lookup", "permission", "rate_limit",
          "argument_validation", "hooks_before", "node_selection", "execution", "retry",
          "hooks_after", "response"]
SECRET = "s3cr3t-hook-argument"


def _noop(*args: Any) -> None:
    return None


def before(request: Any, config: Any, *extra: Any) -> Any:
    return request, config


def demo_gateway(**options: Any) -> Gateway:
    return Gateway(SERVICES, **options)


def test_unknown_function_explains_the_lookup() -> None:
    """An unknown function: found False, the client's error, steps up to the lookup."""
    flow = Diagnostics(demo_gateway()).call_flow("user_service", "nope")
    assert flow["found"] is False
    assert flow["error"] == (
        "Unknown function nope in service user_service "
        "(known: delete_user, get_profile, get_user, get_user_profile, list_users)")
    assert [s["phase"] for s in flow["steps"]] == ["channel", "decode", "config_lookup"]
    assert "registered versions: none" in flow["steps"][-1]["description"]


def test_known_function_lists_every_phase_in_executor_order() -> None:
    """Every phase is listed in the executor's order, inactive ones marked."""
    flow = Diagnostics(demo_gateway()).call_flow("user_service", "get_user")
    assert flow["found"] is True
    assert [s["phase"] for s in flow["steps"]] == PHASES
    by_phase = {s["phase"]: s for s in flow["steps"]}
    assert by_phase["permission"]["active"] is False
    assert by_phase["rate_limit"]["description"] == "No rate limiter is configured."
    assert by_phase["node_selection"]["active"] is False
    assert by_phase["response"]["response_type"] == "sync"
    assert flow["local"] is True
    assert flow["version"] is None
    assert "Other versions: 1.0.0, 2.0.0" in by_phase["config_lookup"]["description"]
    assert all(isinstance(s["description"], str) and s["description"] for s in flow["steps"])


@pytest.mark.parametrize(
    ("version", "resolved", "found"),
    [(None, None, True), ("0.0.0", None, True), ("2.0.0", "2.0.0", True),
     ("9.9.9", None, False)],
)
def test_version_resolution_matches_requests(version: str | None, resolved: str | None,
                                             found: bool) -> None:
    """The version is resolved like a request's ("0.0.0" means none)."""
    flow = Diagnostics(demo_gateway()).call_flow("user_service", "get_user", version)
    assert flow["found"] is found
    if found:
        assert flow["version"] == resolved


def test_latest_version_and_disabled() -> None:
    """Without an unversioned config the highest enabled version serves; disabled say so."""
    gateway = Gateway()
    for version in ("1.0.0", "1.10.0", "1.2.0"):
        gateway.registry.add(FunConfig(service="s", request_type="f", function=_noop,
                                       version=version))
    diag = Diagnostics(gateway)
    assert diag.call_flow("s", "f")["version"] == "1.10.0"
    gateway.registry.disable("s", "f", "1.2.0")
    flow = diag.call_flow("s", "f", "1.2.0")
    assert flow["found"] is False
    assert flow["error"] == "disabled function: f version 1.2.0"
    assert "1.2.0 (disabled)" in flow["steps"][-1]["description"]


def test_permission_retry_hooks_and_remote_nodes() -> None:
    """Role permission, retries, hooks and node choice are explained; hook args are not."""
    gateway = Gateway()
    gateway.registry.add(FunConfig(
        service="billing", request_type="charge", nodes=["node-a", "node-b"],
        choose_node_mode=("hash", "user_id"), retry=("same_node", 2),
        check_permission=("role", ["admin"]), arg_types={"user_id": "string"},
        before_execute=(before, [SECRET]), response_type="async", timeout=2000,
    ))
    flow = Diagnostics(gateway).call_flow("billing", "charge")
    steps = {s["phase"]: s for s in flow["steps"]}
    assert steps["permission"]["active"] is True
    assert "admin" in steps["permission"]["description"]
    assert steps["retry"]["active"] is True
    assert steps["retry"]["attempts"] == 3
    assert steps["hooks_before"]["active"] is True
    assert steps["hooks_before"]["extra_args"] == 1
    assert steps["node_selection"]["active"] is True
    assert steps["node_selection"]["nodes"] == ["node-a", "node-b"]
    assert "argument 'user_id'" in steps["node_selection"]["description"]
    assert "async pool" in steps["execution"]["description"]
    assert "Timeout 2000 ms" in steps["execution"]["description"]
    assert SECRET not in json.dumps(flow)


def test_rate_limits_and_user_usage() -> None:
    """The rate-limit phase names the limits; a user's usage is reported per limit."""
    limiter = RateLimiter(RateLimitConfig(
        global_limits=[RateLimit("user_id", 10, 60_000)],
        api_limits=[RateLimit("user_id", 2, 1_000, service="user_service",
                              request_type="get_user")],
    ))
    gateway = demo_gateway(rate_limiter=limiter)
    diag = Diagnostics(gateway)
    phase = next(s for s in diag.call_flow("user_service", "get_user")["steps"]
                 if s["phase"] == "rate_limit")
    assert phase["active"] is True
    assert "user_id: 10 per 60000 ms" in phase["description"]
    assert phase["api"] == [{"key": "user_id", "max_requests": 2, "window_ms": 1000,
                             "service": "user_service", "request_type": "get_user"}]
    assert diag.rate_limits()["global"] == [{"key": "user_id", "max_requests": 10,
                                             "window_ms": 60_000}]


async def test_user_rate_limit_status_counts_calls() -> None:
    """user_rate_limits reports used and remaining for global and per-function limits."""
    limiter = RateLimiter(RateLimitConfig(
        global_limits=[RateLimit("user_id", 10, 60_000)],
        api_limits=[RateLimit("user_id", 2, 60_000, service="user_service",
                              request_type="get_user")],
    ))
    gateway = demo_gateway(rate_limiter=limiter)
    for n in range(2):
        await gateway.executor.execute(Request(request_id=str(n), service="user_service",
                                               request_type="get_user", args={"user_id": "1"},
                                               user_id="u1"))
    usage = await Diagnostics(gateway).user_rate_limits("u1")
    assert [(u["current_requests"], u["remaining"]) for u in usage["global"]] == [(2, 8)]
    assert [(u["scope"], u["remaining"]) for u in usage["api"]] == [
        (["user_service", "get_user"], 0)]
    await gateway.aclose()


def test_list_call_flows_skips_disabled_unless_asked() -> None:
    """list_call_flows covers every enabled version; disabled ones only as stubs."""
    gateway = demo_gateway()
    gateway.registry.disable("user_service", "get_user", "1.0.0")
    diag = Diagnostics(gateway)
    flows = diag.list_call_flows()
    keys = {(f["service"], f["request_type"], f["version"]) for f in flows}
    assert ("user_service", "get_user", "2.0.0") in keys
    assert ("user_service", "get_user", "1.0.0") not in keys
    stub = [f for f in diag.list_call_flows(include_disabled=True) if f.get("disabled")]
    assert stub == [{"service": "user_service", "request_type": "get_user",
                     "version": "1.0.0", "status": "disabled", "disabled": True}]


def test_inspect_request_adds_the_request_fields() -> None:
    """inspect_request works with a Request or a mapping."""
    diag = Diagnostics(demo_gateway())
    request = Request(request_id="r9", service="user_service", request_type="get_user",
                      args={}, user_id="u1")
    assert diag.inspect_request(request)["request"]["request_id"] == "r9"
    flow = diag.inspect_request({"service": "x", "request_type": "y", "request_id": "r1"})
    assert flow["found"] is False
    assert flow["request"]["user_id"] is None


def test_snapshot_is_json_and_health_follows_draining() -> None:
    """The snapshot encodes as JSON; draining makes health degraded."""
    gateway = demo_gateway()
    diag = Diagnostics(gateway)
    snapshot = diag.snapshot()
    msgspec.json.encode(snapshot)
    assert (snapshot["health"]["status"], snapshot["health"]["problems"]) == ("ok", [])
    assert snapshot["health"]["process"]["rss_bytes"] > 0
    assert snapshot["config_cache"]["count"] == len(gateway.registry.routes())
    assert snapshot["cluster"]["enabled"] is False
    assert snapshot["connections"]["open"] == []
    assert snapshot["calls"] is None
    gateway.draining = True
    health = diag.health()
    assert (health["status"], health["problems"]) == ("degraded", ["draining"])


def test_plain_and_redact() -> None:
    """plain makes any value JSON-ready; redact masks secret-looking keys at any depth."""
    assert plain({"a": (1, 2), "b": {3}, "c": float("nan")}) == {"a": [1, 2], "b": [3],
                                                                 "c": None}
    data = {"service": "s", "push_token": "x", "nested": {"Password": "y", "ok": 1},
            "list": [{"api_secret": "z"}]}
    assert redact(data) == {"service": "s", "push_token": "***",
                            "nested": {"Password": "***", "ok": 1},
                            "list": [{"api_secret": "***"}]}


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def stop(telemetry: Telemetry, service: str, request_type: str, ms: float,
         success: bool = True) -> None:
    telemetry.emit(EXECUTOR_STOP, {"duration_us": int(ms * 1000)},
                   {"service": service, "request_type": request_type, "success": success})


def test_call_stats_series_rate_and_percentiles() -> None:
    """Per-second series, the rate of complete seconds, bucketed percentiles."""
    clock = Clock(1000.2)
    telemetry = Telemetry()
    stats = CallStats(clock=clock)
    stats.attach(telemetry, offload=False)  # the fake clock is read when counting
    for second in range(5):
        clock.now = 1000.2 + second
        for _ in range(10):
            stop(telemetry, "s", "f", 2.0)
        stop(telemetry, "s", "f", 40.0, success=False)
    clock.now = 1005.5  # a new, empty second
    summary = stats.summary(seconds=10, rate_seconds=5)
    assert summary["total"] == {"calls": 55, "errors": 5}
    assert summary["rate"] == {"seconds": 5, "calls_per_s": 11.0, "errors_per_s": 1.0}
    assert [p["calls"] for p in summary["series"]] == [0, 0, 0, 0, 11, 11, 11, 11, 11, 0]
    assert summary["series"][-1]["t"] == 1_005_000
    latency = summary["latency_ms"]
    assert latency["p50"] == 2.5  # the 2.5 ms bucket holds the 2 ms calls
    assert latency["p99"] == latency["max"] == 40.0
    assert summary["functions"] == [{"service": "s", "request_type": "f", "calls": 55,
                                     "errors": 5, "mean_ms": 5.455, "max_ms": 40.0}]
    stats.detach()
    stop(telemetry, "s", "f", 1.0)
    assert stats.summary()["total"]["calls"] == 55
    assert stats.attached is False


def test_call_stats_forgets_old_seconds_and_bounds_names() -> None:
    """Slots older than the window are reused; unknown and extra names are pooled."""
    clock = Clock(0.0)
    telemetry = Telemetry()
    gateway = demo_gateway()
    stats = CallStats(window_s=10, max_functions=2, registry=gateway.registry, clock=clock)
    stats.attach(telemetry, offload=False)  # the fake clock is read when counting
    stop(telemetry, "user_service", "get_user", 1)
    stop(telemetry, "evil", "x" * 1000, 1)
    stop(telemetry, "user_service", "list_users", 1)
    stop(telemetry, "search_service", "search", 1)
    names = {(f["service"], f["request_type"]) for f in stats.summary()["functions"]}
    assert names == {("user_service", "get_user"), ("_unknown", "_unknown"),
                     ("_other", "_other")}
    clock.now = 10.0  # the same slot as second 0, ten seconds later
    assert sum(p["calls"] for p in stats.summary(seconds=9)["series"]) == 0
    stop(telemetry, "user_service", "get_user", 1)
    assert stats.summary(seconds=9)["series"][-1]["calls"] == 1


def test_call_stats_are_offloaded_by_default() -> None:
    """attach() feeds the statistics through a worker thread; flush() waits for it."""
    telemetry = Telemetry()
    stats = CallStats()
    stats.attach(telemetry)
    for _ in range(20):
        stop(telemetry, "s", "f", 1.0)
    assert stats.flush(5.0)
    assert stats.summary()["total"]["calls"] == 20
    stats.detach()
    assert [t.name for t in threading.enumerate() if t.name == "genapi-callstats"] == []
