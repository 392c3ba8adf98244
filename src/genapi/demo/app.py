"""The demo gateway: the walkthrough's functions and the chat room behind the insecure demo
authenticator."""

from __future__ import annotations

from ..gateway import Gateway, InsecureDemoAuthenticator
from ..relay import add_relay
from .chat import chat_hub, chat_routes
from .walkthrough import SERVICES

__all__ = ["build_demo_gateway"]


def build_demo_gateway() -> Gateway:
    """A gateway serving the demo services, the relay (with the ``lobby`` group) and the
    chat page at ``/demo/chat``; identities come from connect params."""
    gateway = Gateway(SERVICES, authenticator=InsecureDemoAuthenticator(), allow_anonymous=True,
                      routes=chat_routes())
    add_relay(gateway, chat_hub())
    return gateway
