"""Transports: how the executor reaches functions that run in other processes.

* :mod:`.base` — the :class:`Transport` interface, all the executor knows;
* :mod:`.memory` — an in-memory multi-node transport for tests (:class:`FakeTransport`);
* :mod:`.nats` — the NATS transport (imported only when a cluster is used).
"""

from __future__ import annotations

from .base import Transport
from .memory import FakeNode, FakeTransport

__all__ = ["FakeNode", "FakeTransport", "Transport"]
