"""Deadlines: coarse per-task timeouts for calls."""

from __future__ import annotations

import asyncio

import pytest

from genapi.execution.deadlines import Deadlines


async def _sleep_past(deadlines: Deadlines, seconds: float) -> bool:
    deadline = deadlines.arm(seconds)
    try:
        await asyncio.sleep(1.0)
    except asyncio.CancelledError:
        return deadline.consume()
    finally:
        deadlines.disarm(deadline)
    return False


def test_a_deadline_fires_on_each_loop_it_is_used_from() -> None:
    """The running loop is remembered between calls; a new loop is noticed (asyncio.run)."""
    deadlines = Deadlines()
    assert asyncio.run(_sleep_past(deadlines, 0.01)) is True
    assert asyncio.run(_sleep_past(deadlines, 0.01)) is True
    assert len(deadlines) == 0


async def test_a_disarmed_deadline_never_fires() -> None:
    deadlines = Deadlines()
    deadline = deadlines.arm(0.01)
    deadlines.disarm(deadline)
    await asyncio.sleep(0.05)
    assert not deadline.expired and not deadline.consume()


def test_arming_outside_a_task_is_refused() -> None:
    async def from_a_callback() -> None:
        loop = asyncio.get_running_loop()
        failed: asyncio.Future[BaseException] = loop.create_future()

        def arm() -> None:
            try:
                Deadlines().arm(1.0)
            except RuntimeError as exc:
                failed.set_result(exc)

        loop.call_soon(arm)
        assert "tasks" in str(await failed)

    asyncio.run(from_a_callback())
    with pytest.raises(RuntimeError):
        Deadlines().arm(1.0)  # no loop at all
