"""Security primitives: the admin gate, constant-time secret comparison, and redaction of
secrets from text that may be logged (:func:`redact`).

The admin gate guards runtime actions that change how the gateway behaves. It is closed by
default: an action is allowed only when it was listed when the gate was built::

    gate = AdminGate({"update_rate_limit_config", "push_config"})
    gate.require("push_config")          # ok
    gate.require("change_detail_error")  # raises AdminActionDenied
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable
from enum import StrEnum
from typing import Final

from .errors import AdminActionDenied, ConfigError

__all__ = [
    "REDACTED",
    "AdminAction",
    "AdminActionDenied",
    "AdminGate",
    "bearer_credentials",
    "redact",
    "secrets_equal",
]


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


def bearer_credentials(authorization: str | bytes | None) -> str | None:
    """The credentials of an ``Authorization: Bearer <credentials>`` header, else None.

    The scheme is matched case-insensitively (RFC 9110 §11.1: ``bearer`` is ``Bearer``);
    every Bearer check (admin console, ``/metrics``) parses with this one function so
    that they cannot disagree about what a valid header is.
    """
    if authorization is None:
        return None
    if isinstance(authorization, bytes):
        authorization = authorization.decode("latin-1")
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return credentials.strip() or None


_QUERY: Final = re.compile(
    r"(?i)([?&;](?:token|access_token|auth_token|authtoken|jwt|password|passwd|secret|"
    r"api_key|apikey|push_token)=)[^&\s\"'#]+")
_BEARER: Final = re.compile(r"(?i)\b(bearer\s+)[^\s\"',;]+")
_SUBPROTOCOL: Final = re.compile(r"(base64url\.bearer\.phx\.)[A-Za-z0-9_\-=]+")
_JWT: Final = re.compile(r"\beyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*")
REDACTED: Final = "[redacted]"


def redact(text: str) -> str:
    """``text`` with secrets replaced by ``[redacted]``: ``?token=…`` (and
    ``access_token``, ``jwt``, ``password``, ``secret``, ``api_key``, ``push_token``…)
    query values, ``Bearer …`` values, phoenix.js's ``base64url.bearer.phx.…``
    subprotocol, and anything shaped like a JWT."""
    if "=" not in text and "eyJ" not in text and "earer" not in text:
        return text  # the common case: nothing that could hold a secret
    text = _QUERY.sub(r"\1" + REDACTED, text)
    text = _BEARER.sub(r"\1" + REDACTED, text)
    text = _SUBPROTOCOL.sub(r"\1" + REDACTED, text)
    return _JWT.sub(REDACTED, text)
