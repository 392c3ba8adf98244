"""Live call statistics for the admin console: rates and latencies by second.

:class:`CallStats` listens to ``executor.request.stop`` (one event per request, at its
first answer) and keeps, for the last ``window_s`` seconds, one slot per second: calls,
errors, summed and largest duration and a small latency histogram. Memory is fixed
(``window_s`` slots, at most ``max_functions`` per-function totals); the handler does a
few integer additions and one ``bisect``. Like genapi's other exporters it is fed through
an :class:`~genapi.OffloadingHandler` by default, so the request path only queues the
event; :meth:`flush` waits until what is queued is counted (the admin endpoints do so,
off the event loop, before they answer).
"""

from __future__ import annotations

import itertools
import time
from bisect import bisect_left
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from ..errors import ConfigError, FunctionDisabled, FunctionNotFound
from ..telemetry.events import EXECUTOR_STOP, Telemetry
from ..telemetry.handlers import OffloadSlot

if TYPE_CHECKING:
    from ..functions.registry import Registry

__all__ = ["LATENCY_BOUNDS_MS", "CallStats"]

#: Upper bounds (ms) of the latency histogram's buckets; one more bucket holds the rest.
LATENCY_BOUNDS_MS: Final = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0,
                            500.0, 1000.0, 2500.0, 5000.0, 10_000.0, 30_000.0)
_BOUNDS_US: Final = tuple(int(b * 1000) for b in LATENCY_BOUNDS_MS)
_UNKNOWN: Final = ("_unknown", "_unknown")  # names no registered function has
_OTHER: Final = ("_other", "_other")  # past max_functions
_ids = itertools.count(1)


class _Slot:
    """One second of calls."""

    __slots__ = ("calls", "errors", "hist", "max_us", "second", "sum_us")

    def __init__(self) -> None:
        self.second = -1
        self.calls = self.errors = self.sum_us = self.max_us = 0
        self.hist = [0] * (len(_BOUNDS_US) + 1)

    def reset(self, second: int) -> None:
        self.second = second
        self.calls = self.errors = self.sum_us = self.max_us = 0
        self.hist = [0] * (len(_BOUNDS_US) + 1)


class CallStats:
    """Call counts, rates and latency percentiles from a telemetry stream.

    ::

        stats = CallStats(registry=gateway.registry)
        stats.attach(gateway.executor.telemetry)
        ...
        stats.summary()["rate"]["calls_per_s"]
        stats.detach()

    ``registry`` lets calls to unknown functions be counted as ``_unknown`` (clients choose
    those names; they must not grow the table). ``clock`` returns seconds (wall time: the
    chart's time axis).
    """

    def __init__(self, *, window_s: int = 120, max_functions: int = 500,
                 registry: Registry | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        if window_s < 2 or max_functions < 1:
            raise ConfigError("window_s must be >= 2 and max_functions >= 1")
        self.window_s = window_s
        self.max_functions = max_functions
        self.registry = registry
        self.clock = clock
        self._slots = [_Slot() for _ in range(window_s)]
        self._functions: dict[tuple[str, str], list[int]] = {}  # calls, errors, sum, max
        self.total_calls = 0
        self.total_errors = 0
        self.started_at = clock()
        self._telemetry: Telemetry | None = None
        self._offload = OffloadSlot(self._on_stop, name="genapi-callstats")
        self._handler_id = f"genapi-callstats-{next(_ids)}"

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def attached(self) -> bool:
        """True while a telemetry stream feeds the statistics."""
        return self._telemetry is not None

    def attach(self, telemetry: Telemetry, *, offload: bool = True) -> None:
        """Start counting the requests of ``telemetry`` (moving from another one).

        ``offload=False`` counts on the thread that emits instead of a worker thread.
        """
        self.detach()
        handler = self._offload.open() if offload else self._on_stop
        telemetry.attach(self._handler_id, EXECUTOR_STOP, handler)
        self._telemetry = telemetry

    def detach(self) -> None:
        """Stop counting (the numbers so far, and the events queued, are kept)."""
        if self._telemetry is not None:
            self._telemetry.detach(self._handler_id)
            self._telemetry = None
        self._offload.close()

    def flush(self, timeout: float | None = 5.0) -> bool:
        """Wait until the queued requests are counted (True at once when not offloaded)."""
        return self._offload.flush(timeout)

    # -- recording ----------------------------------------------------------------------

    def _on_stop(self, event: str, measurements: Mapping[str, Any],
                 metadata: Mapping[str, Any]) -> None:
        self.record(str(metadata.get("service")), str(metadata.get("request_type")),
                    bool(metadata.get("success", True)), int(measurements["duration_us"]))

    def record(self, service: str, request_type: str, success: bool, duration_us: int) -> None:
        """Count one finished request (what the telemetry handler calls)."""
        second = int(self.clock())
        slot = self._slots[second % self.window_s]
        if slot.second != second:
            slot.reset(second)
        error = 0 if success else 1
        slot.calls += 1
        slot.errors += error
        slot.sum_us += duration_us
        if duration_us > slot.max_us:
            slot.max_us = duration_us
        slot.hist[bisect_left(_BOUNDS_US, duration_us)] += 1
        self.total_calls += 1
        self.total_errors += error
        entry = self._functions.get((service, request_type))
        if entry is None:
            entry = self._new_entry(service, request_type)
        entry[0] += 1
        entry[1] += error
        entry[2] += duration_us
        if duration_us > entry[3]:
            entry[3] = duration_us

    def _new_entry(self, service: str, request_type: str) -> list[int]:
        key = (service, request_type)
        if self.registry is not None and not _known(self.registry, service, request_type):
            key = _UNKNOWN
        elif len(self._functions) >= self.max_functions:
            key = _OTHER
        return self._functions.setdefault(key, [0, 0, 0, 0])

    # -- reading ------------------------------------------------------------------------

    def summary(self, *, seconds: int = 60, rate_seconds: int = 5,
                top: int = 20) -> dict[str, Any]:
        """JSON-ready figures: totals, the recent rate, percentiles and a per-second series.

        ``series`` holds the last ``seconds`` seconds, oldest first, the current (partial)
        second last. ``rate`` averages the ``rate_seconds`` complete seconds before the
        current one. ``latency_ms`` covers the whole series; its percentiles are the upper
        bounds of histogram buckets (capped by the largest duration seen).
        """
        seconds = max(1, min(seconds, self.window_s - 1))
        now = int(self.clock())
        series = []
        hist = [0] * (len(_BOUNDS_US) + 1)
        calls = errors = sum_us = max_us = 0
        for second in range(now - seconds + 1, now + 1):
            slot = self._slots[second % self.window_s]
            live = slot.second == second
            point: dict[str, Any] = {"t": second * 1000, "calls": slot.calls if live else 0,
                     "errors": slot.errors if live else 0,
                     "mean_ms": _ms(slot.sum_us / slot.calls) if live and slot.calls else None,
                     "p95_ms": _percentile(slot.hist, 0.95, slot.max_us) if live else None,
                     "max_ms": _ms(slot.max_us) if live and slot.calls else None}
            series.append(point)
            if live:
                calls += slot.calls
                errors += slot.errors
                sum_us += slot.sum_us
                max_us = max(max_us, slot.max_us)
                hist = [a + b for a, b in zip(hist, slot.hist, strict=True)]
        span = max(1, min(rate_seconds, seconds - 1))
        recent = series[-span - 1:-1] if len(series) > 1 else series
        rate_calls = sum(p["calls"] for p in recent)
        rate_errors = sum(p["errors"] for p in recent)
        functions = sorted(self._functions.items(), key=lambda kv: (-kv[1][0], kv[0]))[:top]
        return {
            "now_ms": int(self.clock() * 1000),
            "since_ms": int(self.started_at * 1000),
            "attached": self.attached,
            "total": {"calls": self.total_calls, "errors": self.total_errors},
            "rate": {"seconds": len(recent), "calls_per_s": round(rate_calls / len(recent), 3),
                     "errors_per_s": round(rate_errors / len(recent), 3)},
            "latency_ms": {"calls": calls, "errors": errors,
                           "mean": _ms(sum_us / calls) if calls else None,
                           "p50": _percentile(hist, 0.50, max_us),
                           "p95": _percentile(hist, 0.95, max_us),
                           "p99": _percentile(hist, 0.99, max_us),
                           "max": _ms(max_us) if calls else None},
            "series": series,
            "functions": [{"service": s, "request_type": r, "calls": c, "errors": e,
                           "mean_ms": _ms(total / c) if c else None, "max_ms": _ms(mx)}
                          for (s, r), (c, e, total, mx) in functions],
        }


def _known(registry: Registry, service: str, request_type: str) -> bool:
    try:
        registry.resolve(service, request_type)
    except FunctionNotFound:
        return False
    except FunctionDisabled:  # a real function (its name is bounded), switched off
        return True
    return True


def _ms(us: float) -> float:
    return round(us / 1000, 3)


def _percentile(hist: list[int], q: float, max_us: int) -> float | None:
    count = sum(hist)
    if not count:
        return None
    rank = q * count
    seen = 0
    for index, n in enumerate(hist):
        seen += n
        if seen >= rank and n:
            bound = _BOUNDS_US[index] if index < len(_BOUNDS_US) else max_us
            return _ms(min(bound, max_us))
    return _ms(max_us)
