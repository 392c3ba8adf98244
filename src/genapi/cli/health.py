"""The process-health part of ``genapi status``: memory, CPU, loop lag, fds, tasks, GC.

Its own module so that ``status`` (:mod:`.admin`) and the config commands
(:mod:`.config_admin`) both use it without importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.table import Table

__all__ = ["human_bytes", "process_parts"]


def human_bytes(value: float | None) -> str:
    """``123.4 MB`` style (decimal units), ``-`` for None."""
    if value is None:
        return "-"
    for unit in ("B", "kB", "MB", "GB"):
        if abs(value) < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"  # unreachable: GB ends the loop


def process_parts(process: Mapping[str, Any] | None) -> list[Table]:
    """A one-row table of the process's figures (none when the gateway sent none)."""
    if not process:
        return []
    table = Table(title="Process", title_justify="left")
    thresholds = process.get("thresholds") or {}
    memory = human_bytes(process.get("rss_bytes"))
    if thresholds.get("max_memory_bytes"):
        memory += f" / {human_bytes(thresholds['max_memory_bytes'])}"
    lag = f"{process.get('loop_lag_ms', 0):.1f} (max {process.get('loop_lag_max_ms', 0):.1f})"
    if thresholds.get("max_loop_lag_ms"):
        lag += f" / {thresholds['max_loop_lag_ms']:g}"
    fds = f"{process.get('open_fds', '-')}"
    if process.get("max_fds"):
        fds += f" / {process['max_fds']}"
    cpu = f"{process.get('cpu_user_s', 0):.1f} + {process.get('cpu_system_s', 0):.1f}"
    row = {"pid": str(process.get("pid", "-")), "rss": memory, "cpu s (user + sys)": cpu,
           "loop lag ms": lag, "fds": fds, "tasks": str(process.get("asyncio_tasks", "-")),
           "threads": str(process.get("threads", "-")),
           "gc (gen0/1/2 collections)": "/".join(
               str(c) for c in process.get("gc_collections", [])),
           "uptime s": str(process.get("uptime_s", "-"))}
    for column in row:
        table.add_column(column)
    table.add_row(*row.values())
    return [table]
