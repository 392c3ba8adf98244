"""Limit value objects: validation, key values, bucket namespaces and config edits."""

from __future__ import annotations

from typing import Any

import pytest
from rl_helpers import req

from genapi.errors import ConfigError, RateLimited
from genapi.ratelimit import GLOBAL, CustomKey, RateLimit, RateLimitConfig, RateLimiter
from genapi.ratelimit.limits import MAX_VALUE_CHARS, bucket_value, limits_of, normal_scope


@pytest.mark.parametrize(
    ("args", "options", "problem"),
    [
        (("email", 1, 1), {}, "key must be one of"),
        (("user_id", 0, 1), {}, "max_requests must be a positive integer"),
        (("user_id", 1, -5), {}, "window_ms must be a positive integer"),
        (("user_id", True, 1), {}, "max_requests must be a positive integer"),
        (("user_id", 1.5, 1), {}, "max_requests must be a positive integer"),
        (("user_id", 1, 1), {"service": "s"}, "must be given together"),
        (("user_id", 1, 1), {"service": "", "request_type": "t"}, "must be non-empty"),
    ],
)
def test_invalid_limits_are_config_errors(
    args: tuple[Any, ...], options: dict[str, Any], problem: str
) -> None:
    """A bad limit raises ConfigError naming the problem."""
    with pytest.raises(ConfigError, match=problem):
        RateLimit(*args, **options)


def test_scope_and_identity() -> None:
    """A limit without a service is global; with one, scoped to (service, request_type)."""
    assert RateLimit("user_id", 1, 10).scope == GLOBAL
    limit = RateLimit("device_id", 1, 10, service="s", request_type="t")
    assert limit.scope == ("s", "t")
    assert limit.identity == (("s", "t"), "device_id", 10)


@pytest.mark.parametrize(
    ("limit", "request_kwargs", "value"),
    [
        (RateLimit("user_id", 1, 10), {"user_id": "u"}, "u"),
        (RateLimit("user_id", 1, 10), {"user_id": None}, None),
        (RateLimit("user_id", 1, 10), {"user_id": ""}, None),
        (RateLimit("device_id", 1, 10), {"device_id": "d"}, "d"),
        (RateLimit("ip_address", 1, 10), {"ip_address": "10.0.0.1"}, "10.0.0.1"),
        (RateLimit(CustomKey("role", lambda r: "admin"), 1, 10), {}, "admin"),
        (RateLimit(CustomKey("none", lambda r: None), 1, 10), {}, None),
        (RateLimit(CustomKey.from_arg("tenant"), 1, 10), {"args": {"tenant": "t1"}}, "t1"),
        (RateLimit(CustomKey.from_arg("tenant"), 1, 10), {"args": {"tenant": 7}}, None),
    ],
)
def test_value_of_reads_the_trusted_field(
    limit: RateLimit, request_kwargs: dict[str, Any], value: str | None
) -> None:
    """The key value comes from the request; missing, empty or non-string means skip."""
    kwargs = {"user_id": None, **request_kwargs}
    assert limit.value_of(req(**kwargs)) == value


def test_custom_key_names_cannot_shadow_standard_keys() -> None:
    """A custom key named like a standard key (or unnamed) is refused."""
    for name in ("user_id", ""):
        with pytest.raises(ConfigError):
            CustomKey(name, lambda r: None)


def test_bucket_prefixes_are_distinct_per_scope_key_and_window() -> None:
    """Different scope, key or window never yields the same bucket namespace."""
    limits = [
        RateLimit("user_id", 1, 1_000),
        RateLimit("device_id", 1, 1_000),
        RateLimit("user_id", 1, 2_000),
        RateLimit("user_id", 1, 1_000, service="a:b", request_type="c"),
        RateLimit("user_id", 1, 1_000, service="a", request_type="b:c"),
        RateLimit(CustomKey("user_id:1000", lambda r: None), 1, 1_000),
    ]
    prefixes = [limit.bucket_prefix for limit in limits]
    assert len(set(prefixes)) == len(prefixes)
    assert prefixes[0] == "g:user_id:1000:"
    assert prefixes[3] == "a:a%3Ab:c:user_id:1000:"


def test_max_requests_is_not_part_of_the_bucket() -> None:
    """Raising a limit keeps counting in the same bucket."""
    assert RateLimit("user_id", 1, 10).bucket_prefix == RateLimit("user_id", 9, 10).bucket_prefix


def test_config_rejects_misplaced_and_duplicate_limits() -> None:
    """Global lists hold global limits, API lists API limits, and no identity twice."""
    scoped = RateLimit("user_id", 1, 10, service="s", request_type="t")
    with pytest.raises(ConfigError, match="has a service"):
        RateLimitConfig(global_limits=(scoped,))
    with pytest.raises(ConfigError, match="needs service"):
        RateLimitConfig(api_limits=(RateLimit("user_id", 1, 10),))
    with pytest.raises(ConfigError, match="duplicate"):
        RateLimitConfig(global_limits=(RateLimit("user_id", 1, 10), RateLimit("user_id", 5, 10)))


def test_config_accepts_lists_and_stores_tuples() -> None:
    """Lists (as from JSON) become tuples, so the config stays immutable."""
    config = RateLimitConfig(global_limits=[RateLimit("user_id", 1, 10)])  # type: ignore[arg-type]
    assert config.global_limits == (RateLimit("user_id", 1, 10),)


def test_with_limit_replaces_the_same_identity() -> None:
    """Adding a limit with the same scope, key and window replaces it; another window adds."""
    config = RateLimitConfig(global_limits=(RateLimit("user_id", 1, 10),))
    config = config.with_limit(RateLimit("user_id", 5, 10))
    config = config.with_limit(RateLimit("user_id", 7, 20))
    assert config.global_limits == (RateLimit("user_id", 5, 10), RateLimit("user_id", 7, 20))


def test_without_removes_one_window_or_all() -> None:
    """without(scope, key) drops every window; with window_ms only that one."""
    config = RateLimitConfig(
        global_limits=(RateLimit("user_id", 1, 10), RateLimit("user_id", 1, 20)),
        api_limits=(RateLimit("user_id", 1, 10, service="s", request_type="t"),),
    )
    fewer, removed = config.without(GLOBAL, "user_id", 20)
    assert removed
    assert fewer.global_limits == (RateLimit("user_id", 1, 10),)
    none, removed = config.without(GLOBAL, "user_id")
    assert removed
    assert (none.global_limits, none.api_limits) == ((), config.api_limits)
    same, removed = config.without(["s", "t"], "device_id")  # type: ignore[arg-type]
    assert not removed
    assert same == config


def test_from_mapping_and_to_dict_round_trip() -> None:
    """A limit read from a mapping writes back the same mapping."""
    data = {"key": "ip_address", "max_requests": 3, "window_ms": 500, "service": "s",
            "request_type": "t"}
    assert RateLimit.from_mapping(data).to_dict() == data
    with pytest.raises(ConfigError, match="unknown fields"):
        RateLimit.from_mapping({**data, "windw_ms": 1})
    with pytest.raises(ConfigError, match="missing fields"):
        RateLimit.from_mapping({"key": "user_id"})


@pytest.mark.parametrize("scope", ["api", ("s",), ("s", ""), 3])
def test_bad_scopes_are_refused(scope: Any) -> None:
    """A scope is "global" or a pair of non-empty strings."""
    with pytest.raises(ValueError, match="scope must be"):
        normal_scope(scope)


def test_limits_of_filters_by_scope_and_key() -> None:
    """limits_of picks the limits of one scope, on one key or all."""
    a = RateLimit("user_id", 1, 10)
    b = RateLimit("device_id", 1, 10)
    c = RateLimit("user_id", 1, 10, service="s", request_type="t")
    assert limits_of([a, b, c], GLOBAL, None) == [a, b]
    assert limits_of([a, b, c], GLOBAL, "device_id") == [b]
    assert limits_of([a, b, c], ("s", "t"), None) == [c]


def test_long_key_values_are_digested_in_bucket_names() -> None:
    """A client-sized device_id cannot make a huge bucket name; distinct values stay apart."""
    limit = RateLimit("device_id", 1, 10)
    short, long_a, long_b = "d" * MAX_VALUE_CHARS, "a" * 100_000, "a" * 99_999 + "b"
    assert limit.bucket(short) == limit.bucket_prefix + short
    assert len(limit.bucket(long_a)) < 100
    assert limit.bucket(long_a) != limit.bucket(long_b)
    assert limit.bucket(long_a) == limit.bucket_prefix + bucket_value(long_a)


async def test_limiter_counts_long_values_by_digest() -> None:
    """A long key value is limited like any other, under its digest."""
    limiter = RateLimiter(RateLimitConfig(global_limits=(RateLimit("device_id", 1, 10_000),)))
    device = "x" * 10_000
    assert limiter.check(req(None, device_id=device)) is None
    with pytest.raises(RateLimited):
        limiter.check(req(None, device_id=device))
    [status] = await limiter.status(device)
    assert status.current_requests == 1
