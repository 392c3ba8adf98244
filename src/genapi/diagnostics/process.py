"""Process health: memory, CPU, event-loop lag, file descriptors, tasks, GC.

The Python counterpart of the original's VM checks. :class:`ProcessHealth` reads the
process when asked (``snapshot()``: a few system calls, no thread) and keeps one cheap
timer on the event loop, :class:`LoopLagMonitor`, that measures how late it fires: a loop
blocked by a synchronous call (or starved by CPU work) makes every connection wait that
long, and this is the figure that shows it.

::

    probe = ProcessHealth(HealthSettings(max_memory_bytes=2 << 30, max_loop_lag_ms=250))
    probe.start()                 # on the running loop
    probe.snapshot()              # {"rss_bytes": …, "loop_lag_ms": …, …}
    probe.problems(snapshot)      # [("degraded", "memory 2.1 GB over max_memory_bytes …")]

A gateway runs one (``GatewaySettings(health=HealthSettings(...))``): its figures are in
``Diagnostics.health()``, ``GET /admin/health``, ``genapi status`` and, with metrics on,
Prometheus (``process_*`` and ``python_gc_*`` from prometheus-client's own collectors,
``genapi_process_loop_lag_seconds`` and friends for the rest).
"""

from __future__ import annotations

import asyncio
import gc
import os
import resource
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

__all__ = ["HealthSettings", "LoopLagMonitor", "ProcessHealth", "process_snapshot"]

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(frozen=True, slots=True)
class HealthSettings:
    """Process-health thresholds: past one, health is ``degraded`` with the reason.

    * ``max_memory_bytes`` — resident memory (RSS); None: not checked;
    * ``max_loop_lag_ms`` — the event loop's worst lag over the last ``lag_window``
      seconds; None: not checked;
    * ``max_fds_share`` — open file descriptors as a share of the process limit (the
      original's 90 % of the process limit);
    * ``loop_lag_interval`` — seconds between two lag measurements (one timer; 0.5 s
      costs nothing measurable).
    """

    max_memory_bytes: int | None = None
    max_loop_lag_ms: float | None = None
    max_fds_share: float = 0.9
    loop_lag_interval: float = 0.5
    lag_window: float = 10.0

    def __post_init__(self) -> None:
        problems = []
        if self.max_memory_bytes is not None and self.max_memory_bytes <= 0:
            problems.append("max_memory_bytes must be positive")
        if self.max_loop_lag_ms is not None and self.max_loop_lag_ms <= 0:
            problems.append("max_loop_lag_ms must be positive")
        if not 0 < self.max_fds_share <= 1:
            problems.append("max_fds_share must be in (0, 1]")
        if self.loop_lag_interval <= 0 or self.lag_window < self.loop_lag_interval:
            problems.append("loop_lag_interval must be positive and lag_window at least "
                            "as long")
        if problems:
            raise ConfigError("HealthSettings", problems)


class LoopLagMonitor:
    """How late a timer re-armed every ``interval`` seconds fires: the event loop's lag.

    One ``call_later`` handle, no task; each firing records its lateness and keeps the
    measurements of the last ``window`` seconds (``max_s``: the worst of them).
    """

    def __init__(self, interval: float = 0.5, window: float = 10.0) -> None:
        self.interval = interval
        self.samples: deque[float] = deque(maxlen=max(1, round(window / interval)))
        self.last_s = 0.0
        self.ticks = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0

    @property
    def running(self) -> bool:
        """True while the timer is armed."""
        return self._handle is not None

    @property
    def max_s(self) -> float:
        """The worst lag over the window (0 before the first measurement)."""
        return max(self.samples, default=0.0)

    def start(self) -> None:
        """Arm the timer on the running loop (again after a stop)."""
        if self._handle is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._arm()

    def stop(self) -> None:
        """Disarm the timer; the measurements are kept."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _arm(self) -> None:
        assert self._loop is not None
        self._due = self._loop.time() + self.interval
        self._handle = self._loop.call_at(self._due, self._fire)

    def _fire(self) -> None:
        assert self._loop is not None
        self.record(self._loop.time() - self._due)
        self._arm()

    def record(self, lag: float) -> None:
        """One measurement (seconds late; negative values count as 0)."""
        self.last_s = max(0.0, lag)
        self.samples.append(self.last_s)
        self.ticks += 1


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        pass
    # No /proc (macOS): the peak instead of the current size, the closest figure there.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _open_fds() -> int | None:
    for path in ("/proc/self/fd", "/dev/fd"):
        try:
            return len(os.listdir(path)) - 1  # minus the descriptor listdir itself opened
        except OSError:
            continue
    return None


def process_snapshot() -> dict[str, Any]:
    """The process's figures now, without the loop lag (see :class:`ProcessHealth`)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft_fds, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        tasks: int | None = len(asyncio.all_tasks())
    except RuntimeError:  # no running loop (a thread, a CLI)
        tasks = None
    return {
        "pid": os.getpid(),
        "python": sys.version.split()[0],
        "rss_bytes": _rss_bytes(),
        "max_rss_bytes": usage.ru_maxrss if sys.platform == "darwin"
        else usage.ru_maxrss * 1024,
        "cpu_user_s": round(usage.ru_utime, 3),
        "cpu_system_s": round(usage.ru_stime, 3),
        "open_fds": _open_fds(),
        "max_fds": soft_fds if soft_fds != resource.RLIM_INFINITY else None,
        "threads": threading.active_count(),
        "asyncio_tasks": tasks,
        "gc_counts": list(gc.get_count()),
        "gc_collections": [s["collections"] for s in gc.get_stats()],
        "gc_uncollectable": sum(s["uncollectable"] for s in gc.get_stats()),
    }


class ProcessHealth:
    """The process's figures and the loop lag, judged against :class:`HealthSettings`."""

    def __init__(self, settings: HealthSettings | None = None) -> None:
        self.settings = settings or HealthSettings()
        self.lag = LoopLagMonitor(self.settings.loop_lag_interval, self.settings.lag_window)
        self.started_at = time.monotonic()

    def start(self) -> None:
        """Start measuring the loop lag (on the running loop)."""
        self.lag.start()

    def stop(self) -> None:
        """Stop measuring the loop lag."""
        self.lag.stop()

    def snapshot(self) -> dict[str, Any]:
        """:func:`process_snapshot` plus the loop lag (last and worst over the window, in
        ms), the thresholds and the time since :meth:`start`'s object was made."""
        s = self.settings
        return {
            **process_snapshot(),
            "uptime_s": round(time.monotonic() - self.started_at, 1),
            "loop_lag_ms": round(self.lag.last_s * 1000, 3),
            "loop_lag_max_ms": round(self.lag.max_s * 1000, 3),
            "loop_lag_measured": self.lag.running,
            "thresholds": {"max_memory_bytes": s.max_memory_bytes,
                           "max_loop_lag_ms": s.max_loop_lag_ms,
                           "max_fds_share": s.max_fds_share},
        }

    def problems(self, snapshot: dict[str, Any]) -> list[tuple[str, str]]:
        """``(level, reason)`` for each threshold ``snapshot`` is past."""
        s = self.settings
        out: list[tuple[str, str]] = []
        rss = snapshot.get("rss_bytes")
        if s.max_memory_bytes is not None and rss is not None and rss > s.max_memory_bytes:
            out.append(("degraded", f"memory {rss} bytes over max_memory_bytes "
                                    f"{s.max_memory_bytes}"))
        lag = snapshot.get("loop_lag_max_ms", 0.0)
        if s.max_loop_lag_ms is not None and lag > s.max_loop_lag_ms:
            out.append(("degraded", f"event loop lag {lag:.0f} ms over max_loop_lag_ms "
                                    f"{s.max_loop_lag_ms:g}"))
        fds, limit = snapshot.get("open_fds"), snapshot.get("max_fds")
        if fds is not None and limit and fds >= s.max_fds_share * limit:
            out.append(("degraded", f"{fds} open file descriptors of a limit of {limit}"))
        return out
