"""A bounded ring of the process's recent warning and error log records, for debug
reports (``genapi report``, ``GET /admin/report``).

One handler on the root logger per process (:func:`install_recent_errors`, idempotent;
a gateway installs it when it starts). It keeps the last ``capacity`` records at WARNING
and above, formatted at once (a record's arguments may change or die later), with
secrets redacted as they are stored; it never blocks and never raises.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any

from ..security import redact

__all__ = ["RecentErrors", "install_recent_errors", "recent_errors"]


class RecentErrors(logging.Handler):
    """The last ``capacity`` records at ``level`` and above, as plain dicts."""

    def __init__(self, capacity: int = 200, level: int = logging.WARNING) -> None:
        super().__init__(level)
        self._records: deque[dict[str, Any]] = deque(maxlen=capacity)
        self._lock_ = threading.Lock()
        self.dropped = 0  # records the ring pushed out

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
            entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                     + f".{int(record.msecs):03d}Z",
                     "level": record.levelname, "logger": record.name,
                     "message": redact(message)}
        except Exception:  # a broken record must not break the code that logged it
            return
        with self._lock_:
            if len(self._records) == self._records.maxlen:
                self.dropped += 1
            self._records.append(entry)

    def records(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The records kept, oldest first (the last ``limit`` of them)."""
        with self._lock_:
            items = list(self._records)
        return items[-limit:] if limit else items

    def clear(self) -> None:
        """Forget every record."""
        with self._lock_:
            self._records.clear()


_RING = RecentErrors()


def recent_errors() -> RecentErrors:
    """The process's ring (installed or not)."""
    return _RING


def install_recent_errors() -> RecentErrors:
    """Attach the ring to the root logger (once) and return it. The ``genapi`` logger
    gets it too when it does not propagate (``genapi serve``'s logging configuration)."""
    for logger in (logging.getLogger(), logging.getLogger("genapi")):
        attach = logger is logging.getLogger() or not logger.propagate
        if attach and _RING not in logger.handlers:
            logger.addHandler(_RING)
    return _RING
