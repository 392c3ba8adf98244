"""Telemetry: named events with measurements and metadata, delivered to attached handlers.

Events are dotted names such as ``"executor.request.stop"``. Handlers run synchronously
where the event is emitted, so they must be quick; wrap slow work in
:class:`~genapi.OffloadingHandler` (or send it to a queue yourself). A handler that raises
is detached and logged, and never breaks the request that emitted the event::

    def on_stop(event, measurements, metadata):
        print(event, measurements["duration_us"], metadata["service"])

    genapi.telemetry.attach("my-app", ["executor.request.stop"], on_stop)

``attach`` also takes patterns ending in ``*`` (``"executor.*"``) which match every
catalogued event with that prefix. :func:`list_events` returns the catalogue.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

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

logger = logging.getLogger("genapi.telemetry")

Handler = Callable[[str, Mapping[str, Any], Mapping[str, Any]], None]


@dataclass(frozen=True, slots=True)
class EventSpec:
    """One catalogued event: its name, measurement keys, metadata keys and meaning."""

    name: str
    measurements: tuple[str, ...]
    metadata: tuple[str, ...]
    description: str

    @property
    def category(self) -> str:
        """The first segment of the name (``executor``, ``config`` …)."""
        return self.name.split(".", 1)[0]


_CATALOGUE: dict[str, EventSpec] = {}


def register_event(
    name: str, measurements: Iterable[str], metadata: Iterable[str], description: str
) -> str:
    """Add an event to the catalogue (genapi's modules register theirs at import)."""
    _CATALOGUE[name] = EventSpec(name, tuple(measurements), tuple(metadata), description)
    return name


def list_events() -> list[EventSpec]:
    """Every catalogued event, sorted by name."""
    return sorted(_CATALOGUE.values(), key=lambda spec: spec.name)


_REQUEST_META = ("request_id", "service", "request_type", "version", "user_id")
EXECUTOR_START = register_event(
    "executor.request.start", ("system_time",), _REQUEST_META, "A request entered the pipeline."
)
EXECUTOR_STOP = register_event(
    "executor.request.stop",
    ("duration_us",),
    (*_REQUEST_META, "success", "async", "error"),
    "A request produced its first answer (result, error, ack or stream init).",
)
EXECUTOR_EXCEPTION = register_event(
    "executor.request.exception",
    ("duration_us",),
    (*_REQUEST_META, "kind", "reason"),
    "A function raised an unexpected exception (the client saw Internal Server Error).",
)
for _action, _desc in (
    ("add", "A function config was registered (or replaced)."),
    ("delete", "A function config was deleted."),
    ("disable", "A function config was disabled."),
    ("enable", "A function config was enabled."),
):
    register_event(f"config.{_action}", (), ("service", "request_type", "version"), _desc)
register_event("config.batch_add", ("count",), ("service",), "Several configs were added at once.")
register_event("config.clear", (), (), "Every function config was removed.")


class Telemetry:
    """A set of handlers keyed by event name. Most code uses :data:`default_telemetry`."""

    def __init__(self) -> None:
        self._by_id: dict[str, tuple[tuple[str, ...], Handler]] = {}
        self._by_event: dict[str, tuple[tuple[str, Handler], ...]] = {}
        #: The names of the events something listens to now; ``name in telemetry.handled``
        #: is :meth:`has_handlers` without a call, for per-request paths.
        self.handled: frozenset[str] = frozenset()

    def attach(self, handler_id: str, events: str | Iterable[str], handler: Handler) -> None:
        """Attach ``handler`` to ``events`` under ``handler_id`` (replacing any previous)."""
        names = (events,) if isinstance(events, str) else tuple(events)
        expanded: list[str] = []
        for name in names:
            if name.endswith("*"):
                prefix = name[:-1]
                expanded.extend(n for n in _CATALOGUE if n.startswith(prefix))
            else:
                expanded.append(name)
        self.detach(handler_id)
        self._by_id[handler_id] = (tuple(dict.fromkeys(expanded)), handler)
        self._rebuild()

    def detach(self, handler_id: str) -> bool:
        """Detach a handler; returns whether it was attached."""
        found = self._by_id.pop(handler_id, None) is not None
        if found:
            self._rebuild()
        return found

    def handler_ids(self) -> list[str]:
        """Ids of the attached handlers."""
        return list(self._by_id)

    def has_handlers(self, event: str) -> bool:
        """True when something listens to ``event`` (lets callers skip building metadata)."""
        return event in self._by_event

    def _rebuild(self) -> None:
        by_event: dict[str, list[tuple[str, Handler]]] = {}
        for handler_id, (names, handler) in self._by_id.items():
            for name in names:
                by_event.setdefault(name, []).append((handler_id, handler))
        self._by_event = {name: tuple(hs) for name, hs in by_event.items()}
        self.handled = frozenset(self._by_event)

    def emit(
        self,
        event: str,
        measurements: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Deliver an event to its handlers, now, in attach order."""
        handlers = self._by_event.get(event)
        if not handlers:
            return
        m = measurements if measurements is not None else {}
        md = metadata if metadata is not None else {}
        for handler_id, handler in handlers:
            try:
                handler(event, m, md)
            except Exception:
                logger.exception(
                    "telemetry handler %r failed on %s and was detached", handler_id, event
                )
                self.detach(handler_id)


default_telemetry = Telemetry()
attach = default_telemetry.attach
detach = default_telemetry.detach
emit = default_telemetry.emit


def now_us() -> int:
    """Monotonic microseconds, for durations."""
    return time.perf_counter_ns() // 1000
