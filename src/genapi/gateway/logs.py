"""Logging for served gateways: secrets redacted from every line, genapi's warnings shown.

Tokens travel in URLs (phoenix.js sends ``?token=…``), headers and subprotocols, and
servers log URLs: uvicorn's access log prints the path with its query string, its
WebSocket lines too. :class:`RedactSecrets` is a logging filter that rewrites each record
before any handler formats it:

* ``?token=…`` / ``&access_token=…`` (and ``jwt``, ``password``, ``secret``, ``api_key``,
  ``authToken``) → ``?token=[redacted]``;
* ``Bearer …`` → ``Bearer [redacted]``; phoenix.js's ``base64url.bearer.phx.…``
  subprotocol → ``base64url.bearer.phx.[redacted]``;
* anything shaped like a JWT (three base64url parts, the first starting ``eyJ``) →
  ``[redacted]``.

:func:`log_config` is the uvicorn logging configuration ``genapi serve`` uses: uvicorn's
own, with the filter on every handler and genapi's loggers (``genapi.*``) shown from
WARNING up (``DEBUG`` with ``--log-level debug``) — authentication refusals, slow
consumers, failing handlers.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from ..security import redact

__all__ = ["RedactSecrets", "install_redaction", "log_config", "redact"]

def _clean(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


class RedactSecrets(logging.Filter):
    """Rewrites a record's message and arguments (never drops it). The arguments are
    redacted one by one, so formatters that read them (uvicorn's access log) still work."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(_clean(a) for a in args)
        elif isinstance(args, dict):
            record.args = {k: _clean(v) for k, v in args.items()}
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


_FILTER = RedactSecrets()


def install_redaction(logger: logging.Logger | None = None) -> None:
    """Add the filter to every handler of ``logger`` (the root logger by default)."""
    for handler in (logger or logging.getLogger()).handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)


def log_config(log_level: str = "info") -> dict[str, Any]:
    """uvicorn's logging configuration, redacting, with genapi's loggers shown."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact"] = {"()": RedactSecrets}
    for handler in config.get("handlers", {}).values():
        handler.setdefault("filters", []).append("redact")
    config["formatters"]["genapi"] = {"()": "uvicorn.logging.DefaultFormatter",
                                      "fmt": "%(levelprefix)s %(name)s: %(message)s"}
    config["handlers"]["genapi"] = {"formatter": "genapi", "class": "logging.StreamHandler",
                                    "stream": "ext://sys.stderr", "filters": ["redact"]}
    level = log_level.upper()
    genapi_level = level if level in ("DEBUG", "TRACE", "ERROR", "CRITICAL") else "WARNING"
    config["loggers"]["genapi"] = {
        "handlers": ["genapi"], "level": "DEBUG" if genapi_level == "TRACE" else genapi_level,
        "propagate": False}
    # Admin actions are always logged (who changed what, before and after): an operator
    # keeping genapi's noise at WARNING still needs the audit trail.
    config["loggers"]["genapi.admin.audit"] = {"handlers": ["genapi"], "level": "INFO",
                                               "propagate": False}
    return config
