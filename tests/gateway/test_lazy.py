"""The lazy per-connection primitives behave as the asyncio ones they stand in for."""

from __future__ import annotations

import asyncio

import pytest

from genapi.gateway.lazy import Flag, Inbox


async def test_flag_wakes_every_waiter_and_keeps_nothing_after() -> None:
    flag = Flag()
    assert not flag.is_set()
    waiters = [asyncio.create_task(flag.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert flag._waiters is not None and len(flag._waiters) == 3
    flag.set()
    assert await asyncio.gather(*waiters) == [True, True, True]
    assert flag._waiters is None
    assert await flag.wait() is True  # already set: no waiting
    flag.clear()
    assert not flag.is_set()


async def test_flag_waiter_cancelled_is_forgotten() -> None:
    flag = Flag()
    waiter = asyncio.create_task(flag.wait())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert flag._waiters is None
    flag.set()


async def test_inbox_is_a_fifo_with_a_waiting_get() -> None:
    inbox: Inbox[int] = Inbox()
    assert inbox.empty() and inbox.qsize() == 0
    with pytest.raises(asyncio.QueueEmpty):
        inbox.get_nowait()
    getter = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    inbox.put_nowait(1)
    inbox.put_nowait(2)
    assert await getter == 1
    assert inbox.qsize() == 1 and inbox.get_nowait() == 2
    assert inbox._items is None and inbox._waiter is None  # nothing kept while empty


async def test_flag_on_set_is_called_once_and_then_dropped() -> None:
    flag = Flag()
    calls: list[int] = []
    flag.on_set = lambda: calls.append(1)
    flag.set()
    flag.set()
    flag.clear()
    flag.set()
    assert calls == [1] and flag.on_set is None  # no reference kept (no cycle through it)
