"""Configured callables: resolution, deny list, allow list."""

from __future__ import annotations

import functools
import os
import subprocess

import pytest

from genapi import ConfigError, FunConfig, Registry
from genapi.functions.callables import CallableDenied, check_callable, resolve_callable


def test_resolves_module_qualname() -> None:
    """'module:qualname' strings resolve to the callable."""
    from genapi.demo.walkthrough import list_users

    assert resolve_callable("genapi.demo.walkthrough:list_users") is list_users


@pytest.mark.parametrize(
    "ref",
    ["os:system", "subprocess:run", "builtins:eval", "builtins:exec", "importlib:import_module",
     "shutil:rmtree", "socket:socket", "ctypes:CDLL", "pickle:loads", "marshal:loads",
     "code:interact", "pty:spawn", "signal:raise_signal", "sys:exit", "os.path:join",
     "posix:system"],
)
def test_denied_modules_by_name(ref: str) -> None:
    """Dangerous modules can never be named by a config."""
    with pytest.raises(CallableDenied, match="deny list"):
        resolve_callable(ref)


@pytest.mark.parametrize("fn", [os.system, subprocess.run, eval, exec, open,
                                functools.partial(os.system, "true")])
def test_denied_callables_passed_directly(fn: object) -> None:
    """Passing a dangerous callable directly is refused too (partials unwrapped)."""
    with pytest.raises(CallableDenied):
        check_callable(fn)


def test_registry_refuses_denied_function() -> None:
    """Registration fails for a denylisted function."""
    with pytest.raises(ConfigError, match="deny list"):
        Registry().add(FunConfig(service="s", request_type="t", function="os:system",
                                 arg_types={"command": "string"}))


def test_allowlist() -> None:
    """With an allow list only listed modules or exact functions resolve."""
    resolve_callable("genapi.demo.walkthrough:list_users", ["genapi.demo"])
    resolve_callable("genapi.demo.walkthrough:list_users",
                     ["genapi.demo.walkthrough:list_users"])
    with pytest.raises(CallableDenied, match="allow list"):
        resolve_callable("genapi.demo.walkthrough:list_users", ["genapi.demo.walkthrough:other"])
    with pytest.raises(CallableDenied, match="allow list"):
        resolve_callable("genapi.demo.walkthrough:list_users", [])
    with pytest.raises(CallableDenied, match="deny list"):
        resolve_callable("os:system", ["os"])


@pytest.mark.parametrize(
    ("ref", "message"),
    [("nomodule", 'expected "module:qualname"'), ("genapi.nope:f", "cannot be resolved"),
     ("genapi.demo.walkthrough:USERS", "is not callable"),
     ("genapi.demo.walkthrough:__dict__", "cannot be resolved")],
)
def test_unresolvable_references(ref: str, message: str) -> None:
    """Bad references fail registration with a clear reason."""
    with pytest.raises(ConfigError, match=message):
        resolve_callable(ref)
