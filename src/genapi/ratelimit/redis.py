"""The Redis store: exact sliding-window logs shared by every gateway on one Redis.

Each bucket is a sorted set ``<prefix><bucket>`` whose members are hits scored by their
time in milliseconds. A check is **one round trip**: ``EVALSHA`` of a Lua script that, for
every bucket of the request, drops the members that left the window and counts the rest;
only if no bucket is full does it add the hit to all of them and set each key's TTL to its
window (an idle bucket disappears by itself). Redis runs a script atomically, so
concurrent checks from any number of gateways never overshoot a limit. The script is
sent once per server (``SCRIPT LOAD`` the first time Redis answers ``NOSCRIPT``, for
example after a restart) and then called by its SHA-1.

**Time source.** By default the script reads the Redis server's clock (``TIME``), so
gateways with skewed clocks still agree on one timeline (this needs Redis 5 or later,
which replicates a script's effects rather than the script). Pass ``clock`` to send the
caller's time instead: tests use it to step time without sleeping; in production every
gateway would then need closely synchronised clocks.

Hit members are ``<random store id>:<counter>``, unique across gateways, so two hits in
the same millisecond are both counted. On Redis Cluster every key of one script must
live in one slot: give a ``prefix`` with a hash tag such as ``"{genapi-rl}:"``.

Nothing from ``redis`` escapes: its errors become :class:`~genapi.RateLimiterUnavailable`.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import secrets
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

from ..errors import ConfigError, RateLimiterUnavailable
from .store import Checks
from .window import Clock, Rejection

__all__ = ["RedisStore"]

# KEYS[i]: bucket i. ARGV[1]: now in ms, or "" for the server's clock. ARGV[2]: the hit's
# member. ARGV[1 + 2i], ARGV[2 + 2i]: max_requests and window_ms of bucket i.
# Returns {index (0-based) or -1, current_requests, retry_after_ms}.
_ACQUIRE = """
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local worst, worst_count, worst_wait = -1, 0, -1
for i = 1, #KEYS do
  local max = tonumber(ARGV[1 + 2 * i])
  local window = tonumber(ARGV[2 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  local count = redis.call('ZCARD', KEYS[i])
  if count >= max then
    local release = redis.call('ZRANGE', KEYS[i], count - max, count - max, 'WITHSCORES')
    local wait = math.max(tonumber(release[2]) + window - now, 0)
    if wait > worst_wait then
      worst, worst_count, worst_wait = i - 1, count, wait
    end
  end
end
if worst >= 0 then
  return {worst, worst_count, worst_wait}
end
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], now, ARGV[2])
  redis.call('PEXPIRE', KEYS[i], ARGV[2 + 2 * i])
end
return {-1, 0, 0}
"""

# KEYS[i]: bucket i. ARGV[1]: now in ms or "". ARGV[1 + i]: window_ms of bucket i.
# Scores are whole milliseconds, so "> now - window" is ">= now - window + 1".
_USAGE = """
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local counts = {}
for i = 1, #KEYS do
  counts[i] = redis.call('ZCOUNT', KEYS[i], now - tonumber(ARGV[1 + i]) + 1, '+inf')
end
return counts
"""


class _Script:
    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        # What SCRIPT LOAD answers, computed here so the first call needs no extra trip.
        self.sha = hashlib.sha1(source.encode()).hexdigest()


_ACQUIRE_SCRIPT = _Script(_ACQUIRE)
_USAGE_SCRIPT = _Script(_USAGE)


class RedisStore:
    """Bucket logs in Redis sorted sets; see the module docstring.

    ``url`` is a ``redis://`` URL. At most ``max_connections`` commands are in flight
    (so at most that many connections); further checks wait their turn, in order.
    ``socket_timeout_ms`` bounds connecting and each reply (the limiter adds its own
    per-check deadline on top, which also covers waiting for a turn).
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "genapi:rl:",
        clock: Clock | None = None,
        max_connections: int = 50,
        socket_timeout_ms: int = 1_000,
    ) -> None:
        if max_connections < 1:
            raise ConfigError("max_connections must be positive")
        timeout_s = socket_timeout_ms / 1000
        self._client = Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            # One quick retry covers a pooled connection that a Redis restart closed.
            retry=Retry(NoBackoff(), 1),
        )
        # The pool opens a connection per concurrent command; this bounds them. A FIFO
        # semaphore, because redis-py's BlockingConnectionPool lets newcomers overtake
        # waiters (we measured 600 ms waits at 64 checks in flight on 50 connections).
        self._slots = asyncio.Semaphore(max_connections)
        self._prefix = prefix
        self._clock = clock
        self._member_prefix = secrets.token_hex(8) + ":"
        self._counter = itertools.count()

    @property
    def prefix(self) -> str:
        """The prefix of every key this store writes."""
        return self._prefix

    def _now_arg(self) -> str:
        return "" if self._clock is None else str(self._clock())

    async def acquire(self, checks: Checks) -> Rejection | None:
        """Record a hit in every bucket if none is full; else the worst rejection."""
        if not checks:
            return None
        keys = []
        args: list[str | int] = [self._now_arg(), f"{self._member_prefix}{next(self._counter)}"]
        for bucket, max_requests, window_ms in checks:
            keys.append(self._prefix + bucket)
            args.append(max_requests)
            args.append(window_ms)
        index, current, wait = await self._run(_ACQUIRE_SCRIPT, keys, args)
        if index < 0:
            return None
        return Rejection(int(index), int(current), int(wait))

    async def usage(self, checks: Checks) -> list[int]:
        """How many requests each bucket counts now."""
        if not checks:
            return []
        keys = [self._prefix + bucket for bucket, _, _ in checks]
        args: list[str | int] = [self._now_arg(), *(window_ms for _, _, window_ms in checks)]
        counts = await self._run(_USAGE_SCRIPT, keys, args)
        return [int(count) for count in counts]

    async def reset(self, checks: Checks) -> None:
        """Forget the buckets."""
        if not checks:
            return
        async with self._slots:
            try:
                await self._client.unlink(*(self._prefix + bucket for bucket, _, _ in checks))
            except (RedisError, OSError) as exc:
                raise RateLimiterUnavailable() from exc

    async def clear(self) -> int:
        """Forget every bucket under this store's prefix; how many there were.

        SCAN, not KEYS: the walk does not block Redis for other clients. Hits recorded
        while it walks may survive it.
        """
        count = 0
        async with self._slots:
            try:
                batch: list[Any] = []
                async for key in self._client.scan_iter(match=_glob_escape(self._prefix) + "*",
                                                        count=500):
                    batch.append(key)
                    if len(batch) >= 500:
                        count += await self._client.unlink(*batch)
                        batch = []
                if batch:
                    count += await self._client.unlink(*batch)
            except (RedisError, OSError) as exc:
                raise RateLimiterUnavailable() from exc
        return count

    async def aclose(self) -> None:
        """Close the connections."""
        try:
            await self._client.aclose(close_connection_pool=True)
        except (RedisError, OSError) as exc:
            raise RateLimiterUnavailable() from exc

    async def _run(self, script: _Script, keys: list[str], args: list[str | int]) -> Any:
        async with self._slots:
            try:
                try:
                    return await self._client.evalsha(script.sha, len(keys), *keys, *args)
                except NoScriptError:
                    await self._client.script_load(script.source)
                    return await self._client.evalsha(script.sha, len(keys), *keys, *args)
            except (RedisError, OSError) as exc:
                raise RateLimiterUnavailable() from exc


def _glob_escape(text: str) -> str:
    """``text`` matched literally by a Redis glob (a prefix such as ``{rl}:`` is)."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)
