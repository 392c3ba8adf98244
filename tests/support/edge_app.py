"""A gateway for tests that serve it as a process (``genapi serve``, ``uvicorn``):
``svc.echo(n)``, anonymous access."""

from __future__ import annotations

from genapi import Gateway, GatewaySettings
from tests.support.services import observed_service

gateway = Gateway([observed_service()], settings=GatewaySettings(allow_anonymous=True))
