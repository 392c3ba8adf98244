"""Exceptions of the Phoenix Channels core.

::

    GenApiError
    ├── ProtocolError          the peer sent a malformed frame (close the socket with 1011)
    └── LocalProtocolError     this side asked for something the protocol forbids (a bug)

They are siblings on purpose: a gateway that closes the socket on :class:`ProtocolError`
must not swallow its own mistakes as if the client had sent garbage.
"""

from __future__ import annotations

from ...errors import GenApiError

__all__ = ["LocalProtocolError", "ProtocolError"]


class ProtocolError(GenApiError):
    """An incoming frame is malformed: not JSON, wrong shape, bad binary header, bad UTF-8."""


class LocalProtocolError(GenApiError):
    """Local code tried an illegal move: a bad state transition or an unencodable frame."""
