"""The coalescer: concurrent submissions become batches, errors reach their items."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from genapi.durable.batching import Coalescer


async def test_concurrent_items_are_flushed_together_in_order() -> None:
    """Items submitted while a flush runs go into the next batch; results match items."""
    batches: list[list[int]] = []

    async def flush(items: Sequence[int]) -> list[int]:
        batches.append(list(items))
        await asyncio.sleep(0.01)
        return [i * 10 for i in items]

    coalescer: Coalescer[int, int] = Coalescer(flush, max_batch=100)
    first = asyncio.create_task(coalescer.submit(0))
    await asyncio.sleep(0.001)  # the lone first item is being written already
    results = await asyncio.gather(first, *(coalescer.submit(i) for i in range(1, 50)))
    assert results == [i * 10 for i in range(50)]
    assert batches == [[0], list(range(1, 50))]
    await coalescer.aclose()


async def test_batches_respect_max_batch() -> None:
    """No flush gets more than max_batch items."""
    sizes: list[int] = []

    async def flush(items: Sequence[int]) -> list[int]:
        sizes.append(len(items))
        await asyncio.sleep(0)
        return list(items)

    coalescer: Coalescer[int, int] = Coalescer(flush, max_batch=7)
    assert await asyncio.gather(*(coalescer.submit(i) for i in range(40))) == list(range(40))
    assert max(sizes) == 7
    await coalescer.aclose()


async def test_a_failing_flush_fails_its_batch_only() -> None:
    """The error of one flush reaches the items of that batch; later items still work."""
    calls = 0

    async def flush(items: Sequence[int]) -> list[int]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        if calls == 1:
            raise RuntimeError("database down")
        return list(items)

    coalescer: Coalescer[int, int] = Coalescer(flush)
    with pytest.raises(RuntimeError, match="database down"):
        await coalescer.submit(1)
    assert await coalescer.submit(2) == 2
    await coalescer.aclose()


async def test_max_pending_applies_backpressure() -> None:
    """With max_pending items in flight, further submitters wait for room."""
    release = asyncio.Event()
    peak = 0

    async def flush(items: Sequence[int]) -> list[int]:
        nonlocal peak
        peak = max(peak, len(items))
        await release.wait()
        return list(items)

    coalescer: Coalescer[int, int] = Coalescer(flush, max_pending=3, max_batch=100)
    tasks = [asyncio.create_task(coalescer.submit(i)) for i in range(10)]
    await asyncio.sleep(0.01)
    assert coalescer._in_flight == 3
    release.set()
    assert await asyncio.gather(*tasks) == list(range(10))
    assert peak <= 3
    await coalescer.aclose()


async def test_closed_coalescer_refuses_items() -> None:
    """After aclose, submit raises."""

    async def flush(items: Sequence[int]) -> list[int]:
        return list(items)

    coalescer: Coalescer[int, int] = Coalescer(flush)
    await coalescer.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await coalescer.submit(1)
