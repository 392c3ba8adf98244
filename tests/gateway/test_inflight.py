"""A connection's running calls: one key each, however the client reuses request ids."""

from __future__ import annotations

import asyncio

from genapi import Cancelled, ShuttingDown
from genapi.gateway.inflight import InflightCalls, UserInflight


async def _wait_forever() -> None:
    await asyncio.Event().wait()


async def test_reused_ids_get_their_own_keys_and_end_together() -> None:
    """Three calls, two with the same id: all counted; ending the id ends both."""
    calls = InflightCalls(limit=3)
    tasks = {}
    for rid in ("a", "b", "a"):
        key = calls.new_key()
        tasks[key] = asyncio.create_task(_wait_forever())
        calls.add(key, rid, tasks[key])
    assert (len(calls), calls.full) == (3, True)
    assert calls.end("a", Cancelled()) == 2
    assert calls.end("a", Cancelled()) == 0  # already ending: not counted twice
    ended = [key for key in tasks if calls.ending(key) is not None]
    assert len(ended) == 2 and all(isinstance(calls.ending(k), Cancelled) for k in ended)
    for key in ended:
        calls.discard(key, "a")
    assert len(calls) == 1
    assert calls.end_all(ShuttingDown()) == 1
    await asyncio.gather(*tasks.values(), return_exceptions=True)


async def test_calls_are_accounted_to_their_user_once() -> None:
    """A call added is counted +1 for its user, -1 when discarded (only once, and never
    for a call that ended before it was added); users at zero are forgotten."""
    users = UserInflight(limit=2)
    calls = InflightCalls(limit=5, account=lambda delta: users.add("ann", delta))
    task = asyncio.create_task(_wait_forever())
    calls.discard(1, "a")  # an eager call that finished before being added
    assert users.count("ann") == 0
    calls.add(2, "b", task)
    users.add("ann", 1)  # an acked async job of hers
    assert (users.count("ann"), users.full("ann"), len(users)) == (2, True, 1)
    calls.discard(2, "b")
    calls.discard(2, "b")
    users.add("ann", -1)
    assert (users.count("ann"), users.full("ann"), len(users)) == (0, False, 0)
    users.add(None, 1)  # anonymous callers are capped per connection only
    assert (users.count(None), users.full(None), len(users)) == (0, False, 0)
    task.cancel()
