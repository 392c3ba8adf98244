"""The NATS connection of a gateway or node: connects (retrying until the server is
there), reconnects forever, and reports whether it is usable right now.

Nothing from ``nats`` leaves this package: callers get genapi's errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from typing import Any

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from ...errors import TransportError, TransportUnavailable

__all__ = ["Link", "Msg", "NatsClient"]

logger = logging.getLogger("genapi.cluster")


class Link:
    """A reconnecting NATS client. ``await link.ready()`` waits for the first connection."""

    def __init__(self, url: str, *, name: str, max_backoff: float = 2.0) -> None:
        self.url = url
        self.name = name
        self.max_backoff = max_backoff
        self.nc: NatsClient | None = None
        self._connected = asyncio.Event()
        self._connector: asyncio.Task[None] | None = None
        self._closed = False
        self.reconnects = 0
        self.disconnects = 0
        self._on_lost: list[Callable[[], None]] = []

    def on_lost(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` each time the connection is lost (before reconnecting):
        whatever awaited a reply through it will not get one."""
        self._on_lost.append(callback)

    @property
    def usable(self) -> bool:
        """True when requests can be sent now (connected, not reconnecting)."""
        nc = self.nc
        return nc is not None and nc.is_connected

    def client(self) -> NatsClient:
        """The connected client, or TransportUnavailable (retryable; no node is to blame)
        while there is none."""
        nc = self.nc
        if nc is None or not nc.is_connected:
            raise TransportUnavailable("not connected to NATS")
        return nc

    def start(self) -> None:
        """Begin connecting in the background (idempotent)."""
        if self._connector is None:
            self._connector = asyncio.get_running_loop().create_task(
                self._connect_loop(), name=f"genapi-nats-{self.name}"
            )

    async def ready(self, timeout: float | None = None) -> None:
        """Wait for the first connection."""
        self.start()
        async with asyncio.timeout(timeout):
            await self._connected.wait()

    async def _connect_loop(self) -> None:
        attempt = 0
        while not self._closed:
            nc = NatsClient()
            try:
                await nc.connect(
                    servers=[self.url],
                    name=self.name,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    # nats-py annotates int but sleeps on it: sub-second waits work
                    reconnect_time_wait=0.2,  # type: ignore[arg-type]
                    connect_timeout=2,
                    ping_interval=5,
                    max_outstanding_pings=2,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                    error_cb=self._on_error,
                )
            except Exception as exc:  # nats raises many kinds while the server is away
                attempt += 1
                delay = min(self.max_backoff, 0.05 * 2 ** min(attempt, 8))
                logger.debug("NATS connect to %s failed (%s); retrying", self.url, exc)
                await asyncio.sleep(delay * random.uniform(0.5, 1.5))
                continue
            self.nc = nc
            self._connected.set()
            logger.info("%s connected to NATS at %s", self.name, self.url)
            return

    async def _on_disconnected(self) -> None:
        if self._closed:
            return
        self.disconnects += 1
        logger.warning("%s lost its NATS connection; reconnecting", self.name)
        for callback in self._on_lost:
            try:
                callback()
            except Exception:  # the others must still hear of it
                logger.exception("NATS connection-lost callback %r failed", callback)

    async def _on_reconnected(self) -> None:
        self.reconnects += 1
        logger.info("%s reconnected to NATS", self.name)

    async def _on_error(self, exc: Exception) -> None:
        logger.debug("NATS error on %s: %r", self.name, exc)

    async def publish(self, subject: str, payload: bytes, reply: str = "") -> None:
        """Publish; raises TransportError when not connected."""
        try:
            await self.client().publish(subject, payload, reply=reply)
        except TransportError:
            raise
        except Exception as exc:
            raise TransportError(f"publish to {subject} failed: {exc}") from exc

    async def subscribe(self, subject: str, handler: Any, queue: str = "") -> Any:
        """Subscribe ``handler(msg)`` (a coroutine function) to ``subject``."""
        try:
            return await self.client().subscribe(subject, queue=queue, cb=handler)
        except TransportError:
            raise
        except Exception as exc:
            raise TransportError(f"subscribe to {subject} failed: {exc}") from exc

    async def respond(self, msg: Msg, payload: bytes) -> None:
        """Answer a request message; raises TransportError when that fails."""
        try:
            await msg.respond(payload)
        except Exception as exc:
            raise TransportError(f"reply on {msg.subject} failed: {exc}") from exc

    async def unsubscribe(self, subscription: Any) -> None:
        """End a subscription; a failure (the connection is gone, which ends it anyway)
        is logged, not raised: callers unsubscribe while cleaning up."""
        try:
            await subscription.unsubscribe()
        except Exception as exc:
            logger.debug("%s: unsubscribe from %s failed: %r", self.name,
                         getattr(subscription, "subject", "?"), exc)

    async def drain_subscription(self, subscription: Any, timeout: float = 5.0) -> None:
        """End a subscription after handing every message already on its way to its
        handler. A plain unsubscribe discards what the client has received but not yet
        dispatched: a node leaving that way dropped calls, which then waited their full
        timeout at the gateway. Falls back to unsubscribing when the drain cannot finish."""
        try:
            async with asyncio.timeout(timeout):
                await subscription.drain()
            return
        except Exception as exc:
            logger.debug("%s: draining %s failed: %r", self.name,
                         getattr(subscription, "subject", "?"), exc)
        await self.unsubscribe(subscription)

    async def close(self) -> None:
        """Stop connecting and close the connection (drains pending publishes)."""
        self._closed = True
        if self._connector is not None:
            self._connector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connector
        nc, self.nc = self.nc, None
        if nc is None or nc.is_closed:
            return
        try:
            await nc.flush(timeout=1)
        except Exception as exc:  # the server is away: what was not flushed is lost
            logger.warning("%s: pending NATS messages not flushed on close: %r", self.name, exc)
        try:
            await nc.close()
        except Exception as exc:  # closing anyway; nothing left to lose
            logger.debug("%s: NATS close failed: %r", self.name, exc)


def is_no_responders(exc: BaseException) -> bool:
    """True for nats' "no responders" error."""
    return isinstance(exc, nats.errors.NoRespondersError)


def is_timeout(exc: BaseException) -> bool:
    """True for nats' request timeout."""
    return isinstance(exc, nats.errors.TimeoutError)
