"""The demo gateway: the walkthrough's functions behind the insecure demo authenticator."""

from __future__ import annotations

from ..gateway import Gateway, InsecureDemoAuthenticator
from .walkthrough import SERVICES

__all__ = ["build_demo_gateway"]


def build_demo_gateway() -> Gateway:
    """A gateway serving the demo services; identities come from connect params."""
    return Gateway(SERVICES, authenticator=InsecureDemoAuthenticator(), allow_anonymous=True)
