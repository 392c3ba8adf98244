"""Start a throwaway ``redis-server`` on a free loopback port (never the machine's own).

Stdlib only, so the benchmarks can use it too. Meant to move to a shared fixtures module.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

__all__ = ["RedisServerMissing", "free_port", "redis_server"]


class RedisServerMissing(RuntimeError):
    """No ``redis-server`` binary on PATH."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def redis_server(startup_timeout_s: float = 10.0) -> Iterator[str]:
    """Run ``redis-server`` without persistence; yield its ``redis://`` URL; kill it after."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RedisServerMissing("redis-server is not on PATH")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="genapi-redis-") as workdir:
        process = subprocess.Popen(
            [
                binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", workdir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + startup_timeout_s
            while not _answers_ping(port):
                if process.poll() is not None:
                    raise RuntimeError(f"redis-server exited with {process.returncode}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not answer PING on port {port}")
                time.sleep(0.02)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.kill()
            process.wait(timeout=10)
