"""What a connection and the HTTP endpoints need from the gateway serving them.

A small protocol instead of the :class:`~genapi.Gateway` class, so that the modules the
gateway is built from never import it back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol

from ..execution.executor import Executor
from ..protocol.phoenix import Serializer, TopicRouter
from .admission import Admission
from .auth import Identity
from .inflight import UserInflight
from .settings import ConnectionLimits, GatewayStats, JoinAuthorizer

__all__ = ["Admitted", "GatewayHost", "Refusal"]


class Admitted(NamedTuple):
    """A connection the gateway accepts: who, speaking which protocol version, from where."""

    identity: Identity
    serializer: Serializer
    ip: str | None


class Refusal(NamedTuple):
    """A connection the gateway refuses: the HTTP status, the reason a client may see (an
    authentication refusal's: ``token expired``…), and headers to send with it."""

    status: int
    reason: str
    headers: tuple[tuple[bytes, bytes], ...] = ()


class GatewayHost(Protocol):
    """The gateway as its connections and HTTP endpoints see it."""

    @property
    def executor(self) -> Executor:
        """Runs the calls."""

    @property
    def stats(self) -> GatewayStats:
        """Connection counters (connections write them)."""

    @property
    def limits(self) -> ConnectionLimits:
        """Per-connection bounds."""

    @property
    def user_inflight(self) -> UserInflight:
        """Calls in flight per user across the gateway's connections."""

    @property
    def topic_router(self) -> TopicRouter:
        """The topic patterns clients may join."""

    @property
    def event(self) -> str:
        """The event calls are pushed as."""

    @property
    def admission(self) -> Admission:
        """Connect and join rates per address."""

    @property
    def join_authorizer(self) -> JoinAuthorizer | None:
        """The per-topic join decision, if any."""

    @property
    def draining(self) -> bool:
        """True once the gateway refuses new work."""

    @property
    def authenticator(self) -> Callable[..., Any] | None:
        """Who is calling (None: everyone is anonymous)."""

    @property
    def allow_anonymous(self) -> bool:
        """Whether anonymous callers are accepted."""

    def client_ip(self, peer: str | None, headers: Mapping[str, str]) -> str | None:
        """The client's address (the peer, or ``X-Forwarded-For`` from a trusted proxy)."""

    def channel_joined(self, connection: Any, topic: str) -> None:
        """A connection joined ``topic`` (durable results waiting for its user go there)."""
