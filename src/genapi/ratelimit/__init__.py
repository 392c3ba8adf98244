"""Sliding-window rate limiting with an in-memory and a Redis backend.

::

    from genapi.ratelimit import RateLimit, RateLimitConfig, RateLimiter, RedisStore

    limiter = RateLimiter(
        RateLimitConfig(global_limits=[RateLimit("user_id", 100, 60_000)]),
        store=RedisStore("redis://127.0.0.1:6379/0"),   # omit for the in-memory store
    )

Modules: ``limits`` (value objects), ``window`` (the pure arithmetic), ``store`` (the
backend interface), ``memory`` and ``redis`` (the backends), ``limiter`` (the facade the
executor calls), ``events`` (telemetry). ``redis`` is imported only when
:class:`RedisStore` is first used, so the in-memory default never loads redis-py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import events
from .limiter import RateLimiter
from .limits import (
    GLOBAL,
    STANDARD_KEYS,
    CustomKey,
    KeyName,
    LimitStatus,
    RateLimit,
    RateLimitConfig,
    Scope,
)
from .memory import MemoryStore
from .store import BucketCheck, Checks, RateLimitStore
from .window import Clock, Rejection, monotonic_ms

if TYPE_CHECKING:
    from .redis import RedisStore

__all__ = [
    "GLOBAL",
    "STANDARD_KEYS",
    "BucketCheck",
    "Checks",
    "Clock",
    "CustomKey",
    "KeyName",
    "LimitStatus",
    "MemoryStore",
    "RateLimit",
    "RateLimitConfig",
    "RateLimitStore",
    "RateLimiter",
    "RedisStore",
    "Rejection",
    "Scope",
    "events",
    "monotonic_ms",
]


def __getattr__(name: str) -> Any:
    if name == "RedisStore":
        from .redis import RedisStore

        return RedisStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
