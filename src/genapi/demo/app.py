"""The demo gateway: the walkthrough's functions behind the insecure demo authenticator."""

from __future__ import annotations

from ..durable import DurableSettings
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
from .signup import demo_durable, outbox_path, signup_service, use_outbox
from .walkthrough import SERVICES

__all__ = ["build_demo_gateway"]


def build_demo_gateway(cluster: ClusterOptions | None = None, *,
                       admin_token: str | None = None,
                       durable: DurableSettings | None = None) -> Gateway:
    """A gateway serving the demo services; identities come from connect params.

    With ``cluster`` it also reaches the demo's service nodes (and accepts their pushes).
    It also serves the relay functions (with the persistent group ``lobby``) and the
    chat page at ``/demo/chat``, and Prometheus metrics at ``/metrics`` (for
    ``genapi top``). With ``admin_token`` it serves the admin endpoints and the dashboard
    at ``/dashboard``, and allows the write actions (``genapi admin …``, the dashboard's
    buttons: a demo is for trying them). The durable ``signup_service.welcome`` keeps its
    calls in ``durable`` (default: a SQLite file in the temp directory, see
    :mod:`genapi.demo.signup`); ``genapi jobs`` operates them with the admin token.
    """
    actions = {AdminAction.PUSH_CONFIG} if cluster is not None else set()
    if admin_token is not None:
        # the dashboard's buttons and `genapi admin …` work on the demo
        actions.update((AdminAction.VIEW_DIAGNOSTICS, AdminAction.MANAGE_DURABLE,
                        AdminAction.MANAGE_FUNCTIONS, AdminAction.UPDATE_RATE_LIMIT_CONFIG))
    durable = durable or demo_durable()
    use_outbox(outbox_path(durable.url))
    gateway = Gateway(
        [*SERVICES, signup_service],
        authenticator=InsecureDemoAuthenticator(),
        settings=GatewaySettings(allow_anonymous=True),
        cluster=cluster,
        admin=AdminSettings(token=admin_token, gate=AdminGate(actions)),
        routes=chat_routes(),
        metrics=True,
        durable=durable,
    )
    add_relay(gateway, seed=[lobby()])  # shared through NATS when in a cluster
    return gateway
