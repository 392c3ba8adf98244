"""Ready-made telemetry handlers and attach helpers per event category.

Telemetry handlers run synchronously where an event is emitted — on the request path. A
handler that does slow work (writes to a database, calls a collector over the network)
must not run there: wrap it in :class:`OffloadingHandler`, which queues events (bounded)
for a worker thread and counts what it had to drop::

    slow = OffloadingHandler(ship_to_collector, max_queue=10_000)
    genapi.telemetry.handlers.attach_executor("shipper", slow)
    ...
    slow.close()      # on shutdown: handle what is queued, then stop

genapi's own exporters use it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from .events import Handler, Telemetry, default_telemetry

__all__ = [
    "CATEGORIES",
    "OffloadSlot",
    "OffloadingHandler",
    "attach_all",
    "attach_category",
    "attach_cluster",
    "attach_config",
    "attach_connections",
    "attach_default_logger",
    "attach_executor",
    "attach_hooks",
    "attach_rate_limiter",
    "attach_relay",
    "attach_worker_pool",
    "logging_handler",
]

logger = logging.getLogger("genapi.telemetry")

#: Event categories (the first segment of event names).
CATEGORIES = ("executor", "rate_limiter", "hook", "worker_pool", "config", "node",
              "connection", "relay")


class OffloadingHandler:
    """A handler that queues events for ``handler`` on a worker thread.

    The emitter pays for one ``deque.append`` — no lock, no copy, no wake-up: the worker
    drains the queue in batches, sleeping ``interval`` seconds when it finds it empty, so
    events reach ``handler`` up to ``interval`` late. The queue holds at most ``max_queue``
    events; past that, events are dropped and counted in :attr:`dropped`. ``handler``
    receives the emitter's own mappings (genapi's emitters never change them after
    emitting; handlers must not either). :meth:`flush` waits until the queue is handled;
    :meth:`close` flushes (up to ``timeout``) and stops the worker.
    """

    def __init__(self, handler: Handler, *, max_queue: int = 10_000,
                 name: str = "genapi-telemetry", interval: float = 0.05) -> None:
        if max_queue < 1:
            raise ConfigError("max_queue must be at least 1")
        if interval <= 0:
            raise ConfigError("interval must be positive")
        self.handler = handler
        self.max_queue = max_queue
        self.interval = interval
        self.dropped = 0
        self.handled = 0
        self.failed = 0
        self._queue: deque[tuple[str, Mapping[str, Any], Mapping[str, Any]]] = deque()
        self._name = name
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._idle = threading.Condition(self._lock)
        self._busy = False
        self._closing = False

    def __call__(self, event: str, measurements: Mapping[str, Any],
                 metadata: Mapping[str, Any]) -> None:
        """Queue an event (never blocks; drops and counts when the queue is full)."""
        if self._thread is None:
            self._start()
        queue = self._queue
        if len(queue) >= self.max_queue:
            self.dropped += 1
        else:
            queue.append((event, measurements, metadata))

    def _start(self) -> None:
        with self._lock:
            if self._thread is None and not self._closing:
                self._thread = threading.Thread(target=self._work, name=self._name,
                                                daemon=True)
                self._thread.start()

    def _work(self) -> None:
        queue = self._queue
        while True:
            if not queue:
                with self._idle:
                    self._idle.notify_all()
                if self._closing and not queue:  # re-read: events may have come meanwhile
                    return
                self._wake.wait(self.interval)
                self._wake.clear()
                continue
            self._busy = True
            try:
                while queue:
                    item = queue.popleft()
                    try:
                        self.handler(*item)
                        self.handled += 1
                    except Exception:
                        self.failed += 1
                        logger.exception("offloaded telemetry handler failed on %s",
                                         item[0])
            finally:
                self._busy = False

    @property
    def pending(self) -> int:
        """Events queued and not handled yet."""
        return len(self._queue)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued event was handled; False if ``timeout`` passed first."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            return not self._queue
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while self._queue or self._busy:
                self._wake.set()
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                # Short waits: the worker notifies only when it finds the queue empty.
                self._idle.wait(0.01 if remaining is None else min(remaining, 0.01))
        return True

    def close(self, timeout: float | None = 5.0) -> None:
        """Flush (up to ``timeout``), then stop the worker thread."""
        self._closing = True
        thread = self._thread
        if thread is None:
            return
        self.flush(timeout)
        self._wake.set()
        thread.join(timeout)  # a handler stuck past it is left: the thread is a daemon


class OffloadSlot:
    """The :class:`OffloadingHandler` of one exporter: made when first needed, made anew
    after :meth:`close` (a gateway that stops and starts again), with the drops of every
    handler it made counted in :attr:`dropped`."""

    def __init__(self, handler: Handler, *, name: str) -> None:
        self._target = handler
        self._name = name
        self._dropped = 0  # by the handlers already closed
        self.handler: OffloadingHandler | None = None

    def open(self) -> OffloadingHandler:
        """The current handler, made if there is none."""
        if self.handler is None:
            self.handler = OffloadingHandler(self._target, name=self._name)
        return self.handler

    def close(self) -> None:
        """Close the current handler (it handles what is queued first)."""
        if self.handler is not None:
            self.handler.close()
            self._dropped += self.handler.dropped
            self.handler = None

    def flush(self, timeout: float | None = 5.0) -> bool:
        """Wait until the queued events are handled (True at once without a handler)."""
        return self.handler.flush(timeout) if self.handler is not None else True

    @property
    def dropped(self) -> int:
        """Events dropped because a handler's queue was full."""
        return self._dropped + (self.handler.dropped if self.handler is not None else 0)


def logging_handler(name: str = "genapi.events", level: int = logging.DEBUG) -> Handler:
    """A handler logging each event with its measurements and metadata."""
    events_logger = logging.getLogger(name)

    def log(event: str, measurements: Mapping[str, Any], metadata: Mapping[str, Any]) -> None:
        if events_logger.isEnabledFor(level):
            events_logger.log(level, "%s %s %s", event, dict(measurements), dict(metadata))

    return log


def attach_category(handler_id: str, category: str, handler: Handler,
                    telemetry: Telemetry | None = None) -> None:
    """Attach ``handler`` to every catalogued event of ``category``."""
    if category not in CATEGORIES:
        raise ConfigError(f"unknown category {category!r} (one of: {', '.join(CATEGORIES)})")
    (telemetry or default_telemetry).attach(handler_id, f"{category}.*", handler)


def attach_all(handler_id: str, handler: Handler, telemetry: Telemetry | None = None) -> None:
    """Attach ``handler`` to every catalogued event."""
    (telemetry or default_telemetry).attach(handler_id, "*", handler)


def attach_executor(handler_id: str, handler: Handler,
                    telemetry: Telemetry | None = None) -> None:
    """Attach ``handler`` to every ``executor.*`` event (requests, retries, cancels)."""
    attach_category(handler_id, "executor", handler, telemetry)


def attach_rate_limiter(handler_id: str, handler: Handler,
                        telemetry: Telemetry | None = None) -> None:
    """Attach ``handler`` to every ``rate_limiter.*`` event."""
    attach_category(handler_id, "rate_limiter", handler, telemetry)


def attach_hooks(handler_id: str, handler: Handler, telemetry: Telemetry | None = None) -> None:
    """Attach ``handler`` to every ``hook.*`` event."""
    attach_category(handler_id, "hook", handler, telemetry)


def attach_worker_pool(handler_id: str, handler: Handler,
                       telemetry: Telemetry | None = None) -> None:
    """Attach ``handler`` to every ``worker_pool.*`` event (tasks and breakers)."""
    attach_category(handler_id, "worker_pool", handler, telemetry)


def attach_config(handler_id: str, handler: Handler, telemetry: Telemetry | None = None) -> None:
    """Attach ``handler`` to every ``config.*`` event (registry, push, pull)."""
    attach_category(handler_id, "config", handler, telemetry)


def attach_cluster(handler_id: str, handler: Handler,
                   telemetry: Telemetry | None = None) -> None:
    """Attach ``handler`` to every ``node.*`` event (nodes up and down)."""
    attach_category(handler_id, "node", handler, telemetry)


def attach_connections(handler_id: str, handler: Handler,
                       telemetry: Telemetry | None = None) -> None:
    """Attach ``handler`` to every ``connection.*`` event (open, close, slow consumers)."""
    attach_category(handler_id, "connection", handler, telemetry)


def attach_relay(handler_id: str, handler: Handler, telemetry: Telemetry | None = None) -> None:
    """Attach ``handler`` to every ``relay.*`` event."""
    attach_category(handler_id, "relay", handler, telemetry)


def attach_default_logger(handler_id: str = "genapi-default-logger",
                          level: int = logging.DEBUG,
                          telemetry: Telemetry | None = None) -> None:
    """Log every event (logger ``genapi.events``), offloaded so logging never blocks calls."""
    attach_all(handler_id, OffloadingHandler(logging_handler(level=level)), telemetry)
