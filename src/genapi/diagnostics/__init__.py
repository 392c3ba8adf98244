"""Diagnostics: what a running gateway holds and how it will treat a call, as plain data.

::

    diag = Diagnostics(gateway, calls=stats)
    diag.call_flow("user_service", "get_user")["steps"]   # channel … response, a sentence each
    diag.snapshot()                                       # everything, JSON-ready

Every method reads state and returns dicts, lists, strings, numbers and None only, so the
results encode with ``json`` or ``msgspec`` as they are. Modules: ``report``
(:class:`Diagnostics`), ``flow`` (call flows), ``process`` (process health: memory,
CPU, loop lag, fds, tasks, GC, with thresholds), ``stats`` (:class:`CallStats`, live call
rates and latencies), ``redact`` (secret masking); ``plain`` (JSON-ready conversion) is
:func:`genapi.schema.plain.plain`.
"""

from __future__ import annotations

from ..schema.plain import plain
from .flow import call_flow, list_call_flows
from .process import HealthSettings, LoopLagMonitor, ProcessHealth, process_snapshot
from .redact import redact
from .report import CallSummary, Diagnostics
from .stats import LATENCY_BOUNDS_MS, CallStats

__all__ = [
    "LATENCY_BOUNDS_MS",
    "CallStats",
    "CallSummary",
    "Diagnostics",
    "HealthSettings",
    "LoopLagMonitor",
    "ProcessHealth",
    "call_flow",
    "list_call_flows",
    "plain",
    "process_snapshot",
    "redact",
]
