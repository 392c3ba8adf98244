"""The rate limiter the executor calls: a request in, nothing or an exception out.

::

    limiter = RateLimiter(RateLimitConfig(
        global_limits=[RateLimit("user_id", 100, 60_000)],
        api_limits=[RateLimit("user_id", 5, 1_000, service="chat", request_type="send")],
    ))
    executor = Executor(registry, rate_limiter=limiter)

Every applicable limit is checked first and the request is recorded only when all pass,
in one atomic store call, so a request rejected by one limit spends nothing of another.
The limits are compiled when the config changes, never per request.
"""

from __future__ import annotations

import asyncio
import logging
import operator
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, NoReturn, TypeVar

from ..errors import ConfigError, RateLimited, RateLimiterUnavailable
from ..messages import Request
from ..security import AdminAction, AdminGate
from ..telemetry.events import Telemetry, default_telemetry
from .events import CHECK, EXCEEDED, RESET
from .limits import (
    GLOBAL,
    MAX_VALUE_CHARS,
    CustomKey,
    LimitStatus,
    RateLimit,
    RateLimitConfig,
    Scope,
    bucket_value,
    limits_of,
    normal_scope,
)
from .memory import MemoryStore
from .store import BucketCheck, Checks, RateLimitStore
from .window import Rejection

__all__ = ["RateLimiter"]

logger = logging.getLogger("genapi.ratelimit")

_T = TypeVar("_T")


class _Rule:
    """A limit compiled for the hot path."""

    __slots__ = ("limit", "max_requests", "prefix", "value_of", "window_ms")

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self.prefix = limit.bucket_prefix
        self.max_requests = limit.max_requests
        self.window_ms = limit.window_ms
        # Standard keys are typed Request fields: a bare attribute read is enough.
        self.value_of: Callable[[Request], Any] = (
            limit.value_of if isinstance(limit.key, CustomKey) else operator.attrgetter(limit.key)
        )

    def check(self, value: str) -> BucketCheck:
        return BucketCheck(self.limit.bucket(value), self.max_requests, self.window_ms)


class RateLimiter:
    """Sliding-window rate limiting over a :class:`RateLimitStore`.

    ``store`` defaults to a fresh :class:`MemoryStore`. ``gate``, when given, must allow
    ``update_rate_limit_config`` for every change (limits, config, reset).
    ``timeout_ms`` bounds each backend call; a timeout is a backend failure like any other,
    answered as ``config.fail_open`` says.
    """

    def __init__(
        self,
        config: RateLimitConfig | None = None,
        *,
        store: RateLimitStore | None = None,
        gate: AdminGate | None = None,
        telemetry: Telemetry | None = None,
        timeout_ms: int = 1_000,
    ) -> None:
        if timeout_ms < 1:
            raise ConfigError("timeout_ms must be positive")
        self._telemetry = telemetry if telemetry is not None else default_telemetry
        self._store: RateLimitStore = (
            store if store is not None else MemoryStore(telemetry=self._telemetry)
        )
        self._gate = gate
        self._timeout_s = timeout_ms / 1000
        self._failures = _FailureLog()
        self._install(config if config is not None else RateLimitConfig())

    @property
    def shared(self) -> bool:
        """Whether the counts live outside this process (every gateway sees the same)."""
        return not isinstance(self._store, MemoryStore)

    def _install(self, config: RateLimitConfig) -> None:
        # Each function with API limits gets its whole rule list (globals first) compiled
        # in, so a check is one dict walk and one loop.
        global_rules = tuple(_Rule(limit) for limit in config.global_limits)
        api: dict[str, dict[str, tuple[_Rule, ...]]] = {}
        for limit in config.api_limits:
            if limit.service is None or limit.request_type is None:
                continue  # RateLimitConfig admits no such API limit
            by_type = api.setdefault(limit.service, {})
            rules = by_type.get(limit.request_type, global_rules)
            by_type[limit.request_type] = (*rules, _Rule(limit))
        self._config = config
        self._global = global_rules
        self._api = api
        self._active = config.enabled and bool(config.global_limits or config.api_limits)

    # -- the hot path -------------------------------------------------------------------

    def check(self, request: Request) -> Awaitable[None] | None:
        """Count ``request`` against every applicable limit.

        Returns None when it is allowed (synchronously with the memory store, and always
        when no limit applies) or an awaitable for a backend that does I/O. Raises
        :class:`~genapi.RateLimited` or :class:`~genapi.RateLimiterUnavailable`.
        """
        if not self._active:
            return None
        by_type = self._api.get(request.service)
        rules = self._global if by_type is None else by_type.get(request.request_type, self._global)
        # Allocated only once a limit applies: most anonymous traffic allocates nothing.
        checks: list[tuple[str, int, int]] | None = None
        applied: list[_Rule] | None = None
        for rule in rules:
            value = rule.value_of(request)
            if value:
                if checks is None or applied is None:
                    checks, applied = [], []
                if len(value) > MAX_VALUE_CHARS:
                    value = bucket_value(value)
                checks.append((rule.prefix + value, rule.max_requests, rule.window_ms))
                applied.append(rule)
        if checks is None or applied is None:
            return None
        timed = self._telemetry.has_handlers(CHECK)
        started = time.perf_counter_ns() if timed else 0
        try:
            outcome = self._store.acquire(checks)
        except Exception as exc:
            self._backend_failed(exc, request, started)
            return None
        if outcome is None:
            if timed:
                self._emit_check(request, started, "ok")
            return None
        if isinstance(outcome, Rejection):
            self._reject(request, outcome, checks, applied, started)
        return self._await(outcome, request, checks, applied, started)

    async def _await(
        self,
        pending: Awaitable[Rejection | None],
        request: Request,
        checks: Checks,
        rules: list[_Rule],
        started: int,
    ) -> None:
        try:
            async with asyncio.timeout(self._timeout_s):
                outcome = await pending
        except Exception as exc:
            self._backend_failed(exc, request, started)
            return
        if outcome is not None:
            self._reject(request, outcome, checks, rules, started)
        if self._telemetry.has_handlers(CHECK):
            self._emit_check(request, started, "ok")

    def _reject(
        self,
        request: Request,
        rejection: Rejection,
        checks: Checks,
        rules: list[_Rule],
        started: int,
    ) -> NoReturn:
        limit = rules[rejection.index].limit
        telemetry = self._telemetry
        if telemetry.has_handlers(EXCEEDED):
            telemetry.emit(
                EXCEEDED,
                {"retry_after_ms": rejection.retry_after_ms},
                {
                    "key": checks[rejection.index][0],
                    "key_type": limit.key_name,
                    "scope": limit.scope,
                    "max_requests": limit.max_requests,
                    "current_requests": rejection.current_requests,
                    "window_ms": limit.window_ms,
                    "request_id": request.request_id,
                    "user_id": request.user_id,
                },
            )
        if telemetry.has_handlers(CHECK):
            self._emit_check(request, started, "rate_limited")
        raise RateLimited(
            rejection.retry_after_ms,
            details={
                "key": limit.key_name,
                "scope": limit.scope,
                "max_requests": limit.max_requests,
                "current_requests": rejection.current_requests,
                "window_ms": limit.window_ms,
            },
        )

    def _backend_failed(self, exc: Exception, request: Request, started: int) -> None:
        fail_open = self._config.fail_open
        self._failures.report(exc, fail_open)
        if self._telemetry.has_handlers(CHECK):
            self._emit_check(request, started, "fail_open" if fail_open else "unavailable")
        if not fail_open:
            raise RateLimiterUnavailable() from exc

    def _emit_check(self, request: Request, started: int, result: str) -> None:
        duration_us = (time.perf_counter_ns() - started) // 1000 if started else 0
        self._telemetry.emit(
            CHECK,
            {"duration_us": duration_us},
            {
                "request_id": request.request_id,
                "user_id": request.user_id,
                "service": request.service,
                "request_type": request.request_type,
                "result": result,
            },
        )

    # -- reading ------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """Whether requests are checked at all."""
        return self._config.enabled

    @property
    def config(self) -> RateLimitConfig:
        """The whole configuration (immutable; change it with the methods below)."""
        return self._config

    async def status(
        self, value: str, *, scope: Scope = GLOBAL, key: str | None = None
    ) -> list[LimitStatus]:
        """Usage of ``value`` under each limit of ``scope`` (on ``key`` only, if given)."""
        rules = self._rules(scope, key)
        counts = await self._io(self._store.usage([rule.check(value) for rule in rules]))
        return [
            LimitStatus(
                key=rule.limit.key_name,
                scope=rule.limit.scope,
                max_requests=rule.max_requests,
                current_requests=count,
                remaining=max(rule.max_requests - count, 0),
                window_ms=rule.window_ms,
            )
            for rule, count in zip(rules, counts, strict=True)
        ]

    async def check_value(
        self, value: str, *, scope: Scope = GLOBAL, key: str | None = None
    ) -> list[LimitStatus]:
        """Count one request of ``value`` against the limits of ``scope`` (on ``key`` only,
        if given) outside any request: the usage after it, or :class:`~genapi.RateLimited`
        (nothing counted) when a limit is full.

        For work that is not a call but should spend the same allowance (a login attempt
        made over HTTP, say). Works while the limiter is disabled too: it is asked for
        explicitly. Gated like a change, since it spends the value's allowance.
        """
        self._require()
        rules = self._rules(scope, key)
        if not rules:
            return []
        checks = [rule.check(value) for rule in rules]
        outcome = self._store.acquire(checks)
        if outcome is not None and not isinstance(outcome, Rejection):
            outcome = await self._io(outcome)
        if isinstance(outcome, Rejection):
            limit = rules[outcome.index].limit
            raise RateLimited(outcome.retry_after_ms, details={
                "key": limit.key_name, "scope": limit.scope,
                "max_requests": limit.max_requests,
                "current_requests": outcome.current_requests, "window_ms": limit.window_ms})
        return await self.status(value, scope=scope, key=key)

    # -- changing (gated) ---------------------------------------------------------------

    async def clear(self) -> int | None:
        """Forget every key value's usage, under every limit (the limits stay); how many
        buckets there were, when the store can tell."""
        self._require()
        return await self._io(self._store.clear())

    async def reset(self, value: str, *, scope: Scope = GLOBAL, key: str | None = None) -> None:
        """Forget what ``value`` has used under the limits of ``scope`` (``key`` only)."""
        self._require()
        rules = self._rules(scope, key)
        await self._io(self._store.reset([rule.check(value) for rule in rules]))
        if self._telemetry.has_handlers(RESET):
            self._telemetry.emit(
                RESET, {}, {"key": value, "scope": normal_scope(scope), "rate_limit_key": key}
            )

    def update_config(
        self,
        *,
        global_limits: Iterable[RateLimit] | None = None,
        api_limits: Iterable[RateLimit] | None = None,
        enabled: bool | None = None,
        fail_open: bool | None = None,
    ) -> RateLimitConfig:
        """Replace the given parts of the config (lists replace whole lists); the new config.

        Raises :class:`~genapi.ConfigError` (changing nothing) when the result is invalid.
        """
        self._require()
        old = self._config
        config = RateLimitConfig(
            global_limits=old.global_limits if global_limits is None else tuple(global_limits),
            api_limits=old.api_limits if api_limits is None else tuple(api_limits),
            enabled=old.enabled if enabled is None else enabled,
            fail_open=old.fail_open if fail_open is None else fail_open,
        )
        self._install(config)
        return config

    def add_global_limit(self, limit: RateLimit) -> None:
        """Add a global limit (replacing one with the same key and window)."""
        self._add(limit, is_global=True)

    def add_api_limit(self, limit: RateLimit) -> None:
        """Add an API limit (replacing one with the same function, key and window)."""
        self._add(limit, is_global=False)

    def remove_global_limit(self, key: str, *, window_ms: int | None = None) -> bool:
        """Remove the global limits on ``key`` (one window, or all); whether any was."""
        return self._remove(GLOBAL, key, window_ms)

    def remove_api_limit(
        self, service: str, request_type: str, key: str, *, window_ms: int | None = None
    ) -> bool:
        """Remove the limits of one function on ``key`` (one window, or all)."""
        return self._remove((service, request_type), key, window_ms)

    async def aclose(self) -> None:
        """Close the store."""
        await self._store.aclose()

    # -- helpers ------------------------------------------------------------------------

    def _require(self) -> None:
        if self._gate is not None:
            self._gate.require(AdminAction.UPDATE_RATE_LIMIT_CONFIG)

    def _add(self, limit: RateLimit, *, is_global: bool) -> None:
        self._require()
        if (limit.scope == GLOBAL) != is_global:
            problem = (
                "a global limit has no service" if is_global
                else "an API limit needs service and request_type"
            )
            raise ConfigError("rate limit", [problem])
        self._install(self._config.with_limit(limit))

    def _remove(self, scope: Scope, key: str, window_ms: int | None) -> bool:
        self._require()
        config, removed = self._config.without(scope, key, window_ms)
        self._install(config)
        return removed

    def _rules(self, scope: Scope, key: str | None) -> list[_Rule]:
        return [_Rule(limit) for limit in limits_of(self._config.limits, scope, key)]

    async def _io(self, pending: Awaitable[_T]) -> _T:
        """An admin call to the store, within the timeout, failures translated."""
        try:
            async with asyncio.timeout(self._timeout_s):
                return await pending
        except RateLimiterUnavailable:
            raise
        except Exception as exc:
            raise RateLimiterUnavailable() from exc


class _FailureLog:
    """Logs backend failures at most once per interval, counting the ones held back.

    During an outage every request fails; one line per interval is enough to notice.
    """

    def __init__(self, interval_s: float = 10.0) -> None:
        self._interval_s = interval_s
        self._next = 0.0
        self._held = 0

    def report(self, exc: Exception, fail_open: bool) -> None:
        now = time.monotonic()
        if now < self._next:
            self._held += 1
            return
        self._next = now + self._interval_s
        held, self._held = self._held, 0
        logger.warning(
            "rate-limit backend failed (%s: %s), %s the request%s",
            type(exc).__name__, exc, "allowing" if fail_open else "rejecting",
            f"; {held} more failures since the last report" if held else "",
            exc_info=exc,
        )
