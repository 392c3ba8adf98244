"""Permission decisions: pure functions of the permission mode and the trusted request.

Modes (``FunConfig.check_permission``):

* ``False`` / ``None`` — anyone may call, anonymous connections included;
* ``"any_authenticated"`` — the caller has a user id;
* ``("arg", name)`` — the argument ``name`` equals the caller's user id (users reach only
  their own data). With ``arg_orders="map"`` an argument absent at the top level is looked
  up one level deep inside map-valued arguments;
* ``("role", roles)`` — the caller has at least one of ``roles``.

A ``permission_callback(request, fun_config) -> bool`` replaces the built-in mode; only a
literal ``True`` allows (the executor runs it; failures deny).

``user_id`` and ``user_roles`` come only from the authenticated connection.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from enum import StrEnum
from typing import Any

from ..errors import ConfigError
from ..messages import Request

__all__ = ["PermissionKind", "PermissionRule", "parse_permission"]


class PermissionKind(StrEnum):
    """The built-in permission modes."""

    NONE = "none"
    ANY_AUTHENTICATED = "any_authenticated"
    ARG = "arg"
    ROLE = "role"


class PermissionRule:
    """A compiled permission mode. ``allows(request)`` is the decision."""

    __slots__ = ("arg", "kind", "map_args", "roles")

    def __init__(
        self,
        kind: PermissionKind,
        *,
        arg: str | None = None,
        roles: Collection[str] = (),
        map_args: bool = False,
    ) -> None:
        self.kind = kind
        self.arg = arg
        self.roles = frozenset(roles)
        self.map_args = map_args

    @property
    def requires_identity(self) -> bool:
        """True unless the mode is disabled."""
        return self.kind is not PermissionKind.NONE

    def allows(self, request: Request) -> bool:
        """Decide whether ``request`` may call the function."""
        kind = self.kind
        if kind is PermissionKind.NONE:
            return True
        user_id = request.user_id
        if kind is PermissionKind.ROLE:
            return bool(user_id) and not self.roles.isdisjoint(request.user_roles)
        if not isinstance(user_id, str) or not user_id:
            return False
        if kind is PermissionKind.ANY_AUTHENTICATED:
            return True
        return bool(_arg_value(request.args, self.arg or "", self.map_args) == user_id)

    def describe(self) -> str:
        """A human-readable summary (used by diagnostics)."""
        if self.kind is PermissionKind.ARG:
            return f"argument {self.arg!r} must equal the caller's user id"
        if self.kind is PermissionKind.ROLE:
            return "caller needs one of the roles " + ", ".join(sorted(self.roles))
        if self.kind is PermissionKind.ANY_AUTHENTICATED:
            return "any authenticated caller"
        return "no permission check"


_MISSING = object()


def _arg_value(args: Mapping[str, Any], name: str, map_args: bool) -> Any:
    value = args.get(name, _MISSING)
    if value is not _MISSING or not map_args:
        return value
    for nested in args.values():
        if isinstance(nested, Mapping) and name in nested:
            return nested[name]
    return _MISSING


def parse_permission(mode: Any, *, map_args: bool = False) -> PermissionRule:
    """Compile a ``check_permission`` value (already validated by the config)."""
    if mode is False or mode is None:
        return PermissionRule(PermissionKind.NONE)
    if mode == "any_authenticated":
        return PermissionRule(PermissionKind.ANY_AUTHENTICATED)
    kind, value = mode
    if kind == "arg":
        return PermissionRule(PermissionKind.ARG, arg=value, map_args=map_args)
    if kind == "role":
        return PermissionRule(PermissionKind.ROLE, roles=value)
    raise ConfigError(f"unknown permission mode {mode!r}")
