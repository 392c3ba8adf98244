"""The NATS link against a real nats-server."""

from __future__ import annotations

import asyncio
import uuid

from genapi.transport.nats.link import Link, Msg


async def test_draining_a_subscription_hands_on_every_message_already_received(
    nats_url: str,
) -> None:
    """A node leaving drains its call subscription: messages the client had received but not
    yet dispatched still reach the handler (a plain unsubscribe discarded them, and their
    calls waited their full timeout at the gateway)."""
    subject = f"test.drain.{uuid.uuid4().hex}"
    link = Link(nats_url, name="drain-test")
    await link.ready(timeout=10)
    try:
        first_started = asyncio.Event()
        release = asyncio.Event()
        handled: list[bytes] = []

        async def handler(msg: Msg) -> None:
            if not handled:
                first_started.set()
                await release.wait()  # the handler is busy: the rest wait in the client
            handled.append(msg.data)

        subscription = await link.subscribe(subject, handler)
        for i in range(5):
            await link.client().publish(subject, str(i).encode())
        await link.client().flush()
        await asyncio.wait_for(first_started.wait(), 5)
        draining = asyncio.create_task(link.drain_subscription(subscription))
        await asyncio.sleep(0.05)
        release.set()
        await asyncio.wait_for(draining, 5)
        assert handled == [b"0", b"1", b"2", b"3", b"4"]
        await link.client().publish(subject, b"after")
        await link.client().flush()
        await asyncio.sleep(0.05)
        assert len(handled) == 5  # no interest after the drain
    finally:
        await link.close()
