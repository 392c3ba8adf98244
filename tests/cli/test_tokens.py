"""``genapi token``, and what a real ``genapi serve`` logs: refusals, never tokens."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import jwt
import pytest
import websockets

from genapi import JWTAuthenticator
from genapi.cli.main import main
from genapi.gateway.logs import RedactSecrets, redact
from tests.cli.test_main import GENAPI
from tests.support.procs import wait_healthy
from tests.support.servers import free_port

SECRET = "a-test-secret-that-is-long-enough-for-hs256"


def test_token_makes_what_the_authenticator_accepts(capsys: pytest.CaptureFixture[str]
                                                    ) -> None:
    """The token carries sub, roles, iat and exp (now + ttl) and extra claims."""
    with pytest.raises(SystemExit) as info:
        main(["token", "--secret", SECRET, "--sub", "42", "--roles", "admin, ops",
              "--ttl", "120", "--claim", "tenant=7", "--claim", "team=blue"])
    assert info.value.code == 0
    token = capsys.readouterr().out.strip()
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["sub"] == "42"
    assert claims["roles"] == ["admin", "ops"]
    assert (claims["tenant"], claims["team"]) == (7, "blue")
    assert claims["exp"] - claims["iat"] == 120
    assert abs(claims["iat"] - time.time()) < 5
    identity = JWTAuthenticator(SECRET)({"token": token}, {})
    assert identity is not None and identity.roles == ("admin", "ops")


def test_token_refuses_asymmetric_algorithms(capsys: pytest.CaptureFixture[str]) -> None:
    """Only HMAC algorithms: the secret is shared."""
    with pytest.raises(SystemExit) as info:
        main(["token", "--secret", SECRET, "--sub", "1", "--algorithm", "RS256"])
    assert info.value.code == 2


@pytest.mark.parametrize(("line", "expected"), [
    ('127.0.0.1:5 - "GET /socket/websocket?token=eyJa.eyJb.c&vsn=2.0.0 HTTP/1.1" 401',
     '127.0.0.1:5 - "GET /socket/websocket?token=[redacted]&vsn=2.0.0 HTTP/1.1" 401'),
    ("Authorization: Bearer abc.def", "Authorization: Bearer [redacted]"),
    ("proto base64url.bearer.phx.c2VjcmV0", "proto base64url.bearer.phx.[redacted]"),
    ("claims of eyJhbGci.eyJzdWIi.sig were odd", "claims of [redacted] were odd"),
    ("/x?vsn=2.0.0&password=hunter2", "/x?vsn=2.0.0&password=[redacted]"),
    ("nothing to hide", "nothing to hide"),
])
def test_redaction(line: str, expected: str) -> None:
    """Query tokens, Bearer values, the phoenix.js subprotocol and JWTs are replaced."""
    assert redact(line) == expected


def test_the_filter_keeps_records_formattable() -> None:
    """Arguments are redacted one by one: formatters reading them still work."""
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1,
                               '%s - "%s %s"', ("1.2.3.4", "GET", "/a?token=xyz"), None)
    assert RedactSecrets().filter(record)
    assert record.getMessage() == '1.2.3.4 - "GET /a?token=[redacted]"'


APP = f"""
import genapi

svc = genapi.Service("hello")


@svc.function(check_permission="any_authenticated")
async def greet(name: str) -> str:
    return "hello " + name


gateway = genapi.Gateway([svc], authenticator=genapi.JWTAuthenticator({SECRET!r}))
"""


def test_serve_logs_refusals_and_never_a_token(tmp_path: Path) -> None:
    """A real ``genapi serve``: refusals at WARNING on genapi.auth, the access log and the
    WebSocket lines with ``?token=[redacted]``; no token appears anywhere in its output."""
    (tmp_path / "jwtapp.py").write_text(APP)
    port = free_port()
    paths = [str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    proc = subprocess.Popen([*GENAPI, "serve", "jwtapp:gateway", "--port", str(port)],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    good = jwt.encode({"sub": "7", "exp": int(time.time()) + 60}, SECRET)
    expired = jwt.encode({"sub": "7", "exp": int(time.time()) - 60}, SECRET)
    try:
        wait_healthy(url, proc)
        ok = httpx.post(f"{url}/api/hello/greet?token={good}", json={"name": "al"})
        assert ok.json()["result"] == "hello al"
        bearer = httpx.post(f"{url}/api/hello/greet", json={"name": "al"},
                            headers={"Authorization": f"Bearer {expired}"})
        assert bearer.json()["error"] == "Authentication failed: token expired"

        async def sockets() -> None:
            ws_url = url.replace("http", "ws") + "/socket/websocket?vsn=2.0.0&token="
            async with websockets.connect(ws_url + good):
                pass
            with pytest.raises(websockets.InvalidStatus):
                async with websockets.connect(ws_url + expired):
                    pass

        asyncio.run(sockets())
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=15)[0].decode()
    assert proc.returncode == 0
    assert good not in output and expired not in output
    assert "token=[redacted]" in output  # the access log and the WebSocket lines
    assert "genapi.auth: refused an HTTP call from 127.0.0.1: token expired" in output
    assert "genapi.auth: refused a connection from 127.0.0.1: token expired" in output
    assert "WARNING" in output
