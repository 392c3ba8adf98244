"""Permission rules as pure decisions."""

from __future__ import annotations

from typing import Any

import pytest

from genapi import Request
from genapi.functions.permissions import PermissionKind, parse_permission


def req(user_id: Any = "u1", roles: tuple[str, ...] = (), **args: Any) -> Request:
    return Request(request_id="r", service="s", request_type="t", args=args, user_id=user_id,
                   user_roles=roles)


def req_args(args: dict[str, Any], user_id: str = "u1") -> Request:
    return Request(request_id="r", service="s", request_type="t", args=args, user_id=user_id)


@pytest.mark.parametrize(
    ("mode", "request_", "allowed"),
    [
        (False, req(user_id=None), True),
        (None, req(user_id=None), True),
        ("any_authenticated", req(), True),
        ("any_authenticated", req(user_id=None), False),
        ("any_authenticated", req(user_id=""), False),
        (("arg", "user_id"), req_args({"user_id": "u1"}), True),
        (("arg", "user_id"), req_args({"user_id": "u2"}), False),
        (("arg", "owner"), req(owner="u1"), True),
        (("arg", "owner"), req(owner="u2"), False),
        (("arg", "owner"), req(), False),
        (("arg", "owner"), req(user_id=None, owner=None), False),
        (("arg", "owner"), req(user_id="", owner=""), False),
        (("arg", "owner"), req(owner=1), False),
        (("role", ["admin"]), req(roles=("admin", "editor")), True),
        (("role", ["admin", "ops"]), req(roles=("ops",)), True),
        (("role", ["admin"]), req(roles=("viewer",)), False),
        (("role", ["admin"]), req(roles=()), False),
        (("role", ["admin"]), req(user_id=None, roles=("admin",)), False),
    ],
)
def test_modes(mode: Any, request_: Request, allowed: bool) -> None:
    """Each built-in mode allows exactly what the table says."""
    assert parse_permission(mode).allows(request_) is allowed


def test_arg_mode_looks_one_level_deep_in_map_mode() -> None:
    """With arg_orders "map", an arg absent at top level is found one level deep."""
    rule = parse_permission(("arg", "user_id"), map_args=True)
    assert rule.allows(req(profile={"user_id": "u1"}))
    assert not rule.allows(req(profile={"user_id": "u2"}))
    assert rule.allows(req_args({"user_id": "u1", "p": {"user_id": "u2"}}))  # top level wins
    assert not rule.allows(req_args({"user_id": "u2", "p": {"user_id": "u1"}}))
    assert not rule.allows(req(profile={"deeper": {"user_id": "u1"}}))
    assert not rule.allows(req(a="x", b={"user_id": "u2"}, c={"user_id": "u1"}))
    assert not parse_permission(("arg", "user_id")).allows(req(profile={"user_id": "u1"}))


def test_requires_identity_and_describe() -> None:
    """Only the disabled mode works without identity; each mode describes itself."""
    assert not parse_permission(False).requires_identity
    assert parse_permission(("role", ["b", "a"])).requires_identity
    assert parse_permission(("role", ["b", "a"])).describe() == "caller needs one of the roles a, b"
    assert parse_permission(False).kind is PermissionKind.NONE
    with pytest.raises(ValueError, match="unknown permission mode"):
        parse_permission(("nope", 1))


@pytest.mark.parametrize(("mode", "text"), [
    (False, "no permission check"),
    ("any_authenticated", "any authenticated caller"),
    (("arg", "user_id"), "argument 'user_id' must equal the caller's user id"),
])
def test_each_mode_describes_itself(mode: Any, text: str) -> None:
    """Diagnostics show these sentences for each mode."""
    assert parse_permission(mode).describe() == text
