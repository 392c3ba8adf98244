"""Long-poll session tokens: which gateway owns a session, signed by that gateway.

``lp1.<payload>.<mac>``: the payload (base64url JSON) names the owning gateway and the
session's random id; the MAC is HMAC-SHA256 under the owner's key. Any gateway can read
the owner from a token (to forward the request there); only the owner can verify it. The
random session id is the capability; the MAC stops a forged token from reaching a session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import NamedTuple

__all__ = ["SessionTokens", "TokenClaim"]

_PREFIX = "lp1."


class TokenClaim(NamedTuple):
    """What a token says, before (or after) verification."""

    gateway: str
    session: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionTokens:
    """Issues and checks the tokens of one gateway (``key``: random unless given)."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def issue(self, gateway: str) -> tuple[str, str]:
        """A new session id and its token, owned by ``gateway``."""
        session = secrets.token_urlsafe(16)
        payload = _b64(json.dumps({"g": gateway, "s": session},
                                  separators=(",", ":")).encode())
        return session, f"{_PREFIX}{payload}.{self._mac(payload)}"

    @staticmethod
    def claim(token: str | None) -> TokenClaim | None:
        """The owner and session a token names, unverified (None: not a session token)."""
        if not token or not token.startswith(_PREFIX) or len(token) > 512:
            return None
        payload, _, _mac = token[len(_PREFIX):].partition(".")
        try:
            data = json.loads(_unb64(payload))
            return TokenClaim(str(data["g"]), str(data["s"]))
        except (ValueError, KeyError, TypeError):
            return None

    def verify(self, token: str, gateway: str) -> str | None:
        """The session id of a token this gateway issued, or None."""
        claim = self.claim(token)
        if claim is None or claim.gateway != gateway:
            return None
        payload, _, mac = token[len(_PREFIX):].partition(".")
        if not hmac.compare_digest(mac, self._mac(payload)):
            return None
        return claim.session

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, (_PREFIX + payload).encode(), hashlib.sha256).digest())
