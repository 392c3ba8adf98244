"""The backend interface of the rate limiter: where bucket logs live.

A store knows buckets, not limits or requests. :class:`~genapi.ratelimit.RateLimiter`
turns a request into :class:`BucketCheck` s and hands them to the store in one call, so a
store can check them all and record the request only when every one passes, atomically.

Two implementations ship: :class:`~genapi.ratelimit.MemoryStore` (the default, one
process) and :class:`~genapi.ratelimit.RedisStore` (shared by several gateways).
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import NamedTuple, Protocol, TypeAlias

from .window import Rejection

__all__ = ["BucketCheck", "Checks", "RateLimitStore"]


class BucketCheck(NamedTuple):
    """One bucket to check for one request: its name and the limit that owns it."""

    bucket: str
    max_requests: int
    window_ms: int


#: What a store is handed: :class:`BucketCheck` s or plain ``(bucket, max_requests,
#: window_ms)`` tuples. The limiter sends plain tuples: they cost a quarter as much to build.
Checks: TypeAlias = Sequence[tuple[str, int, int]]


class RateLimitStore(Protocol):
    """Holds the sliding-window logs of buckets.

    ``acquire`` is the hot path. It may answer synchronously (the memory store does, so a
    check costs no coroutine) or return an awaitable (the Redis store). Either way it must
    be atomic: check every bucket, then record one hit in all of them only if none is full.
    Stores keep their own time source, so that one shared store can use one clock.

    Failures are raised as :class:`~genapi.RateLimiterUnavailable` (or any exception; the
    limiter treats them all as a backend failure), never as a dependency's exception type.
    """

    def acquire(
        self, checks: Checks
    ) -> Rejection | Awaitable[Rejection | None] | None:
        """Record a hit in every bucket if none is full; else the worst :class:`Rejection`."""
        ...

    async def usage(self, checks: Checks) -> list[int]:
        """How many requests each bucket counts now (records nothing)."""
        ...

    async def reset(self, checks: Checks) -> None:
        """Forget the buckets."""
        ...

    async def clear(self) -> int | None:
        """Forget every bucket; how many there were, when the store knows cheaply."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
