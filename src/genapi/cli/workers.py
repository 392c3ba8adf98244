"""``genapi serve --workers N``: N gateway processes on one port, one cluster.

Each worker is a ``genapi serve`` process binding the port with ``SO_REUSEPORT``, so the
kernel spreads new connections over them by address hash. A Python process runs on one
core; this is how one machine's cores all serve.

What must be shared between workers goes where it goes between gateways of a cluster:
every worker joins the same NATS (``--nats``, or a private nats-server started here), so
functions pushed by nodes, relay groups and messages, long-poll sessions and config
changes reach all of them. Rate limits are shared only with a shared store (Redis): a
memory store counts per worker, which is said once at start.

The supervisor (this process) forwards SIGINT/SIGTERM to the workers as one SIGTERM (they
run in their own session: a terminal's Ctrl-C reaches only the supervisor), they drain as
a single gateway does, and a worker that dies without being asked to is started again.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from ..cluster.children import owned_child
from ..errors import ConfigError

__all__ = ["check_port", "supervise", "worker_argv", "worker_nats"]

logger = logging.getLogger("genapi.workers")

_RESTART_DELAY = 1.0  # a worker crashing at start must not spin the supervisor


def check_port(host: str, port: int) -> None:
    """Fail once, here, when the port is taken (rather than in every worker)."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise ConfigError("--workers needs SO_REUSEPORT (Linux, macOS, BSD)")
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc


@contextlib.contextmanager
def worker_nats(option: str | None) -> Iterator[str]:
    """The NATS URL the workers share: ``option``, or a private embedded server."""
    from ..cluster.embedded import EmbeddedNats
    from .nats import nats_url

    if option is not None:
        with nats_url(option) as url:
            yield url
        return
    with EmbeddedNats() as server:  # a free port: never another application's server
        yield server.url


def supervise(argv: list[str], workers: int, env: dict[str, str] | None = None) -> int:
    """Run ``workers`` copies of ``argv`` until SIGINT/SIGTERM; the exit status."""
    stopping = False
    procs: dict[int, subprocess.Popen[bytes]] = {}

    def start(slot: int) -> None:
        procs[slot] = subprocess.Popen(argv, env=env, **owned_child())

    def stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for slot in range(workers):
            start(slot)
        logger.info("%d workers started (pids %s)", workers,
                    ", ".join(str(p.pid) for p in procs.values()))
        while True:
            running = [p for p in procs.values() if p.poll() is None]
            if stopping and not running:
                break
            if not stopping:
                for slot, proc in list(procs.items()):
                    if proc.poll() is not None:
                        logger.error("worker %d (pid %d) exited with %s; starting it again",
                                     slot, proc.pid, proc.returncode)
                        time.sleep(_RESTART_DELAY)
                        if not stopping:
                            start(slot)
            time.sleep(0.1)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return max((abs(p.returncode or 0) for p in procs.values()), default=0)


def worker_argv(target: str, *, host: str, port: int, log_level: str, nats: str | None,
                ) -> list[str]:
    """The command line of one worker."""
    argv = [sys.executable, "-m", "genapi", "serve", target, "--host", host, "--port",
            str(port), "--log-level", log_level, "--reuse-port"]
    if nats is not None:
        argv += ["--nats", nats]
    return argv
