"""Masking secrets in data that arrived from outside (a refused node config)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..schema.plain import plain

__all__ = ["redact"]

# Keys that may hold secrets.
_SECRET_WORDS = ("token", "secret", "password", "passwd", "private", "credential")


def redact(data: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-ready copy with secret-looking keys masked as ``"***"`` (nested maps too)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key)
        if any(word in name.lower() for word in _SECRET_WORDS):
            out[name] = "***"
        elif isinstance(value, Mapping):
            out[name] = redact(value)
        elif isinstance(value, list | tuple):
            out[name] = [redact(v) if isinstance(v, Mapping) else plain(v) for v in value]
        else:
            out[name] = plain(value)
    return out
