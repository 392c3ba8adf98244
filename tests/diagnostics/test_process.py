"""Process health: the figures, the loop-lag timer, thresholds, /admin/health, Prometheus."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from genapi import ConfigError, Diagnostics, Gateway
from genapi.diagnostics.process import (
    HealthSettings,
    LoopLagMonitor,
    ProcessHealth,
    process_snapshot,
)
from genapi.gateway import AdminSettings, GatewaySettings

ADMIN = "admin-token-0123456789"


def test_snapshot_has_every_figure() -> None:
    """RSS, CPU, fds, threads, GC; tasks only with a running loop."""
    figures = process_snapshot()
    assert figures["rss_bytes"] > 1 << 20
    assert figures["cpu_user_s"] >= 0 and figures["cpu_system_s"] >= 0
    assert figures["open_fds"] > 0
    assert figures["threads"] >= 1
    assert len(figures["gc_counts"]) == len(figures["gc_collections"]) == 3
    assert figures["asyncio_tasks"] is None


async def test_loop_lag_is_measured() -> None:
    """Blocking the loop 200 ms shows a lag of at least 150 ms (the timer fires every
    10 ms here, so one was due within the block's first 10 ms: at least 190 ms late)."""
    monitor = LoopLagMonitor(interval=0.01, window=5.0)
    monitor.start()
    try:
        ticks = monitor.ticks
        while monitor.ticks == ticks:
            await asyncio.sleep(0.005)
        time.sleep(0.2)  # blocks the loop
        ticks = monitor.ticks
        while monitor.ticks == ticks:
            await asyncio.sleep(0.005)
        assert monitor.max_s >= 0.15
        assert monitor.last_s >= 0.15 or max(monitor.samples) >= 0.15
    finally:
        monitor.stop()
    assert not monitor.running


def test_lag_window_forgets_old_samples() -> None:
    """The worst lag is over the window only."""
    monitor = LoopLagMonitor(interval=0.5, window=1.0)
    monitor.record(0.3)
    monitor.record(0.0)
    assert monitor.max_s == 0.3
    monitor.record(-0.1)
    assert (monitor.max_s, monitor.last_s) == (0.0, 0.0)


def test_thresholds_make_health_degraded() -> None:
    """A tiny max_memory_bytes, a measured lag over max_loop_lag_ms: degraded, with why."""
    gateway = Gateway(settings=GatewaySettings(health=HealthSettings(
        max_memory_bytes=1024, max_loop_lag_ms=50)))
    diag = Diagnostics(gateway)
    health = gateway.health()
    assert health["status"] == "degraded"
    assert any(p.startswith("memory ") and "max_memory_bytes 1024" in p
               for p in health["problems"])
    gateway.process_health.lag.record(0.2)
    assert any("event loop lag 200 ms over max_loop_lag_ms 50" in p
               for p in diag.health()["problems"])
    roomy = Gateway(settings=GatewaySettings(health=HealthSettings(
        max_memory_bytes=1 << 50, max_loop_lag_ms=10_000)))
    assert Diagnostics(roomy).health()["status"] == "ok"


def test_fd_share_threshold() -> None:
    """Open descriptors at the share of the limit: degraded."""
    probe = ProcessHealth(HealthSettings(max_fds_share=0.5))
    snapshot = {**probe.snapshot(), "open_fds": 60, "max_fds": 100}
    assert probe.problems(snapshot) == [("degraded", "60 open file descriptors of a limit "
                                                     "of 100")]


@pytest.mark.parametrize("kwargs", [{"max_memory_bytes": 0}, {"max_loop_lag_ms": -1},
                                    {"max_fds_share": 1.5}, {"loop_lag_interval": 0}])
def test_settings_are_validated(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError, match="HealthSettings"):
        HealthSettings(**kwargs)  # type: ignore[arg-type]


async def test_admin_health_and_metrics_show_the_process() -> None:
    """/admin/health has the process figures; /metrics the process and genapi gauges."""
    gateway = Gateway(admin=AdminSettings(token=ADMIN), metrics=True,
                      settings=GatewaySettings(health=HealthSettings(max_memory_bytes=1024)))
    async with gateway.running():
        assert gateway.process_health.lag.running
        transport = httpx.ASGITransport(app=gateway)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            health = (await client.get("/admin/health", headers={
                "Authorization": f"Bearer {ADMIN}"})).json()
            metrics = (await client.get("/metrics")).text
    assert health["status"] == "degraded"
    process = health["process"]
    for key in ("rss_bytes", "cpu_user_s", "open_fds", "asyncio_tasks", "gc_counts",
                "loop_lag_ms", "loop_lag_max_ms"):
        assert key in process, key
    assert process["asyncio_tasks"] >= 1
    for name in ("process_resident_memory_bytes", "process_cpu_seconds_total",
                 "process_open_fds", "python_gc_collections_total",
                 "genapi_process_loop_lag_seconds", "genapi_process_loop_lag_max_seconds",
                 "genapi_process_asyncio_tasks", "genapi_process_threads"):
        assert f"\n{name}" in metrics, name
    assert not gateway.process_health.lag.running
