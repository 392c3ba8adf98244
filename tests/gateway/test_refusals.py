"""Refusals that say what to do: authentication reasons, a wrong socket path, restarts."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import httpx
import jwt
import pytest
import websockets
from starlette.applications import Starlette
from starlette.routing import Mount

from genapi import (
    AuthenticationFailed,
    Gateway,
    GatewaySettings,
    Identity,
    JWTAuthenticator,
    Service,
)
from genapi.demo import SERVICES
from tests.gateway.conftest import ws_url
from tests.support.servers import running_app

SECRET = "a-test-secret-that-is-long-enough-for-hs256"


def now() -> int:
    return int(time.time())


def token(claims: dict[str, Any], key: str = SECRET, **options: Any) -> str:
    """A token made now (a module-level one could expire before a long suite reaches it)."""
    return jwt.encode({"sub": "7", "exp": now() + 60, **claims}, key, **options)


BAD: dict[str, Any] = {
    "token expired": lambda: token({"exp": now() - 10}),
    "invalid signature": lambda: token({}, "x" + SECRET),
    "missing claim: exp": lambda: jwt.encode({"sub": "7"}, SECRET),
    "missing claim: sub": lambda: jwt.encode({"exp": now() + 60}, SECRET),
    "malformed token": lambda: "garbage",
    "invalid audience": lambda: token({"aud": "other"}),
    "invalid issuer": lambda: token({"iss": "other"}),
    "token not yet valid": lambda: token({"nbf": now() + 3600}),
    "algorithm not allowed": lambda: token({}, "k" * 64, algorithm="HS512"),
}
OPTIONS: dict[str, dict[str, Any]] = {"invalid audience": {"audience": "genapi"},
                                      "invalid issuer": {"issuer": "genapi"}}


@pytest.mark.parametrize("reason", list(BAD))
def test_jwt_refusals_say_why(reason: str) -> None:
    """Each way a token fails has its safe, documented reason (calling it still says None)."""
    bad = BAD[reason]()
    auth = JWTAuthenticator(SECRET, **OPTIONS.get(reason, {}))
    with pytest.raises(AuthenticationFailed) as info:
        auth.identify({"token": bad}, {})
    assert info.value.reason == reason
    assert info.value.message == f"Authentication failed: {reason}"
    assert auth({"token": bad}, {}) is None


def jwt_gateway(**settings: Any) -> Gateway:
    return Gateway(SERVICES, authenticator=JWTAuthenticator(SECRET),
                   settings=GatewaySettings(**settings))


@pytest.mark.parametrize("driver", ["direct", "asgi"])
async def test_socket_refusals_carry_the_reason(driver: str,
                                                caplog: pytest.LogCaptureFixture) -> None:
    """A refused upgrade is 401 with a JSON reason and a Bearer challenge, logged at
    WARNING on genapi.auth without the token."""
    expired = token({"exp": now() - 10})
    async with running_app(jwt_gateway(), driver=driver) as url:
        for query, reason in [(f"vsn=2.0.0&token={expired}", "token expired"),
                              ("vsn=2.0.0", "missing token")]:
            with caplog.at_level(logging.WARNING, "genapi.auth"), \
                    pytest.raises(websockets.InvalidStatus) as info:
                async with websockets.connect(ws_url(url, query)):
                    pass
            response = info.value.response
            assert response.status_code == 401
            assert json.loads(response.body) == {"reason": reason}
            assert response.headers["www-authenticate"].startswith("Bearer")
        async with websockets.connect(ws_url(url, f"vsn=2.0.0&token={token({})}")):
            pass
    refusals = [r for r in caplog.records if r.name == "genapi.auth"]
    assert [r.levelno for r in refusals] == [logging.WARNING, logging.WARNING]
    assert "refused a connection from 127.0.0.1: token expired" in refusals[0].getMessage()
    assert expired not in caplog.text


async def test_http_refusals_carry_the_reason() -> None:
    """An HTTP call with a bad token gets 401 and ``Authentication failed: <reason>``."""
    async with running_app(jwt_gateway()) as url, httpx.AsyncClient(base_url=url) as http:
        bad = await http.post("/api/user_service/list_users", json={},
                              headers={"Authorization": f"Bearer {token({}, 'x' + SECRET)}"})
        missing = await http.post("/api/user_service/list_users", json={})
        good = await http.post("/api/user_service/list_users", json={},
                               headers={"Authorization": f"Bearer {token({})}"})
    assert bad.status_code == 401
    assert bad.json()["error"] == "Authentication failed: invalid signature"
    assert bad.headers["www-authenticate"] == (
        'Bearer error="invalid_token", error_description="invalid signature"')
    assert (missing.status_code, missing.json()["error"]) == (
        401, "Authentication failed: missing token")
    assert missing.headers["www-authenticate"] == "Bearer"
    assert good.status_code == 200


async def test_custom_authenticators_refuse_with_or_without_a_reason() -> None:
    """Raising AuthenticationFailed gives its reason; None gives ``refused``; any other
    exception ``authenticator error``."""

    def authenticator(params: Any, headers: Any) -> Identity | None:
        who = params.get("who")
        if who == "locked":
            raise AuthenticationFailed("account locked")
        if who == "crash":
            raise RuntimeError("database down")
        return None if who == "nobody" else Identity(user_id=who)

    gateway = Gateway(SERVICES, authenticator=authenticator)
    async with running_app(gateway) as url:
        for who, reason in [("locked", "account locked"), ("nobody", "refused"),
                            ("crash", "authenticator error")]:
            with pytest.raises(websockets.InvalidStatus) as info:
                async with websockets.connect(ws_url(url, f"vsn=2.0.0&who={who}")):
                    pass
            assert json.loads(info.value.response.body) == {"reason": reason}


@pytest.mark.parametrize("driver", ["direct", "asgi"])
async def test_a_wrong_socket_path_is_404_naming_the_right_one(driver: str) -> None:
    """Connecting to /socket (without /websocket) or elsewhere: 404, not an auth-like 403."""
    async with running_app(jwt_gateway(), driver=driver) as url:
        for path in ("/socket", "/ws/websocket"):
            with pytest.raises(websockets.InvalidStatus) as info:
                async with websockets.connect(ws_url(url, path=path)):
                    pass
            assert info.value.response.status_code == 404
            body = json.loads(info.value.response.body)
            assert body["socket_path"] == "/socket/websocket"
            assert body["reason"] == (f"no WebSocket endpoint at {path}; connect to "
                                      '/socket/websocket (phoenix.js: new Socket("/socket"))')


async def test_a_mounted_gateway_names_its_mounted_path() -> None:
    """Inside a host app the 404 names the path with the mount prefix."""
    host = Starlette(routes=[Mount("/rt", Gateway(SERVICES))])
    async with running_app(host) as url:
        with pytest.raises(websockets.InvalidStatus) as info:
            async with websockets.connect(ws_url(url, path="/rt/nope")):
                pass
    assert json.loads(info.value.response.body)["socket_path"] == "/rt/socket/websocket"


async def test_a_gateway_starts_and_stops_any_number_of_times() -> None:
    """After a drain the gateway serves again: health, sockets, async calls (fresh pools)."""
    svc = Service("work")

    @svc.function(response_type="async")
    async def later() -> str:
        return "done"

    gateway = Gateway([svc])
    for _ in range(3):
        async with running_app(gateway) as url, httpx.AsyncClient(base_url=url) as http:
            assert (await http.get("/healthz")).status_code == 200
            answer = await http.post("/api/work/later", json={})
            assert answer.json()["result"] == "done"
            async with websockets.connect(ws_url(url)):
                pass
        assert gateway.draining
