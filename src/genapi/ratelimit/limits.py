"""Rate-limit value objects: limits, their scope, and how a request yields a key value.

A limit counts requests per *key value* (a user id, a device id, an IP address, or what a
custom key function returns) inside a sliding window::

    RateLimit("user_id", 100, 60_000)                                   # global
    RateLimit("ip_address", 5, 1_000, service="auth", request_type="login")  # per API

A request whose key value is missing or empty is not counted by that limit. Within one
scope a limit is identified by its key name and window, so one scope may hold
``user_id`` 10 per second *and* ``user_id`` 1,000 per hour.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Literal, TypeAlias, cast
from urllib.parse import quote

from ..errors import ConfigError
from ..messages import Request

__all__ = [
    "GLOBAL",
    "MAX_VALUE_CHARS",
    "STANDARD_KEYS",
    "CustomKey",
    "KeyName",
    "LimitStatus",
    "RateLimit",
    "RateLimitConfig",
    "Scope",
    "bucket_value",
    "limits_of",
    "normal_scope",
]

KeyName: TypeAlias = Literal["user_id", "device_id", "ip_address"]
#: The trusted Request fields a limit may count by.
STANDARD_KEYS: Final[frozenset[str]] = frozenset({"user_id", "device_id", "ip_address"})
GLOBAL: Final = "global"
#: ``"global"`` or ``(service, request_type)``.
Scope: TypeAlias = Literal["global"] | tuple[str, str]


@dataclasses.dataclass(frozen=True, slots=True)
class CustomKey:
    """A named key function: ``func(request)`` returns the value to count by, or None.

    The name takes part in bucket names, so two functions with the same name share buckets.
    """

    name: str
    func: Callable[[Request], str | None]

    def __post_init__(self) -> None:
        if not self.name or self.name in STANDARD_KEYS:
            raise ConfigError(
                "rate limit key", [f"custom key name must be non-empty and not {self.name!r}"]
            )

    @classmethod
    def from_arg(cls, arg: str) -> CustomKey:
        """Count by the string argument ``arg`` (client-controlled: use for fairness only)."""

        def value(request: Request) -> str | None:
            found = request.args.get(arg)
            return found if isinstance(found, str) else None

        return cls(f"arg:{arg}", value)


@dataclasses.dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``max_requests`` per key value in any ``window_ms`` milliseconds.

    Without ``service``/``request_type`` the limit is global (every request); with both it
    applies only to that function.
    """

    key: KeyName | CustomKey
    max_requests: int
    window_ms: int
    _: dataclasses.KW_ONLY
    service: str | None = None
    request_type: str | None = None

    def __post_init__(self) -> None:
        errors = []
        key = self.key
        if not isinstance(key, CustomKey) and not (
            isinstance(key, str) and key in STANDARD_KEYS
        ):
            errors.append(
                f"key must be one of {sorted(STANDARD_KEYS)} or a CustomKey, got {key!r}"
            )
        for name in ("max_requests", "window_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                errors.append(f"{name} must be a positive integer, got {value!r}")
        if (self.service is None) != (self.request_type is None):
            errors.append("service and request_type must be given together")
        elif self.service is not None and not (self.service and self.request_type):
            errors.append("service and request_type must be non-empty")
        if errors:
            raise ConfigError("rate limit", errors)

    @property
    def key_name(self) -> str:
        """``"user_id"``, ``"device_id"``, ``"ip_address"`` or the custom key's name."""
        key = self.key
        return key.name if isinstance(key, CustomKey) else key

    @property
    def scope(self) -> Scope:
        """``"global"`` or ``(service, request_type)``."""
        if self.service is None or self.request_type is None:
            return GLOBAL
        return (self.service, self.request_type)

    @property
    def identity(self) -> tuple[Scope, str, int]:
        """What makes two limits the same limit: scope, key name and window."""
        return (self.scope, self.key_name, self.window_ms)

    @property
    def bucket_prefix(self) -> str:
        """The namespace of this limit's buckets; append a key value to name one.

        Every part before the value is percent-encoded, so the colon-separated parts can
        never run into each other: ``user_id "x"`` and ``device_id "x"`` never meet, and
        neither do two windows of one key.
        """
        parts = [quote(self.key_name, safe=""), str(self.window_ms)]
        if self.service is not None and self.request_type is not None:
            head = f"a:{quote(self.service, safe='')}:{quote(self.request_type, safe='')}"
        else:
            head = "g"
        return ":".join([head, *parts]) + ":"

    def bucket(self, value: str) -> str:
        """The name of the bucket counting ``value`` under this limit."""
        return self.bucket_prefix + bucket_value(value)

    def value_of(self, request: Request) -> str | None:
        """The key value ``request`` is counted under, or None when the limit skips it."""
        key = self.key
        value: object = key.func(request) if isinstance(key, CustomKey) else getattr(request, key)
        return value if isinstance(value, str) and value else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly description (a custom key appears by name)."""
        out: dict[str, Any] = {
            "key": self.key_name,
            "max_requests": self.max_requests,
            "window_ms": self.window_ms,
        }
        if self.service is not None:
            out["service"] = self.service
            out["request_type"] = self.request_type
        return out

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> RateLimit:
        """Build a limit from a mapping such as ``{"key": "user_id", "max_requests": 5, …}``.

        Only the standard key names can be given this way; raises :class:`ConfigError`.
        """
        unknown = set(data) - {"key", "max_requests", "window_ms", "service", "request_type"}
        if unknown:
            raise ConfigError("rate limit", [f"unknown fields: {sorted(unknown)}"])
        missing = [name for name in ("key", "max_requests", "window_ms") if name not in data]
        if missing:
            raise ConfigError("rate limit", [f"missing fields: {missing}"])
        return cls(
            cast(KeyName, data["key"]),
            data["max_requests"],
            data["window_ms"],
            service=data.get("service"),
            request_type=data.get("request_type"),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class LimitStatus:
    """How much of one limit a key value has used right now."""

    key: str
    scope: Scope
    max_requests: int
    current_requests: int
    remaining: int
    window_ms: int


@dataclasses.dataclass(frozen=True, slots=True)
class RateLimitConfig:
    """Every limit of a limiter, plus its switches.

    ``enabled=False`` lets everything through. ``fail_open`` decides what a backend
    failure means: allow (True) or answer ``Rate limit service unavailable`` (False).
    """

    global_limits: tuple[RateLimit, ...] = ()
    api_limits: tuple[RateLimit, ...] = ()
    enabled: bool = True
    fail_open: bool = True

    def __post_init__(self) -> None:
        # Accept any iterable (lists from JSON or user code) but store tuples.
        object.__setattr__(self, "global_limits", tuple(self.global_limits))
        object.__setattr__(self, "api_limits", tuple(self.api_limits))
        errors = []
        for limit in self.global_limits:
            if limit.scope != GLOBAL:
                errors.append(f"global limit {limit.to_dict()} has a service")
        for limit in self.api_limits:
            if limit.scope == GLOBAL:
                errors.append(f"API limit {limit.to_dict()} needs service and request_type")
        seen: set[tuple[Scope, str, int]] = set()
        for limit in (*self.global_limits, *self.api_limits):
            if limit.identity in seen:
                errors.append(f"duplicate limit {limit.to_dict()} (same scope, key and window)")
            seen.add(limit.identity)
        if errors:
            raise ConfigError("rate limit config", errors)

    @property
    def limits(self) -> tuple[RateLimit, ...]:
        """Global limits, then API limits."""
        return (*self.global_limits, *self.api_limits)

    def with_limit(self, limit: RateLimit) -> RateLimitConfig:
        """A copy with ``limit`` added, replacing one with the same scope, key and window."""
        if limit.scope == GLOBAL:
            kept = [old for old in self.global_limits if old.identity != limit.identity]
            return dataclasses.replace(self, global_limits=(*kept, limit))
        kept = [old for old in self.api_limits if old.identity != limit.identity]
        return dataclasses.replace(self, api_limits=(*kept, limit))

    def without(
        self, scope: Scope, key: str, window_ms: int | None = None
    ) -> tuple[RateLimitConfig, bool]:
        """A copy without the limits of ``scope`` on ``key`` (one window, or all).

        Also says whether anything was removed.
        """
        scope = normal_scope(scope)

        def kept(limits: tuple[RateLimit, ...]) -> tuple[RateLimit, ...]:
            return tuple(
                old for old in limits
                if not _selects(old, scope, key)
                or (window_ms is not None and old.window_ms != window_ms)
            )

        if scope == GLOBAL:
            remaining = kept(self.global_limits)
            changed = len(remaining) != len(self.global_limits)
            return dataclasses.replace(self, global_limits=remaining), changed
        remaining = kept(self.api_limits)
        changed = len(remaining) != len(self.api_limits)
        return dataclasses.replace(self, api_limits=remaining), changed

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly description."""
        return {
            "enabled": self.enabled,
            "fail_open": self.fail_open,
            "global_limits": [limit.to_dict() for limit in self.global_limits],
            "api_limits": [limit.to_dict() for limit in self.api_limits],
        }


#: Key values longer than this are replaced by a digest in bucket names.
MAX_VALUE_CHARS: Final = 128


def bucket_value(value: str) -> str:
    """``value`` as it appears in a bucket name: itself, or a digest when it is long.

    ``device_id`` comes from the client's payload; hashing long values keeps one request
    from planting a megabyte-long key in the store.
    """
    if len(value) <= MAX_VALUE_CHARS:
        return value
    return "#sha256:" + hashlib.sha256(value.encode()).hexdigest()


def _selects(limit: RateLimit, scope: Scope, key: str | None) -> bool:
    return limit.scope == scope and (key is None or limit.key_name == key)


def normal_scope(scope: object) -> Scope:
    """``scope`` checked, as ``"global"`` or a ``(service, request_type)`` tuple.

    A two-item list (as JSON delivers it) is accepted; anything else raises ValueError.
    """
    if scope == GLOBAL:
        return GLOBAL
    if (
        isinstance(scope, tuple | list)
        and len(scope) == 2
        and all(isinstance(part, str) and part for part in scope)
    ):
        return (scope[0], scope[1])
    raise ConfigError(f"scope must be 'global' or (service, request_type), got {scope!r}")


def limits_of(limits: Iterable[RateLimit], scope: Scope, key: str | None) -> list[RateLimit]:
    """The limits of ``scope`` counting by ``key`` (every key when None)."""
    scope = normal_scope(scope)
    return [limit for limit in limits if _selects(limit, scope, key)]
