"""The demo gateway: the walkthrough's functions behind the insecure demo authenticator."""

from __future__ import annotations

from ..gateway import (
    AdminSettings,
    ClusterOptions,
    Gateway,
    GatewaySettings,
    InsecureDemoAuthenticator,
)
from ..relay import add_relay
from ..security import AdminAction, AdminGate
from .chat import chat_routes, lobby
from .walkthrough import SERVICES

__all__ = ["build_demo_gateway"]


def build_demo_gateway(cluster: ClusterOptions | None = None, *,
                       admin_token: str | None = None) -> Gateway:
    """A gateway serving the demo services; identities come from connect params.

    With ``cluster`` it also reaches the demo's service nodes (and accepts their pushes).
    It also serves the relay functions (with the persistent group ``lobby``) and the
    chat page at ``/demo/chat``, and Prometheus metrics at ``/metrics`` (for
    ``genapi top``). With ``admin_token`` it serves the admin endpoints and the dashboard
    at ``/dashboard``.
    """
    actions = {AdminAction.PUSH_CONFIG} if cluster is not None else set()
    if admin_token is not None:
        actions.add(AdminAction.VIEW_DIAGNOSTICS)
    gateway = Gateway(
        SERVICES,
        authenticator=InsecureDemoAuthenticator(),
        settings=GatewaySettings(allow_anonymous=True),
        cluster=cluster,
        admin=AdminSettings(token=admin_token, gate=AdminGate(actions)),
        routes=chat_routes(),
        metrics=True,
    )
    add_relay(gateway, seed=[lobby()])  # shared through NATS when in a cluster
    return gateway
