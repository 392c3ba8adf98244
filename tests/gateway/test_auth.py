"""Authenticators: JWT (HS256, RS256) and the insecure demo one."""

from __future__ import annotations

import base64
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from genapi import Identity, InsecureDemoAuthenticator, JWTAuthenticator
from genapi.gateway.auth import ANONYMOUS, authenticate, bearer_token

SECRET = "a-test-secret-that-is-long-enough-for-hs256"


def token(claims: dict[str, Any], key: Any = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode({"exp": int(time.time()) + 60, **claims}, key, algorithm=algorithm)


def test_hs256_claims_to_identity() -> None:
    """A valid HS256 token becomes the identity: sub, roles (list or CSV), device_id."""
    auth = JWTAuthenticator(SECRET)
    identity = auth({"token": token({"sub": "42", "roles": ["admin", "ops"],
                                     "device_id": "d1"})}, {})
    assert identity == Identity(user_id="42", roles=("admin", "ops"), device_id="d1",
                                extra=identity.extra if identity else {})
    csv = auth({"token": token({"sub": "42", "roles": "a, b"})}, {})
    assert csv is not None and csv.roles == ("a", "b")


def test_rs256() -> None:
    """RS256 tokens verify against the public key."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    auth = JWTAuthenticator(public_pem, algorithms=["RS256"])
    identity = auth({"token": token({"sub": "7"}, private, "RS256")}, {})
    assert identity is not None and identity.user_id == "7"
    assert auth({"token": token({"sub": "7"})}, {}) is None  # HS256 token refused


def test_configurable_claim_names() -> None:
    """Claim names for user id, roles and device are configurable."""
    auth = JWTAuthenticator(SECRET, user_id_claim="uid", roles_claim="perms",
                            device_id_claim="dev")
    identity = auth({"token": token({"uid": "u", "perms": ["x"], "dev": "d"})}, {})
    assert identity is not None
    assert (identity.user_id, identity.roles, identity.device_id) == ("u", ("x",), "d")


@pytest.mark.parametrize(
    "bad",
    [
        "garbage",
        jwt.encode({"sub": "1", "exp": int(time.time()) - 10}, SECRET),
        jwt.encode({"sub": "1"}, SECRET),  # no exp
        jwt.encode({"sub": "1", "exp": int(time.time()) + 60}, "x" + SECRET),
        jwt.encode({"exp": int(time.time()) + 60}, SECRET),  # no subject
    ],
)
def test_invalid_tokens_are_refused(bad: str) -> None:
    """Bad signature, expired, missing exp or subject: refused (None)."""
    assert JWTAuthenticator(SECRET)({"token": bad}, {}) is None


def test_no_token_is_anonymous() -> None:
    """Without a token the connection is anonymous (the gateway decides if that's allowed)."""
    assert JWTAuthenticator(SECRET)({}, {}) is ANONYMOUS


def test_token_sources() -> None:
    """Tokens come from the param, a Bearer header, or the phoenix.js authToken subprotocol."""
    assert bearer_token({"token": "p"}, {"authorization": "Bearer h"}) == "p"
    assert bearer_token({}, {"authorization": "Bearer h"}) == "h"
    encoded = base64.b64encode(b"s3cr3t").decode().rstrip("=")
    headers = {"sec-websocket-protocol": f"phoenix, base64url.bearer.phx.{encoded}"}
    assert bearer_token({}, headers) == "s3cr3t"
    assert bearer_token({}, {}) is None


def test_insecure_demo_authenticator() -> None:
    """The demo authenticator trusts params or a 'Bearer user:roles' header."""
    auth = InsecureDemoAuthenticator()
    assert auth({"user_id": "1", "roles": "admin,editor"}, {}) == Identity(
        user_id="1", roles=("admin", "editor")
    )
    assert auth({}, {"authorization": "Bearer 2:admin"}) == Identity(user_id="2",
                                                                     roles=("admin",))
    assert auth({}, {}) is ANONYMOUS


async def test_authenticate_wraps_sync_async_and_failures() -> None:
    """Sync and async authenticators work; raising or returning junk refuses."""

    async def async_auth(params: Any, headers: Any) -> Identity:
        return Identity(user_id="a")

    def raising(params: Any, headers: Any) -> Identity:
        raise RuntimeError("db down")

    assert await authenticate(async_auth, {}, {}) == Identity(user_id="a")
    assert await authenticate(raising, {}, {}) is None
    assert await authenticate(lambda p, h: "junk", {}, {}) is None
    assert await authenticate(None, {}, {}) is ANONYMOUS
