"""Functions the demo's service nodes serve (``genapi demo --cluster``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from ..execution.context import CallContext
from ..functions.inference import MaxBytes
from ..functions.service import Service

__all__ = ["data_service"]

#: Runs on both demo nodes; calls are spread at random, retried (and failed over) 3 times.
data_service = Service("data_service", retry=3, choose_node_mode="random")


@data_service.function()
async def get_data(key: Annotated[str, MaxBytes(200)], call: CallContext) -> dict[str, str]:
    """The key, and the name of the node that served it."""
    return {"key": key, "node": call.node or "gateway"}


@data_service.function(response_type="async", retry=None, timeout=60_000)
async def export_data(call: CallContext, rows: int = 1000) -> dict[str, object]:
    """Slow work on a node (about a second); the result comes later."""
    await asyncio.sleep(1.0)
    return {"rows": min(max(rows, 0), 1_000_000), "node": call.node or "gateway"}


@data_service.function(response_type="stream", retry=None, timeout=None)
async def watch(call: CallContext, count: int = 10,
                interval_ms: int = 200) -> AsyncIterator[dict[str, object]]:
    """A stream from a node: one change per interval."""
    for number in range(1, min(max(count, 1), 10_000) + 1):
        yield {"change": number, "node": call.node or "gateway"}
        await asyncio.sleep(min(max(interval_ms, 1), 60_000) / 1000)
