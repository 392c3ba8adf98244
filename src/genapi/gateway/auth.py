"""Authentication: who is on the other end of a connection.

An authenticator is called once per connection (and once per HTTP call) with the connect
parameters and the request headers. It returns an :class:`Identity` — possibly
:data:`ANONYMOUS` — or refuses: by raising :class:`~genapi.AuthenticationFailed` with a
reason a client may see (``token expired``), or by returning ``None`` (reason
``refused``). The identity is the only source of ``Request.user_id`` and
``Request.user_roles``.

Refusals are answered with HTTP 401 and the reason — at the WebSocket upgrade as a JSON
body ``{"reason": "token expired"}`` (where the ASGI server supports
``websocket.http.response``, as uvicorn does; browsers show scripts only a failed
connect, other clients can read it), for HTTP calls in the Response's ``error``
(``Authentication failed: token expired``) — and logged at WARNING on ``genapi.auth``
(never with the token).

Built in:

* :class:`JWTAuthenticator` — HS256 / RS256 tokens (PyJWT) from the ``token`` param, an
  ``Authorization: Bearer`` header, or phoenix.js's ``authToken`` subprotocol;
* :class:`InsecureDemoAuthenticator` — trusts ``user_id`` and ``roles`` params. For demos
  and tests only: anyone can claim any identity.
"""

from __future__ import annotations

import base64
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import jwt

from ..errors import AuthenticationFailed, ConfigError

__all__ = [
    "ANONYMOUS",
    "AuthenticationFailed",
    "Authenticator",
    "Identity",
    "InsecureDemoAuthenticator",
    "JWTAuthenticator",
    "authenticate",
    "bearer_token",
    "identify",
]

logger = logging.getLogger("genapi.auth")

_SUBPROTOCOL_PREFIX = "base64url.bearer.phx."


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated (or anonymous) caller."""

    user_id: str | None = None
    roles: tuple[str, ...] = ()
    device_id: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_anonymous(self) -> bool:
        """True when there is no user id."""
        return not self.user_id


ANONYMOUS = Identity()


@runtime_checkable
class Authenticator(Protocol):
    """Decides who a connection is. Return None to refuse it. May be sync or async."""

    def __call__(
        self, params: Mapping[str, str], headers: Mapping[str, str]
    ) -> Identity | Awaitable[Identity | None] | None:
        """Authenticate from connect params and request headers (lower-case names)."""


async def authenticate(
    authenticator: Callable[..., Any] | None,
    params: Mapping[str, str],
    headers: Mapping[str, str],
) -> Identity | None:
    """Run an authenticator (sync or async); None when it refuses (see :func:`identify`
    for the reason)."""
    try:
        return await _run(authenticator, params, headers)
    except AuthenticationFailed:
        return None


async def _run(authenticator: Callable[..., Any] | None, params: Mapping[str, str],
               headers: Mapping[str, str]) -> Identity:
    if authenticator is None:
        return ANONYMOUS
    # An authenticator that can say why it refuses offers identify() (JWTAuthenticator).
    check = getattr(authenticator, "identify", None) or authenticator
    try:
        result = check(params, headers)
        if inspect.isawaitable(result):
            result = await result
    except AuthenticationFailed:
        raise
    except Exception:
        logger.warning("authenticator raised; refusing", exc_info=True)
        raise AuthenticationFailed("authenticator error") from None
    if result is None:
        raise AuthenticationFailed("refused")
    if not isinstance(result, Identity):
        logger.error("authenticator returned %r, not an Identity; refusing", type(result))
        raise AuthenticationFailed("authenticator error")
    return result


async def identify(
    authenticator: Callable[..., Any] | None,
    params: Mapping[str, str],
    headers: Mapping[str, str],
    *,
    allow_anonymous: bool,
    peer: str = "a client",
) -> Identity:
    """The caller's identity, or :class:`~genapi.AuthenticationFailed` with the reason
    (``missing token`` for an anonymous caller where anonymous ones are refused). Each
    refusal is logged at WARNING on ``genapi.auth`` with ``peer`` (never the token)."""
    try:
        identity = await _run(authenticator, params, headers)
        if identity.is_anonymous and not allow_anonymous:
            raise AuthenticationFailed("missing token")
    except AuthenticationFailed as exc:
        logger.warning("refused %s: %s", peer, exc.reason)
        raise
    return identity


def bearer_token(params: Mapping[str, str], headers: Mapping[str, str],
                 param: str = "token") -> str | None:
    """The token from the ``param`` connect param, a Bearer header, or the phoenix.js
    ``authToken`` subprotocol entry, in that order."""
    token = params.get(param)
    if token:
        return token
    authorization = headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    for entry in headers.get("sec-websocket-protocol", "").split(","):
        entry = entry.strip()
        if entry.startswith(_SUBPROTOCOL_PREFIX):
            encoded = entry[len(_SUBPROTOCOL_PREFIX):]
            padded = encoded + "=" * (-len(encoded) % 4)
            try:
                return base64.b64decode(padded.replace("-", "+").replace("_", "/")).decode()
            except (ValueError, UnicodeDecodeError):
                return None
    return None


def _roles(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(r.strip() for r in value.split(",") if r.strip())
    if isinstance(value, Sequence):
        return tuple(str(r) for r in value if isinstance(r, str) and r)
    return ()


def _jwt_reason(exc: jwt.PyJWTError) -> str:
    """What is wrong with a token, in words safe to show its bearer."""
    if isinstance(exc, jwt.ExpiredSignatureError):
        return "token expired"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "invalid signature"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"missing claim: {exc.claim}"
    if isinstance(exc, jwt.InvalidAudienceError):
        return "invalid audience"
    if isinstance(exc, jwt.InvalidIssuerError):
        return "invalid issuer"
    if isinstance(exc, jwt.ImmatureSignatureError):
        return "token not yet valid"
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return "algorithm not allowed"
    if isinstance(exc, jwt.DecodeError):
        return "malformed token"
    return "invalid token"


class JWTAuthenticator:
    """Authenticate with a signed JWT.

    ``key`` is the HS256 secret or the RS256 public key (PEM). Claim names are
    configurable; ``roles`` may be a list or a comma-separated string. Tokens must carry
    the ``required_claims`` (``exp`` by default, so no token is valid forever). A connection
    without a token is anonymous (the gateway refuses it — ``missing token`` — unless
    anonymous connections are allowed); an invalid or expired token is refused, with the
    reason (:meth:`identify`). Make a token for development with ``genapi token``.
    """

    def __init__(
        self,
        key: str | bytes,
        *,
        algorithms: Sequence[str] = ("HS256",),
        user_id_claim: str = "sub",
        roles_claim: str = "roles",
        device_id_claim: str = "device_id",
        audience: str | None = None,
        issuer: str | None = None,
        leeway: float = 0,
        token_param: str = "token",
        required_claims: Sequence[str] = ("exp",),
    ) -> None:
        if not key:
            raise ConfigError("JWTAuthenticator needs a key")
        self._key = key
        self.algorithms = list(algorithms)
        self.user_id_claim = user_id_claim
        self.roles_claim = roles_claim
        self.device_id_claim = device_id_claim
        self.audience = audience
        self.issuer = issuer
        self.leeway = leeway
        self.token_param = token_param
        self.required_claims = tuple(required_claims)

    def __call__(self, params: Mapping[str, str], headers: Mapping[str, str]) -> Identity | None:
        """Verify the token and map its claims to an Identity (None: refused)."""
        try:
            return self.identify(params, headers)
        except AuthenticationFailed:
            return None

    def identify(self, params: Mapping[str, str], headers: Mapping[str, str]) -> Identity:
        """Like calling it, but a refusal raises :class:`~genapi.AuthenticationFailed`
        saying why (what the gateway uses)."""
        token = bearer_token(params, headers, self.token_param)
        if token is None:
            return ANONYMOUS
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": list(self.required_claims)},
            )
        except jwt.PyJWTError as exc:
            raise AuthenticationFailed(_jwt_reason(exc)) from None
        user_id = claims.get(self.user_id_claim)
        if not isinstance(user_id, str) or not user_id:
            raise AuthenticationFailed(f"missing claim: {self.user_id_claim}")
        device_id = claims.get(self.device_id_claim)
        return Identity(
            user_id=user_id,
            roles=_roles(claims.get(self.roles_claim)),
            device_id=device_id if isinstance(device_id, str) else None,
            extra=claims,
        )


class InsecureDemoAuthenticator:
    """**Insecure**: trusts ``user_id`` and ``roles`` (comma-separated) connect params.

    Anyone can claim to be anyone, so use it only for demos and tests. Without a
    ``user_id`` param the connection is anonymous.
    """

    def __call__(self, params: Mapping[str, str], headers: Mapping[str, str]) -> Identity:
        """Take the identity from the params (or a ``Bearer user_id:roles`` header)."""
        user_id = params.get("user_id")
        roles = params.get("roles", "")
        if not user_id:
            token = bearer_token({}, headers)
            if token:
                user_id, _, roles = token.partition(":")
        if not user_id:
            return ANONYMOUS
        device_id = params.get("device_id") or None
        return Identity(user_id=user_id, roles=_roles(roles), device_id=device_id)
