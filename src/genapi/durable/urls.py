"""Choosing and configuring a durable store from a URL.

* ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` (SQLAlchemy's
  convention: the path is what follows ``sqlite:///``), ``sqlite:///:memory:`` (one
  process, gone at exit; for tests);
* ``postgresql://user@host:port/database`` (also ``postgres://``); ``?schema=name``
  picks the schema of the tables (default ``genapi``); other query parameters go to the
  driver.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from genapi.errors import ConfigError

from .store import DurableStore

__all__ = ["open_store", "parse_store_url"]

_SUBJECT = "durable store URL"


def parse_store_url(url: str) -> tuple[str, str, dict[str, str]]:
    """``(backend, target, options)``: ``("sqlite", path, {})`` or
    ``("postgres", url without schema=, {"schema": …})``. Raises :class:`ConfigError`."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        if parts.netloc or not url.startswith("sqlite:///"):
            raise ConfigError(
                _SUBJECT,
                [f"{url!r}: a SQLite URL is sqlite:///relative/path or sqlite:////abs/path"],
            )
        path = url[len("sqlite:///") :]
        if not path:
            raise ConfigError(_SUBJECT, [f"{url!r}: the SQLite URL names no file"])
        return "sqlite", urllib.parse.unquote(path), {}
    if scheme in ("postgresql", "postgres"):
        if not parts.hostname and not parts.path.strip("/"):
            raise ConfigError(_SUBJECT, [f"{url!r}: the Postgres URL names no host or database"])
        query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        options = {k: v for k, v in query if k == "schema"}
        rest = urllib.parse.urlencode([(k, v) for k, v in query if k != "schema"])
        return "postgres", urllib.parse.urlunsplit(parts._replace(query=rest)), options
    raise ConfigError(
        _SUBJECT,
        [f"{url!r}: unsupported scheme {parts.scheme!r} (use sqlite:/// or postgresql://)"],
    )


def open_store(url: str, **options: Any) -> DurableStore:
    """A store for ``url`` (not opened yet: ``await store.open()``).

    ``options`` go to the backend's constructor (:class:`SqliteStore` or
    :class:`PostgresStore`); a ``schema`` given both ways must agree. Only the chosen
    backend's driver is imported.
    """
    backend, target, from_url = parse_store_url(url)
    for key, value in from_url.items():
        if key in options and options[key] != value:
            raise ConfigError(_SUBJECT, [f"{key} is {value!r} in the URL but {options[key]!r}"])
        options[key] = value
    if backend == "sqlite":
        from .sqlite import SqliteStore

        return SqliteStore(target, **options)
    from .postgres import PostgresStore

    try:
        return PostgresStore(target, **options)
    except ValueError as exc:
        raise ConfigError(_SUBJECT, [str(exc)]) from exc
