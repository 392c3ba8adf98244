"""``genapi token``: make a signed JWT for development, as JWTAuthenticator reads it.

::

    genapi token --secret "$SECRET" --sub 1 --roles admin,editor --ttl 3600

prints an HS256 token whose ``sub`` is the user id, ``roles`` the roles (a list) and
``exp`` now + ``--ttl`` seconds; ``--claim key=value`` adds claims (the value is JSON when
it parses). Use it as the ``token`` connect param of phoenix.js, ``Authorization: Bearer``
over HTTP, or ``genapi.Client(params={"token": …})``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import Annotated, Any

import typer

__all__ = ["make_token", "register"]


def make_token(secret: str, sub: str, *, roles: Iterable[str] = (), ttl: int = 3600,
               claims: Mapping[str, Any] | None = None, algorithm: str = "HS256",
               now: float | None = None) -> str:
    """A signed JWT with ``sub``, ``roles``, ``iat`` and ``exp`` (and extra ``claims``)."""
    import jwt

    issued = int(time.time() if now is None else now)
    payload: dict[str, Any] = {"sub": sub, "iat": issued, "exp": issued + ttl}
    listed = [role for role in roles if role]
    if listed:
        payload["roles"] = listed
    payload.update(claims or {})
    return jwt.encode(payload, secret, algorithm=algorithm)


def token_command(
    secret: Annotated[str, typer.Option(
        help="The HS256 secret the gateway's JWTAuthenticator verifies with.",
        envvar="GENAPI_JWT_SECRET", show_envvar=True)],
    sub: Annotated[str, typer.Option(help="The user id (the sub claim).")],
    roles: Annotated[str, typer.Option(help="Comma-separated roles (the roles claim).")] = "",
    ttl: Annotated[int, typer.Option(help="Seconds until it expires (the exp claim).",
                                     min=1)] = 3600,
    claim: Annotated[list[str] | None, typer.Option(
        "--claim", help="An extra claim, key=value (the value is JSON when it parses).")
    ] = None,
    algorithm: Annotated[str, typer.Option(help="An HMAC algorithm.")] = "HS256",
) -> None:
    """Print a signed JWT for development (what JWTAuthenticator accepts)."""
    extra: dict[str, Any] = {}
    for item in claim or ():
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected key=value, got {item!r}", param_hint="--claim")
        try:
            extra[key] = json.loads(text)
        except json.JSONDecodeError:
            extra[key] = text
    if not algorithm.upper().startswith("HS"):
        raise typer.BadParameter("genapi token signs with a shared secret: HS256, HS384 or "
                                 "HS512", param_hint="--algorithm")
    typer.echo(make_token(secret, sub, roles=[r.strip() for r in roles.split(",")], ttl=ttl,
                          claims=extra, algorithm=algorithm.upper()))


def register(app: typer.Typer) -> None:
    """Add ``token`` to the ``genapi`` command."""
    app.command("token")(token_command)
