"""NATS subject names, all under one configurable prefix (default ``genapi``).

=====================================  ==========================================================
subject                                use
=====================================  ==========================================================
``<p>.call.<node>``                    request/reply: run a request on a node (calls and
                                       stream starts; stream chunks go to the request's inbox)
``<p>.ack.<node>``                     gateway → node: stream chunks handed on (flow control)
``<p>.cancel.<node>``                  gateway → node: cancel a call or stream by call id
``<p>.config.push``                    node → every gateway: a PushConfig (each gateway replies)
``<p>.config.verify``                  node → every gateway: is this config version stored?
``<p>.config.request``                 gateway → every node: please push your configs again
``<p>.config.pull.<node>``             gateway → node: the configs of a service (pull)
``<p>.config.version.<node>``          gateway → node: the config version of a service
``<p>.node.heartbeat``                 node → gateways: alive, with its services
``<p>.node.leave``                     node → gateways: draining, take me out of node lists
=====================================  ==========================================================
"""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import ConfigError

__all__ = ["Subjects"]

_FORBIDDEN = set(" \t\r\n.*>")


def _token(value: str, what: str) -> str:
    if not value or any(ch in _FORBIDDEN for ch in value):
        raise ConfigError(f"{what} {value!r} must be non-empty, without spaces, '.', '*' or '>'")
    return value


@dataclass(frozen=True, slots=True)
class Subjects:
    """Subject names under ``prefix`` (a dotted prefix like ``acme.genapi`` is fine)."""

    prefix: str = "genapi"

    def __post_init__(self) -> None:
        for part in self.prefix.split("."):
            _token(part, "subject prefix part")

    def call(self, node: str) -> str:
        """Calls to ``node``."""
        return f"{self.prefix}.call.{_token(node, 'node name')}"

    def ack(self, node: str) -> str:
        """Stream acknowledgements to ``node``."""
        return f"{self.prefix}.ack.{_token(node, 'node name')}"

    def cancel(self, node: str) -> str:
        """Cancellations to ``node``."""
        return f"{self.prefix}.cancel.{_token(node, 'node name')}"

    @property
    def push(self) -> str:
        """Config pushes (node → gateways)."""
        return f"{self.prefix}.config.push"

    @property
    def verify(self) -> str:
        """Config verification (node → gateways)."""
        return f"{self.prefix}.config.verify"

    @property
    def config_request(self) -> str:
        """Gateways asking every node to push again."""
        return f"{self.prefix}.config.request"

    def pull(self, node: str) -> str:
        """Config pulls from ``node``."""
        return f"{self.prefix}.config.pull.{_token(node, 'node name')}"

    def version(self, node: str) -> str:
        """Config version queries to ``node``."""
        return f"{self.prefix}.config.version.{_token(node, 'node name')}"

    @property
    def heartbeat(self) -> str:
        """Node heartbeats."""
        return f"{self.prefix}.node.heartbeat"

    @property
    def leave(self) -> str:
        """Nodes announcing they leave."""
        return f"{self.prefix}.node.leave"

    def longpoll(self, gateway: str) -> str:
        """Long-poll requests forwarded to the gateway owning the session."""
        return f"{self.prefix}.longpoll.{_token(gateway, 'gateway name')}"
