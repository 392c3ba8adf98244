"""Hostile HTTP against a gateway served as its own process (issue 15, findings 8 and 10).

``genapi serve`` (and plain ``uvicorn`` for the startup warning) runs
:mod:`tests.support.edge_app` on a free port, its log captured. Each test refuses one
abuse — a slowloris head, a 200 MB header line, a body cut short, a wrong content type, a
WebSocket message over the gateway's limit on uvicorn's driver — checks what the client
sees and what the server holds (RSS, log), and that the gateway then serves a normal call.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.gateway.wsframes_support import OP_TEXT, ClientFrame
from tests.gateway.wsraw import RawSocket
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.support.edge_app:gateway"
HEAD_TIMEOUT = 1.0


class ServerProcess:
    """One server process on a free port; its combined output in a temporary file."""

    def __init__(self, argv: list[str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")])}
        self.process = subprocess.Popen([sys.executable, "-m", *argv, "--port", str(self.port)],
                                        cwd=ROOT, env=env, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=1):
                break
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the server did not start:\n{self.output()}")
            time.sleep(0.05)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def rss_bytes(self) -> int:
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def serves_a_call(self) -> None:
        response = httpx.post(f"{self.url}/api/svc/echo", json={"n": 7}, timeout=10)
        assert response.status_code == 200 and response.json()["result"] == 7

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@contextlib.contextmanager
def serving(*argv: str) -> Iterator[ServerProcess]:
    server = ServerProcess(list(argv))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    """``genapi serve`` with genapi's drivers, a short head timeout, the log at info."""
    with serving("genapi", "serve", APP, "--log-level", "info",
                 "--head-timeout", str(HEAD_TIMEOUT)) as server:
        yield server


def connect(server: ServerProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return sock


def closed_by_server(sock: socket.socket, timeout: float) -> tuple[bool, bytes]:
    """(whether the server closed the connection within ``timeout`` s, what it sent)."""
    sock.settimeout(timeout)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        return False, received
    except ConnectionError:
        pass
    return True, received


def test_slowloris_head_is_closed_after_the_head_timeout(server: ServerProcess) -> None:
    """A head trickled a line at a time is cut at ``--head-timeout``, not held for minutes;
    so is a connection that never sends a byte."""
    silent = connect(server)
    trickle = connect(server)
    started = time.monotonic()
    trickle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    with contextlib.suppress(ConnectionError):
        for i in range(50):  # a header line every 0.1 s: never a complete head
            trickle.sendall(f"X-Slow-{i}: 1\r\n".encode())
            time.sleep(0.1)
            if time.monotonic() - started > HEAD_TIMEOUT + 3:
                break
    closed, _ = closed_by_server(trickle, HEAD_TIMEOUT + 3)
    assert closed, "a trickled head was not cut"
    closed, received = closed_by_server(silent, HEAD_TIMEOUT + 3)
    assert closed and received == b""
    for sock in (silent, trickle):
        sock.close()
    server.serves_a_call()


def read_response(sock: socket.socket) -> bytes:
    """One whole HTTP response with a Content-Length (head and body may arrive apart)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "closed before the response head"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed in the response body"
        body += chunk
    return head + b"\r\n\r\n" + body


def test_slowloris_on_a_keep_alive_connection_is_cut_too(server: ServerProcess) -> None:
    """The deadline runs again for each request: a client cannot send one quick request
    and then trickle the next head on the same connection."""
    sock = connect(server)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    sock.settimeout(5)
    assert read_response(sock).startswith(b"HTTP/1.1 200")
    sock.sendall(b"GET /healthz HTTP/1.1\r\n")
    started = time.monotonic()
    with contextlib.suppress(ConnectionError):
        while time.monotonic() - started < HEAD_TIMEOUT + 3:
            sock.sendall(b"X-Slow: 1\r\n")  # every 0.1 s: under the keep-alive timeout
            time.sleep(0.1)
    closed, received = closed_by_server(sock, 1)
    sock.close()
    assert closed and received == b""
    server.serves_a_call()


def test_a_200_mb_header_line_is_refused_early_with_431(server: ServerProcess) -> None:
    """The head is bounded (16 KB): the server answers 431 and closes long before 200 MB,
    and its memory does not grow with what the client tries to send."""
    rss_before = server.rss_bytes()
    sock = connect(server)
    sock.sendall(b"POST /api/svc/echo HTTP/1.1\r\nHost: x\r\nX-Huge: ")
    chunk = b"a" * 65536
    sent = 0
    with contextlib.suppress(ConnectionError, TimeoutError):
        sock.settimeout(5)
        while sent < 200 * 1024 * 1024:
            sock.sendall(chunk)
            sent += len(chunk)
    closed, received = closed_by_server(sock, 5)
    sock.close()
    assert closed
    assert received.startswith(b"HTTP/1.1 431"), received[:100]
    assert sent < 20 * 1024 * 1024, f"{sent} bytes were accepted before the refusal"
    assert server.rss_bytes() - rss_before < 20 * 1024 * 1024
    server.serves_a_call()


def test_a_client_leaving_mid_body_logs_no_error(server: ServerProcess) -> None:
    """A body cut short (the client disconnects) is not the server's error: no ERROR
    line, no traceback in the log."""
    for _ in range(3):
        sock = connect(server)
        sock.sendall(b"POST /api/svc/echo HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"n\": ")
        time.sleep(0.2)  # the request reaches the application, which waits for the body
        sock.close()
    server.serves_a_call()
    time.sleep(0.2)
    log = server.output()
    assert "Traceback" not in log and "ERROR" not in log, log


def test_a_wrong_content_type_is_415(server: ServerProcess) -> None:
    """Only JSON bodies reach a function: a form post (what a cross-site HTML form sends
    without a preflight) is 415; ``application/json`` with a charset is fine."""
    form = httpx.post(f"{server.url}/api/svc/echo", content=b'{"n": 1}', timeout=10,
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert form.status_code == 415
    assert "application/json" in form.json()["error"]
    text = httpx.post(f"{server.url}/api/svc/echo", content=b'{"n": 1}', timeout=10,
                      headers={"Content-Type": "text/plain"})
    assert text.status_code == 415
    charset = httpx.post(f"{server.url}/api/svc/echo", content=b'{"n": 2}', timeout=10,
                         headers={"Content-Type": "application/json; charset=utf-8"})
    assert charset.status_code == 200 and charset.json()["result"] == 2
    server.serves_a_call()


def test_uvicorn_driver_refuses_a_message_over_the_gateway_limit() -> None:
    """``genapi serve --ws uvicorn``: uvicorn's parser gets the gateway's limit (2 MB) as
    its ``ws_max_size``, so a 3 MB message is refused with 1009, not buffered up to
    uvicorn's default 16 MB."""
    with serving("genapi", "serve", APP, "--ws", "uvicorn", "--log-level", "warning") as server:
        async def main() -> int | None:
            client = await RawSocket.connect(server.url)
            frame = ClientFrame(OP_TEXT, b"x" * (3 * 1024 * 1024)).serialize()
            # The header announces 3 MB; the refusal must come without the rest (sending
            # it all would race the server's close: its RST discards the close frame).
            await client.send(frame[:65536])
            code = await client.close_code(10)
            client.abort()
            return code

        assert asyncio.run(main()) == 1009
        server.serves_a_call()


def test_plain_uvicorn_with_a_larger_limit_warns_at_startup() -> None:
    """Plain ``uvicorn`` (16 MB messages by default) is told about at startup, with the
    option that fixes it; at the gateway's limit it says nothing."""
    with serving("uvicorn", APP, "--log-level", "warning") as server:
        server.serves_a_call()
        assert "--ws-max-size 2097152" in server.output()
    with serving("uvicorn", APP, "--log-level", "warning",
                 "--ws-max-size", "2097152") as server:
        server.serves_a_call()
        assert "ws-max-size" not in server.output()


def test_serve_options_give_either_driver_the_gateway_limits() -> None:
    """What ``genapi serve`` hands uvicorn: the gateway's message limit for both drivers,
    genapi's head-bounded HTTP protocol; an unknown driver is refused."""
    from genapi import ConnectionLimits, Gateway, GatewaySettings
    from genapi.gateway.httpserver import GenapiHttpProtocol
    from genapi.gateway.serve import server_options
    from genapi.gateway.wsserver import GenapiWebSocketProtocol

    gateway = Gateway(settings=GatewaySettings(limits=ConnectionLimits(max_frame_bytes=1000)))
    genapi_ws = server_options(gateway, max_head_bytes=4096, head_timeout=2.5)
    assert genapi_ws["ws"] is GenapiWebSocketProtocol and genapi_ws["ws_max_size"] == 1000
    http = genapi_ws["http"]
    assert issubclass(http, GenapiHttpProtocol)
    assert (http.max_head_bytes, http.head_timeout) == (4096, 2.5)
    assert genapi_ws["h11_max_incomplete_event_size"] == 4096
    uvicorn_ws = server_options(gateway, ws="uvicorn")
    assert uvicorn_ws["ws"] == "websockets-sansio" and uvicorn_ws["ws_max_size"] == 1000
    with pytest.raises(ValueError, match="ws must be one of"):
        server_options(gateway, ws="wsproto")


def test_cli_refuses_an_unknown_driver() -> None:
    result = subprocess.run([sys.executable, "-m", "genapi", "serve", APP, "--ws", "nope"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(
                                [str(ROOT / "src"), str(ROOT)])})
    assert result.returncode == 2 and "--ws" in result.stderr
