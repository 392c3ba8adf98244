"""The services of the fault tests and ``bench/faults.py``: remote ones served by node
processes, local ones by the gateway process, each response type in a fast and a slow form.

``genapi serve tests.support.fault_app:gateway --nats URL --push-token T`` and
``genapi node tests.support.fault_app:services --nats URL --push-token T --name N``.
The gateway's drain timeout comes from ``GENAPI_FAULT_DRAIN`` (seconds, default 2).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

from genapi import (
    AdminSettings,
    CallContext,
    ConnectionLimits,
    Gateway,
    GatewaySettings,
    Service,
)

ADMIN_TOKEN = "fault-admin-token-0123456789abcdef"

remote = Service("remote", timeout=20_000)


@remote.function()
async def echo(x: int, call: CallContext) -> dict[str, object]:
    """A fast call; the answer names the node."""
    return {"x": x, "node": call.node or "?"}


@remote.function(retry=2)
async def echo_retry(x: int, call: CallContext) -> dict[str, object]:
    """Like echo, but safe to run again on another node."""
    return {"x": x, "node": call.node or "?"}


@remote.function()
async def slow(ms: int, call: CallContext) -> dict[str, object]:
    """Sleeps ``ms`` milliseconds."""
    await asyncio.sleep(ms / 1000)
    return {"slept": ms, "node": call.node or "?"}


@remote.function(response_type="async")
async def work(ms: int, call: CallContext) -> dict[str, object]:
    """Async work of ``ms`` milliseconds."""
    await asyncio.sleep(ms / 1000)
    return {"worked": ms, "node": call.node or "?"}


@remote.function(response_type="stream", timeout=None)
async def ticks(count: int, interval_ms: int, call: CallContext) -> AsyncIterator[int]:
    """``count`` chunks, one per interval."""
    for i in range(count):
        yield i
        await asyncio.sleep(interval_ms / 1000)


services = [remote]

local = Service("local", timeout=20_000)
RUNNING: set[str] = set()


@local.function()
async def slow_local(ms: int, call: CallContext) -> dict[str, object]:
    """Sleeps ``ms`` milliseconds in the gateway process; counted while it runs."""
    RUNNING.add(call.request.request_id)
    try:
        await asyncio.sleep(ms / 1000)
    finally:
        RUNNING.discard(call.request.request_id)
    return {"slept": ms}


@local.function(response_type="async")
async def work_local(ms: int) -> dict[str, object]:
    """Async work in the gateway process."""
    await asyncio.sleep(ms / 1000)
    return {"worked": ms}


@local.function(response_type="stream", timeout=None)
async def ticks_local(count: int, interval_ms: int) -> AsyncIterator[int]:
    """A stream from the gateway process."""
    for i in range(count):
        yield i
        await asyncio.sleep(interval_ms / 1000)


@local.function()
async def running() -> list[str]:
    """The request ids of slow_local calls running now."""
    return sorted(RUNNING)


def gateway() -> Gateway:
    """The gateway of the fault tests (a factory: ``genapi serve`` calls it)."""
    drain = float(os.environ.get("GENAPI_FAULT_DRAIN", "2"))
    return Gateway([local], settings=GatewaySettings(
        limits=ConnectionLimits(drain_timeout=drain)),
        admin=AdminSettings(token=ADMIN_TOKEN))
