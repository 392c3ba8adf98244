"""Testing genapi APIs in-process: the real protocol through the real gateway, no port.

* :class:`InProcessGateway` — ``async with InProcessGateway(gateway) as api``: runs the
  gateway and makes :class:`genapi.Client` instances connected to it in-process
  (``await api.connect(user_id="1", roles=["admin"])``), an ``httpx.AsyncClient`` on its
  HTTP routes (``api.http()``), and dependency overrides (``api.override(dep, fake)``).
* :class:`TestClient` — the same, blocking, for tests that are not ``async``.
* :mod:`genapi.testing.plugin` — pytest fixtures (``pytest_plugins =
  ["genapi.testing.plugin"]``; define a ``genapi_gateway`` fixture).

See the README's "Testing your API".
"""

from __future__ import annotations

from .asgi import asgi_connector
from .harness import IDENTITY_HEADER, InProcessGateway
from .sync import SyncClient, TestClient

__all__ = ["IDENTITY_HEADER", "InProcessGateway", "SyncClient", "TestClient", "asgi_connector"]
