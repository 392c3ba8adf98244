"""The registry: versions, the default-version rule, soft delete, the 0.0.0 sentinel."""

from __future__ import annotations

from typing import Any

import pytest

from genapi import ConfigError, FunConfig, FunctionDisabled, FunctionNotFound, Registry, Service
from genapi.functions.registry import semver_key
from genapi.telemetry.events import Telemetry


async def fn() -> str:
    return "ok"


def cfg(version: str | None = None, **changes: Any) -> FunConfig:
    return FunConfig(service="svc", request_type="get", function=fn, version=version, **changes)


def test_exact_version_lookup() -> None:
    """A named version resolves to exactly that config."""
    reg = Registry()
    reg.add(cfg("1.0.0", timeout=5000))
    reg.add(cfg("2.0.0", timeout=10_000))
    assert reg.resolve("svc", "get", "2.0.0").config.timeout == 10_000
    assert reg.get("svc", "get", "1.0.0") is not None
    with pytest.raises(FunctionNotFound, match=(
            r"^Unknown function get version 3\.0\.0 in service svc "
            r"\(known versions: 1\.0\.0, 2\.0\.0\)$")):
        reg.resolve("svc", "get", "3.0.0")


def test_unknown_function() -> None:
    """An unknown service or function names what exists (and a version only when one was
    asked for)."""
    with pytest.raises(FunctionNotFound,
                       match=r"^Unknown service: svc \(known: none registered\)$"):
        Registry().resolve("svc", "nope")


def test_unknown_names_come_with_suggestions() -> None:
    """Close names are suggested; otherwise the known ones are listed (at most 20)."""
    reg = Registry()
    for name in ("get_user", "get_users", "delete_user"):
        reg.add(FunConfig(service="users", request_type=name, function=lambda: None))
    for n in range(25):
        reg.add(FunConfig(service=f"s{n:02}", request_type="f", function=lambda: None))

    def message(*key: str | None) -> str:
        with pytest.raises(FunctionNotFound) as info:
            reg.resolve(*key)  # type: ignore[arg-type]
        return info.value.message

    assert message("users", "get_usr") == (
        "Unknown function get_usr in service users (did you mean get_user or get_users?)")
    assert message("users", "get_usr", "2.0") == (
        "Unknown function get_usr version 2.0 in service users (did you mean get_user or "
        "get_users?)")
    assert message("users", "get_user", "2.0") == (
        "Unknown function get_user version 2.0 in service users "
        "(known versions: none, it is unversioned)")
    assert message("users", "zzz") == (
        "Unknown function zzz in service users (known: delete_user, get_user, get_users)")
    assert message("nope", "f").startswith("Unknown service: nope (known: s00, s01, ")
    assert message("nope", "f").endswith(", s19, …)")  # 20 of 26


def test_no_version_prefers_the_unversioned_config() -> None:
    """Without a version the unversioned config wins when it exists and is enabled."""
    reg = Registry()
    reg.add(cfg("2.0.0"))
    reg.add(cfg(None, description="default"))
    reg.add(cfg("1.0.0"))
    assert reg.resolve("svc", "get").version is None
    reg.disable("svc", "get")
    assert reg.resolve("svc", "get").version == "2.0.0"


def test_no_version_falls_back_to_latest_semver() -> None:
    """Without an unversioned config the highest enabled semantic version is used."""
    reg = Registry()
    for v in ("9.0.0", "10.0.0", "10.0.0-rc.1", "1.2.3"):
        reg.add(cfg(v))
    assert reg.resolve("svc", "get").version == "10.0.0"
    reg.disable("svc", "get", "10.0.0")
    assert reg.resolve("svc", "get").version == "10.0.0-rc.1"
    assert reg.get_latest("svc", "get").version == "10.0.0-rc.1"  # type: ignore[union-attr]


def test_get_latest_ignores_unversioned() -> None:
    """get_latest considers only versioned, enabled configs."""
    reg = Registry()
    reg.add(cfg(None))
    assert reg.get_latest("svc", "get") is None
    reg.add(cfg("1.0.0"))
    assert reg.get_latest("svc", "get").version == "1.0.0"  # type: ignore[union-attr]


def test_disable_and_enable() -> None:
    """Disabled versions answer 'disabled function'; others are unaffected; enable restores."""
    reg = Registry()
    reg.add(cfg("1.0.0"))
    reg.add(cfg("2.0.0"))
    assert reg.disable("svc", "get", "1.0.0")
    with pytest.raises(FunctionDisabled, match=r"^disabled function: get version 1\.0\.0$"):
        reg.resolve("svc", "get", "1.0.0")
    assert reg.resolve("svc", "get", "2.0.0")
    assert reg.get("svc", "get", "1.0.0").disabled  # type: ignore[union-attr]
    assert reg.enable("svc", "get", "1.0.0")
    assert reg.resolve("svc", "get", "1.0.0").version == "1.0.0"
    assert not reg.disable("svc", "get", "9.9.9")


def test_all_disabled_reports_disabled() -> None:
    """When every version is disabled a versionless request is told so."""
    reg = Registry()
    reg.add(cfg("1.0.0"))
    reg.disable("svc", "get", "1.0.0")
    with pytest.raises(FunctionDisabled, match=r"^disabled function: get version latest$"):
        reg.resolve("svc", "get")


def test_re_adding_overwrites_disabled_flag() -> None:
    """Adding the same key again replaces the config, including its disabled flag."""
    reg = Registry()
    reg.add(cfg("1.0.0"))
    reg.disable("svc", "get", "1.0.0")
    reg.add(cfg("1.0.0"))
    assert not reg.resolve("svc", "get", "1.0.0").disabled


def test_delete() -> None:
    """Deleting removes one version; deleting the last makes the function unknown."""
    reg = Registry()
    reg.add(cfg("1.0.0"))
    reg.add(cfg("2.0.0"))
    assert reg.delete("svc", "get", "2.0.0")
    assert reg.resolve("svc", "get").version == "1.0.0"
    assert reg.delete("svc", "get", "1.0.0")
    assert not reg.delete("svc", "get", "1.0.0")
    with pytest.raises(FunctionNotFound):
        reg.resolve("svc", "get")


def test_zero_version_is_reserved() -> None:
    """'0.0.0' cannot be registered; empty string is rejected too."""
    with pytest.raises(ConfigError, match=r'other than "0.0.0"'):
        Registry().add(cfg("0.0.0"))
    with pytest.raises(ConfigError):
        Registry().add(cfg(""))


def test_get_all_functions_and_services() -> None:
    """Listing shows every version, disabled and unversioned ones included."""
    reg = Registry()
    reg.add(cfg(None))
    reg.add(cfg("1.0.0"))
    reg.disable("svc", "get", "1.0.0")
    reg.add(FunConfig(service="other", request_type="x", function=fn))
    assert reg.get_all_functions() == {"svc": {"get": [None, "1.0.0"]}, "other": {"x": [None]}}
    assert reg.services() == ["other", "svc"]
    assert len(reg) == 3
    assert ("svc", "get", "1.0.0") in reg
    reg.clear()
    assert len(reg) == 0


def test_add_many_is_atomic() -> None:
    """If one config of a batch is invalid, none is registered."""
    reg = Registry()
    with pytest.raises(ConfigError):
        reg.add_many([cfg("1.0.0"), cfg("0.0.0")])
    assert len(reg) == 0


def test_replace_service_removes_vanished_functions() -> None:
    """Replacing a service's set deletes functions no longer present."""
    reg = Registry()
    reg.add(cfg("1.0.0"))
    reg.add(FunConfig(service="svc", request_type="old", function=fn))
    reg.replace_service("svc", [cfg("2.0.0")])
    assert reg.get_all_functions() == {"svc": {"get": ["2.0.0"]}}


def test_add_service_and_delete_service() -> None:
    """A Service's functions register together and can be removed together."""
    svc = Service("s")
    svc.add(fn, "a")
    svc.add(fn, "b")
    reg = Registry()
    reg.add_service(svc)
    assert reg.get_all_functions() == {"s": {"a": [None], "b": [None]}}
    assert reg.delete_service("s") == 2


def test_config_events() -> None:
    """Registry changes emit config telemetry with service, request_type and version."""
    seen: list[tuple[str, dict[str, Any]]] = []
    tel = Telemetry()
    tel.attach("t", "config.*", lambda e, m, md: seen.append((e, dict(md))))
    reg = Registry(telemetry=tel)
    reg.add(cfg("1.0.0"))
    reg.disable("svc", "get", "1.0.0")
    reg.enable("svc", "get", "1.0.0")
    reg.delete("svc", "get", "1.0.0")
    reg.add_many([cfg("1.0.0"), cfg("2.0.0")])
    reg.clear()
    meta = {"service": "svc", "request_type": "get", "version": "1.0.0"}
    assert seen == [
        ("config.add", meta), ("config.disable", meta), ("config.enable", meta),
        ("config.delete", meta), ("config.batch_add", {"service": "svc"}), ("config.clear", {}),
    ]


@pytest.mark.parametrize(
    ("low", "high"),
    [("1.0.0", "2.0.0"), ("9.0.0", "10.0.0"), ("1.0.0-rc.1", "1.0.0"),
     ("1.0.0-alpha", "1.0.0-beta"), ("1.0.0-rc.2", "1.0.0-rc.10"), ("garbage", "0.0.1"),
     ("1.2", "1.2.1")],
)
def test_semver_ordering(low: str, high: str) -> None:
    """Versions order by semantic versioning, unparseable ones lowest."""
    assert semver_key(low) < semver_key(high)


@pytest.mark.parametrize(("arg_types", "fault"), [
    ({"n": {"type": "num", "default": "seven"}}, "invalid default value"),
    ({"s": {"type": "string", "max_bytes": 3, "default": "too long"}}, "invalid default value"),
    ({"xs": {"type": "list_string", "max_items": 1, "default": ["a", "b"]}},
     "invalid default value"),
])
def test_a_default_that_breaks_its_own_spec_is_refused_at_registration(
        arg_types: dict[str, Any], fault: str) -> None:
    """Defaults are checked when the function is registered, not when a call needs them."""

    async def f(**kwargs: Any) -> Any:
        return kwargs

    with pytest.raises(ConfigError, match=fault):
        Registry(telemetry=Telemetry()).add(FunConfig(
            service="s", request_type="f", function=f, arg_types=arg_types,
            arg_orders="map"))


def test_find_names_one_exact_version() -> None:
    """find: exactly that key, disabled or not; an error naming what exists otherwise
    (never "the latest": admin actions name the version they act on)."""
    shop = Service("shop")

    @shop.function("price", version="1.0.0")
    async def price_v1() -> int:
        return 1

    @shop.function("price", version="2.0.0")
    async def price_v2() -> int:
        return 2

    @shop.function()
    async def stock() -> int:
        return 3

    registry = Registry()
    registry.add_service(shop)
    registry.disable("shop", "price", "1.0.0")
    assert registry.find("shop", "price", "1.0.0").disabled
    assert registry.find("shop", "stock").key == ("shop", "stock", None)
    assert registry.find("shop", "stock", "").key == ("shop", "stock", None)
    with pytest.raises(FunctionNotFound, match=r"known versions: 1\.0\.0, 2\.0\.0"):
        registry.find("shop", "price")
    with pytest.raises(FunctionNotFound, match="Unknown service: nope"):
        registry.find("nope", "price", "1.0.0")
