"""FunConfig defaults and validation messages."""

from __future__ import annotations

from typing import Any

import pytest

from genapi import ConfigError, FunConfig, PushConfig, Registry, ServiceConfig
from genapi.functions.config import fun_config_problems, normalize_retry, push_config_problems


async def fn(x: str) -> str:
    return x


def cfg(**changes: Any) -> FunConfig:
    base: dict[str, Any] = {"service": "svc", "request_type": "rt", "function": fn}
    base.update(changes)
    return FunConfig(**base)


def test_documented_defaults() -> None:
    """The documented defaults: random, sync, 5 s timeout and hook timeout, local."""
    c = cfg()
    assert c.choose_node_mode == "random"
    assert c.response_type == "sync"
    assert c.timeout == 5000
    assert c.hook_timeout == 5000
    assert c.nodes == "local"
    assert c.check_permission is False
    assert c.retry is None
    assert c.version is None
    assert not c.disabled
    assert fun_config_problems(c) == []


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"request_type": ""}, "request_type must be a non-empty string"),
        ({"service": None}, "service must be a non-empty string"),
        ({"nodes": []}, 'nodes must be "local", a non-empty list of node names, or a callable'),
        ({"nodes": ["a", 3]}, "nodes must be"),
        ({"choose_node_mode": "invalid"}, "choose_node_mode must be"),
        ({"choose_node_mode": ("sticky", "")}, "choose_node_mode must be"),
        ({"timeout": 50}, "timeout must be an integer between 100 and 300000 ms"),
        ({"timeout": 500_000}, "timeout must be an integer between 100 and 300000 ms"),
        ({"timeout": 5.5}, "timeout must be"),
        ({"function": "not_a_path"}, 'function must be a callable or a "module:qualname" string'),
        ({"function": None}, "function is required for local functions"),
        ({"arg_types": {"a": "bogus"}}, "arg_types['a']: unknown type 'bogus'"),
        ({"arg_types": {"a": "string"}, "arg_orders": ["b"]},
         "arg_orders must list exactly the names in arg_types (missing a; not in arg_types: b)"),
        ({"arg_types": {"a": {"max_bytes": 3}}}, "arg_types['a']: missing 'type'"),
        ({"arg_types": ["a"]}, "arg_types must be a dict"),
        ({"arg_types": {}, "arg_orders": "map"}, 'arg_orders "map" needs arg_types'),
        ({"response_type": "invalid"}, 'response_type must be "sync", "async", "stream" or "none"'),
        ({"check_permission": "invalid"}, "check_permission must be False"),
        ({"check_permission": ("role", [])}, "check_permission must be False"),
        ({"check_permission": ("arg",)}, "check_permission must be False"),
        ({"permission_callback": "invalid"}, "permission_callback must be None"),
        ({"request_info": "yes"}, "request_info must be a bool"),
        ({"version": ""}, "version must be None or a non-empty version string"),
        ({"version": "0.0.0"}, 'other than "0.0.0"'),
        ({"retry": 0}, "retry must be None, a number >= 1"),
        ({"retry": -1}, "retry must be"),
        ({"retry": ("other_mode", 3)}, "retry must be"),
        ({"retry": "3"}, "retry must be"),
        ({"before_execute": "invalid"}, "before_execute must be None, a callable"),
        ({"after_execute": 3}, "after_execute must be None, a callable"),
        ({"hook_timeout": 0}, "hook_timeout must be a positive integer (ms)"),
        ({"hook_timeout": "fast"}, "hook_timeout must be a positive integer (ms)"),
    ],
)
def test_invalid_fields_are_reported(changes: dict[str, Any], message: str) -> None:
    """Registration refuses an invalid config with a ValueError naming the field."""
    with pytest.raises(ValueError, match="invalid FunConfig") as info:
        Registry().add(cfg(**changes))
    assert isinstance(info.value, ConfigError)
    assert any(message in e for e in info.value.errors), info.value.errors


@pytest.mark.parametrize(
    "changes",
    [
        {"timeout": None},
        {"timeout": 100},
        {"timeout": 300_000},
        {"choose_node_mode": ("hash", "user_id")},
        {"choose_node_mode": ("sticky", "user_id")},
        {"choose_node_mode": "round_robin"},
        {"retry": 3},
        {"retry": 3.7},
        {"retry": ("same_node", 2)},
        {"retry": ("all_nodes", 5)},
        {"check_permission": "any_authenticated"},
        {"check_permission": ("arg", "x")},
        {"check_permission": ("role", ["admin"])},
        {"version": "1.0.0"},
        {"before_execute": (fn, [1, 2, 3])},
        {"function": "genapi.demo.walkthrough:list_users", "arg_types": {}},
        {"nodes": ["n1", "n2"], "function": None, "arg_types": {"x": "string"}},
        {"nodes": lambda: ["n1"], "function": None},
    ],
)
def test_valid_variants_register(changes: dict[str, Any]) -> None:
    """Every documented shape of each field registers."""
    Registry().add(cfg(**changes))


def test_several_problems_are_collected() -> None:
    """All problems of a config are listed at once."""
    problems = fun_config_problems(cfg(request_type="", timeout=1, response_type="x"))
    assert len(problems) == 3


@pytest.mark.parametrize(
    ("retry", "expected"),
    [(None, None), (3, ("all_nodes", 3)), (3.7, ("all_nodes", 3)),
     (("same_node", 2.9), ("same_node", 2)), (("all_nodes", 5), ("all_nodes", 5))],
)
def test_normalize_retry(retry: Any, expected: Any) -> None:
    """A bare number means all_nodes; counts are truncated."""
    assert normalize_retry(retry) == expected


def test_push_config_validation() -> None:
    """A push config needs a service, nodes, a version and same-service functions."""
    good = PushConfig(service="svc", nodes=("n1",), config_version="1", fun_configs=(cfg(),))
    assert push_config_problems(good) == []
    bad = PushConfig(service="", nodes=(), config_version="", fun_configs=())
    assert push_config_problems(bad) == [
        "service must be a non-empty string",
        "nodes must be a non-empty list of node names",
        "config_version must be a non-empty string",
        "fun_configs must be a non-empty list of FunConfig",
    ]
    other = PushConfig(service="other", nodes=("n1",), config_version="1", fun_configs=(cfg(),))
    assert push_config_problems(other) == [
        "all fun_configs must have the same service name as the push config"
    ]


def test_service_config_and_push_to_pull() -> None:
    """A push describes a pull source: its service, from its nodes."""
    push = PushConfig(service="svc", nodes=("n1",), config_version="1", fun_configs=(cfg(),),
                      push_token="secret")
    assert push.to_service_config() == ServiceConfig(service="svc", nodes=("n1",))
    assert "secret" not in repr(push)
