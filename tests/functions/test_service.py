"""The Service decorator."""

from __future__ import annotations

import pytest

from genapi import FunConfig, Registry, Service


def test_decorator_forms_and_defaults() -> None:
    """Bare and parameterised decorators declare functions; service defaults apply."""
    svc = Service("user_service", timeout=10_000)

    @svc.function
    async def list_users() -> list[str]:
        return []

    @svc.function("get", version="1.0.0", timeout=2000)
    async def get_user(user_id: str) -> str:
        return user_id

    configs = svc.fun_configs
    assert [c.request_type for c in configs] == ["list_users", "get"]
    assert configs[0].timeout == 10_000
    assert configs[1].timeout == 2000
    assert configs[1].version == "1.0.0"
    assert configs[1].function is get_user
    assert isinstance(configs[0], FunConfig)
    Registry().add_service(svc)


def test_decorated_function_stays_callable() -> None:
    """The decorator returns the function unchanged."""
    svc = Service("s")

    @svc.function()
    def double(x: int) -> int:
        return x * 2

    assert double(2) == 4


def test_invalid_service_definitions() -> None:
    """Empty names and unknown or reserved defaults are refused."""
    with pytest.raises(ValueError, match="non-empty name"):
        Service("")
    with pytest.raises(TypeError, match="timout"):
        Service("s", timout=5)
    with pytest.raises(TypeError, match="service"):
        Service("s", service="x")
