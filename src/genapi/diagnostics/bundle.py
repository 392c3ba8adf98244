"""The debug report: everything an operator sends with a bug report, secrets removed.

:func:`debug_report` gathers sections from :class:`~genapi.Diagnostics` (registry,
limits, health with the process's figures, cluster, pools, connections), a config summary
the caller gives, the recent warnings and errors (:mod:`.errorlog`) and the versions of
genapi, Python and the libraries it runs on. :func:`scrub` then removes secrets from the
whole of it, three ways at once:

* values under secret-looking keys (``token``, ``secret``, ``password``, ``dsn``…) are
  replaced by ``[redacted]`` (a None stays None: "not set" is useful to know);
* in every string, what :func:`genapi.security.redact` finds (``?token=…`` query values,
  ``Bearer …``, JWTs) and the password of any URL (``postgresql://user:[redacted]@host``);
* every known secret value (the admin, push and metrics tokens, a JWT key, the webhook
  secret…: the caller lists them) wherever it appears, even inside a longer string.
"""

from __future__ import annotations

import importlib.metadata
import platform
import re
import sys
import time
from collections.abc import Iterable, Mapping
from typing import Any, Final

from .._version import __version__
from ..schema.plain import plain
from ..security import REDACTED, redact
from .errorlog import RecentErrors
from .report import Diagnostics

__all__ = ["REPORT_SECTIONS", "debug_report", "scrub", "versions"]

#: The sections of a report, in order (each becomes a JSON file of the bundle).
REPORT_SECTIONS: Final = ("versions", "config", "registry", "limits", "health", "cluster",
                          "pools", "connections", "recent_errors")

_SECRET_KEY: Final = re.compile(
    r"(?i)(token|secret|password|passwd|credential|private|api_?key|dsn|authorization|"
    r"cookie|signing)")
_URL_PASSWORD: Final = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^:/@\s]*:)[^@\s/]+(@)")
_PACKAGES: Final = ("msgspec", "starlette", "uvicorn", "websockets", "nats-py", "redis",
                    "prometheus-client", "opentelemetry-api", "pyjwt", "asyncpg",
                    "psycopg", "httpx", "typer", "uvloop")


def _clean_text(text: str, known: list[str]) -> str:
    for secret in known:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return _URL_PASSWORD.sub(r"\1" + REDACTED + r"\2", redact(text))


def scrub(data: Any, secrets: Iterable[str | None] = ()) -> Any:
    """A copy of JSON-ready ``data`` without secrets (see the module docs). Known
    secrets shorter than 6 characters are not searched for (they would mask ordinary
    words); keys still mask them."""
    known = sorted({s for s in secrets if isinstance(s, str) and len(s) >= 6},
                   key=len, reverse=True)  # longest first: a secret may contain another
    return _scrub(data, known)


def _scrub(value: Any, known: list[str]) -> Any:
    if isinstance(value, str):
        return _clean_text(value, known)
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            name = _clean_text(str(key), known)
            if (_SECRET_KEY.search(name) and item is not None and not isinstance(item, bool)
                    and not _counts(item)):
                out[name] = REDACTED
            else:
                out[name] = _scrub(item, known)
        return out
    if isinstance(value, list | tuple):
        return [_scrub(item, known) for item in value]
    return value


def _counts(value: Any) -> bool:
    # "tokens: 3" or {"push": 1} under a secret-looking key are figures, not secrets.
    return isinstance(value, int | float) or (
        isinstance(value, Mapping) and all(isinstance(v, int | float) for v in value.values()))


def versions() -> dict[str, Any]:
    """genapi's, Python's and the installed libraries' versions, and the platform."""
    libraries = {}
    for name in _PACKAGES:
        try:
            libraries[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return {"genapi": __version__, "python": sys.version.split()[0],
            "implementation": platform.python_implementation(),
            "platform": platform.platform(), "libraries": libraries}


def debug_report(diagnostics: Diagnostics, *, config: Mapping[str, Any] | None = None,
                 secrets: Iterable[str | None] = (), errors: RecentErrors | None = None,
                 error_limit: int = 200) -> dict[str, Any]:
    """Every section of :data:`REPORT_SECTIONS`, JSON-ready and scrubbed of secrets."""
    rate_limits = diagnostics.rate_limits()
    report = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "versions": versions(),
        "config": plain(dict(config or {})),
        "registry": diagnostics.config_cache(),
        "limits": {"rate_limits": rate_limits,
                   "connections": plain((config or {}).get("limits"))},
        "health": diagnostics.health(),
        "cluster": diagnostics.cluster(),
        "pools": diagnostics.pools(),
        "connections": diagnostics.connections(limit=50),
        "recent_errors": {"records": errors.records(error_limit) if errors else [],
                          "dropped": errors.dropped if errors else 0},
    }
    return dict(scrub(report, secrets))
