"""The NATS link against a real nats-server."""

from __future__ import annotations

import asyncio
import time
import uuid

from genapi import Gateway
from genapi.gateway import ClusterOptions
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



async def test_a_gateway_stopped_while_its_first_nats_connect_retries_stops_at_once() -> None:
    """nats-py's connect can swallow a cancellation while it retries an absent server
    (and then retries forever): a gateway stopped right after it started hung on its
    link's close."""
    gateway = Gateway(cluster=ClusterOptions(nats="nats://127.0.0.1:1", name="absent"))
    running = gateway.running()  # nothing listens on port 1
    await running.__aenter__()
    started = time.monotonic()
    await asyncio.wait_for(running.__aexit__(None, None, None), 10)
    assert time.monotonic() - started < 3  # a hang, not a speed: it took the 10 s before
    assert gateway.cluster is not None
    connector = gateway.cluster.link._connector
    assert connector is not None and connector.done()
