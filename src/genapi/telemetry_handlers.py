"""Ready-made telemetry handlers and attach helpers per event category.

Telemetry handlers run synchronously where an event is emitted — on the request path. A
handler that does slow work (writes to a database, calls a collector over the network)
must not run there: wrap it in :class:`OffloadingHandler`, which queues events (bounded)
for a worker thread and counts what it had to drop::

    slow = OffloadingHandler(ship_to_collector, max_queue=10_000)
    genapi.telemetry_handlers.attach_executor("shipper", slow)
    ...
    slow.close()      # on shutdown: handle what is queued, then stop

genapi's own exporters use it.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Mapping
from typing import Any

from .telemetry import Handler, Telemetry, default_telemetry

__all__ = [
    "CATEGORIES",
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

    The queue holds at most ``max_queue`` events; past that, events are dropped and
    counted in :attr:`dropped`. :meth:`flush` waits until the queue is empty;
    :meth:`close` flushes (up to ``timeout``) and stops the worker.
    """

    def __init__(self, handler: Handler, *, max_queue: int = 10_000,
                 name: str = "genapi-telemetry") -> None:
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        self.handler = handler
        self.dropped = 0
        self.handled = 0
        self.failed = 0
        self._queue: queue.Queue[tuple[str, Mapping[str, Any], Mapping[str, Any]] | None] = (
            queue.Queue(maxsize=max_queue))
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._started = False
        self._lock = threading.Lock()

    def __call__(self, event: str, measurements: Mapping[str, Any],
                 metadata: Mapping[str, Any]) -> None:
        """Queue an event (never blocks; drops and counts when the queue is full)."""
        if not self._started:
            self._start()
        try:
            self._queue.put_nowait((event, dict(measurements), dict(metadata)))
        except queue.Full:
            self.dropped += 1

    def _start(self) -> None:
        with self._lock:
            if not self._started:
                self._started = True
                self._thread.start()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                try:
                    self.handler(*item)
                    self.handled += 1
                except Exception:
                    self.failed += 1
                    logger.exception("offloaded telemetry handler failed on %s", item[0])
            finally:
                self._queue.task_done()

    @property
    def pending(self) -> int:
        """Events queued and not handled yet."""
        return self._queue.qsize()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued event was handled; False if ``timeout`` passed first."""
        if not self._started:
            return True
        done = threading.Event()

        def wait() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        return done.wait(timeout)

    def close(self, timeout: float | None = 5.0) -> None:
        """Flush (up to ``timeout``), then stop the worker thread."""
        if not self._started:
            return
        self.flush(timeout)
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            return  # the worker is stuck on a slow handler; it is a daemon thread
        self._thread.join(timeout)


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
        raise ValueError(f"unknown category {category!r} (one of: {', '.join(CATEGORIES)})")
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
