"""Telemetry: named events, their handlers, and the executor's request histograms.

* :mod:`.events` — the event catalogue, :class:`Telemetry` (attach, detach, emit) and the
  process-wide default;
* :mod:`.handlers` — ready handlers: logging, the :class:`OffloadingHandler` that moves
  slow work off the request path, per-category attach helpers;
* :mod:`.histograms` — :class:`RequestHistograms`, counted inline by the executor.
"""

from __future__ import annotations

from .events import (
    EventSpec,
    Handler,
    Telemetry,
    attach,
    default_telemetry,
    detach,
    emit,
    list_events,
)

__all__ = [
    "EventSpec",
    "Handler",
    "Telemetry",
    "attach",
    "default_telemetry",
    "detach",
    "emit",
    "list_events",
]
