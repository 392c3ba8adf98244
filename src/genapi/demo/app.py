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
from ..relay import RelayLimits, add_relay, relay_service
from ..security import AdminAction, AdminGate
from .chat import chat_routes, lobby, room_1
from .signup import demo_durable, outbox_path, signup_service, use_outbox
from .walkthrough import SERVICES

__all__ = ["build_demo_gateway"]


def build_demo_gateway(cluster: ClusterOptions | None = None, *,
                       admin_token: str | None = None,
                       durable: DurableSettings | None = None,
                       relay_limits: RelayLimits | None = None) -> Gateway:
    """A gateway serving the demo services; identities come from connect params.

    With ``cluster`` it also reaches the demo's service nodes (and accepts their pushes).
    It also serves the relay functions as ``relay`` and, as in the walkthrough's section
    12, as ``chat_service`` (with the persistent public groups ``lobby`` and ``room_1``,
    and topics ``api:*`` and ``chat:*``) and the
    chat page at ``/demo/chat``, and Prometheus metrics at ``/metrics`` (for
    ``genapi top``); ``relay_limits`` bound the relay (``genapi demo
    --relay-max-members``). With ``admin_token`` it serves the admin endpoints and the dashboard
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
        # "chat:*" too: the walkthrough's relay section (12) talks on "chat:room_1".
        settings=GatewaySettings(allow_anonymous=True, topics=("api:*", "chat:*")),
        cluster=cluster,
        admin=AdminSettings(token=admin_token, gate=AdminGate(actions)),
        routes=chat_routes(),
        metrics=True,
        durable=durable,
    )
    # shared through NATS when in a cluster
    hub = add_relay(gateway, seed=[lobby(), room_1()], limits=relay_limits)
    # the walkthrough's section 12 serves the relay's send_message as chat_service's; the
    # same hub, so the groups and the cleanup on disconnect are shared
    gateway.registry.add_service(relay_service(hub, name="chat_service"))
    return gateway
