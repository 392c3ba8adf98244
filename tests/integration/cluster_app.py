"""Functions served by the node processes of the cluster tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from genapi import ApiError, CallContext, Depends, Service

data_service = Service("data_service", retry=3, timeout=1000)


@data_service.function()
async def get_data(key: str, call: CallContext) -> dict[str, str]:
    """The key and the serving node."""
    return {"key": key, "node": call.node or "?"}


@data_service.function(retry=None, timeout=5000)
async def slow(ms: int, call: CallContext) -> dict[str, object]:
    """Sleep ``ms`` milliseconds."""
    await asyncio.sleep(ms / 1000)
    return {"slept": ms, "node": call.node or "?"}


@data_service.function(retry=None)
async def refuse(key: str) -> None:
    """A business error (never retried)."""
    raise ApiError(f"no such key: {key}")


@data_service.function(retry=None)
async def unencodable() -> object:
    """A result JSON cannot carry."""
    return {1, 2, 3} | {object()}  # a set holding an arbitrary object


@data_service.function(response_type="async", retry=None)
async def export(rows: int, call: CallContext) -> dict[str, object]:
    """Async work on a node."""
    await asyncio.sleep(0.05)
    return {"rows": rows, "node": call.node or "?"}


@data_service.function(response_type="stream", retry=None, timeout=None)
async def ticks(count: int, interval_ms: int = 5) -> AsyncIterator[int]:
    """``count`` chunks."""
    for i in range(count):
        yield i
        await asyncio.sleep(interval_ms / 1000)


CLEANED: list[str] = []


async def session(call: CallContext) -> AsyncIterator[dict[str, str]]:
    """A per-call resource, closed after the call on the node that ran it."""
    resource = {"node": call.node or "?"}
    try:
        yield resource
    finally:
        CLEANED.append(resource["node"])


@data_service.function(retry=None)
async def with_session(key: str, resource: dict[str, str] = Depends(session)
                       ) -> dict[str, object]:
    """A function with a dependency, on a node: how many sessions were closed before."""
    return {"key": key, "node": resource["node"], "closed_before": len(CLEANED)}


services = [data_service]
