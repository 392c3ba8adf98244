"""Exceptions of the Phoenix Channels core (defined in :mod:`genapi.errors`).

* :class:`ProtocolError` — the peer sent a malformed frame;
* :class:`LocalProtocolError` — this side asked for something the protocol forbids (a bug).

They are siblings on purpose: a gateway that closes the socket on :class:`ProtocolError`
must not swallow its own mistakes as if the client had sent garbage.
"""

from __future__ import annotations

from ...errors import LocalProtocolError, ProtocolError

__all__ = ["LocalProtocolError", "ProtocolError"]
