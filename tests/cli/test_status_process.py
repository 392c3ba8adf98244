"""`genapi status` shows the process's health: memory, CPU, loop lag, fds, tasks, GC."""

from __future__ import annotations

from genapi import AdminSettings, Gateway, GatewaySettings, HealthSettings
from genapi.cli.health import human_bytes, process_parts
from tests.cli.test_admin import TOKEN, genapi
from tests.support.servers import running_app


async def test_status_prints_the_process_table_and_thresholds() -> None:
    gateway = Gateway(admin=AdminSettings(token=TOKEN), settings=GatewaySettings(
        health=HealthSettings(max_memory_bytes=1000)))
    async with running_app(gateway) as url:
        code, out, _ = await genapi("status", "--url", url)
    assert code == 0
    assert f"at {url}: degraded" in out
    assert "memory " in out and "over max_memory_bytes 1000" in out
    assert "Process" in out and "loop lag ms" in out and "fds" in out and "tasks" in out


def test_process_parts() -> None:
    assert process_parts(None) == []
    assert human_bytes(1_500_000) == "1.5 MB"
    assert human_bytes(512) == "512 B"
    assert human_bytes(None) == "-"
