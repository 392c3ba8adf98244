"""Security primitives: the admin gate and constant-time secret comparison.

The admin gate guards runtime actions that change how the gateway behaves. It is closed by
default: an action is allowed only when it was listed when the gate was built::

    gate = AdminGate({"update_rate_limit_config", "push_config"})
    gate.require("push_config")          # ok
    gate.require("change_detail_error")  # raises AdminActionDenied
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from enum import StrEnum

from .errors import AdminActionDenied, ConfigError

__all__ = ["AdminAction", "AdminActionDenied", "AdminGate", "secrets_equal"]


class AdminAction(StrEnum):
    """Actions the admin gate can allow."""

    PUSH_CONFIG = "push_config"
    UPDATE_RATE_LIMIT_CONFIG = "update_rate_limit_config"
    CHANGE_DETAIL_ERROR = "change_detail_error"
    MANAGE_FUNCTIONS = "manage_functions"
    VIEW_DIAGNOSTICS = "view_diagnostics"
    MANAGE_DURABLE = "manage_durable"  # retry, cancel and purge durable calls


class AdminGate:
    """Which admin actions are allowed. Empty (deny everything) by default."""

    def __init__(self, allowed: Iterable[AdminAction | str] = ()) -> None:
        self._allowed = frozenset(_action(a) for a in allowed)

    @property
    def allowed_actions(self) -> frozenset[AdminAction]:
        """The allowed actions."""
        return self._allowed

    def allows(self, action: AdminAction | str) -> bool:
        """True when ``action`` is allowed; unknown action names raise ConfigError."""
        return _action(action) in self._allowed

    def require(self, action: AdminAction | str) -> None:
        """Raise :class:`AdminActionDenied` unless ``action`` is allowed."""
        if not self.allows(action):
            raise AdminActionDenied(f"Admin action denied: {_action(action).value}")


def _action(value: AdminAction | str) -> AdminAction:
    try:
        return AdminAction(value)
    except ValueError:
        known = ", ".join(a.value for a in AdminAction)
        raise ConfigError(f"unknown admin action {value!r} (one of: {known})") from None


def secrets_equal(expected: str | bytes | None, given: object) -> bool:
    """Compare a configured secret with a presented one in constant time.

    ``None`` as the expected secret means "no secret configured": anything is accepted.
    A configured secret never matches ``None``, an empty value or a non-string.
    """
    if expected is None:
        return True
    if not isinstance(given, str | bytes) or not given:
        return False
    a = expected.encode() if isinstance(expected, str) else expected
    b = given.encode() if isinstance(given, str) else given
    return hmac.compare_digest(a, b)
