"""What diagnostics read of a gateway, as small protocols (a :class:`~genapi.Gateway`
satisfies :class:`GatewayView`), so this layer needs no import of the gateway."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ..execution.executor import Executor
from ..schema.catalog import ApiSurface

if TYPE_CHECKING:  # the cluster modules load nats-py: only gateways in a cluster need them
    from ..cluster.sync import ConfigSync, NodeDirectory

__all__ = ["ClusterView", "ConnectionView", "Counters", "GatewayView"]


class ConnectionView(Protocol):
    """One open client connection, as diagnostics list it."""

    @property
    def user_id(self) -> str | None:
        """The authenticated user (None: anonymous)."""

    @property
    def ip_address(self) -> str | None:
        """The client's address."""

    @property
    def topics(self) -> Sequence[str]:
        """The topics joined."""

    @property
    def inflight(self) -> int:
        """Calls running for this connection."""

    @property
    def queued(self) -> int:
        """Frames waiting to be written."""

    @property
    def queued_bytes(self) -> int:
        """Bytes waiting to be written."""

    @property
    def last_activity(self) -> float:
        """``time.monotonic()`` of the last frame received."""


class ClusterView(Protocol):
    """A gateway's cluster side: the node directory, the config sync, the link status."""

    @property
    def directory(self) -> NodeDirectory:
        """Nodes heard from and whether they are alive."""

    @property
    def sync(self) -> ConfigSync:
        """Config push, verify and pull."""

    def status(self) -> dict[str, Any]:
        """Connection, nodes and pushed versions."""


class Counters(Protocol):
    """Counters that read as a plain dict (:class:`~genapi.gateway.GatewayStats`)."""

    def as_dict(self) -> dict[str, int]:
        """The counters by name."""


class GatewayView(ApiSurface, Protocol):
    """Everything :class:`~genapi.Diagnostics` reads of a running gateway."""

    @property
    def executor(self) -> Executor:
        """The executor running the calls."""

    @property
    def cluster(self) -> ClusterView | None:
        """The cluster side (None outside a cluster)."""

    @property
    def connections(self) -> Collection[ConnectionView]:
        """The open client connections."""

    @property
    def stats(self) -> Counters:
        """Connection counters."""

    @property
    def draining(self) -> bool:
        """True once the gateway is shutting down."""

    @property
    def allow_anonymous(self) -> bool:
        """Whether anonymous connections are accepted."""
