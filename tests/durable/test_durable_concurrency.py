"""Many workers, one queue: every call is completed exactly once (per backend).

Workers hold separate connections (separate stores), as the workers of several gateways
and nodes would; for both backends two separate OS processes also compete.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from durable_helpers import new_call

import genapi
from genapi.durable import CallState, DurableStore, Settle

CALLS = 400


async def drain(store: DurableStore, name: str, runs: collections.Counter[str]) -> int:
    """Claim and complete until nothing is due; count each run of each call."""
    done = 0
    while True:
        claimed = await store.claim(name, limit=7, lease_s=300.0)
        if not claimed:
            return done
        for call in claimed:
            runs[call.id] += 1
        await asyncio.sleep(0)  # let the other workers interleave
        settles = await store.complete_many([(c.lease, name) for c in claimed])
        assert settles == [Settle.RECORDED] * len(claimed)
        done += len(claimed)


async def test_eight_workers_complete_each_call_exactly_once(
    make_store: Callable[..., Any],
) -> None:
    """Eight workers on eight connections claim 400 calls: each runs and completes once."""
    gateway = await make_store()
    stored = await gateway.enqueue_many([new_call(f"r{i}") for i in range(CALLS)])
    ids = {call.id for call, _ in stored}
    workers = [await make_store() for _ in range(8)]
    runs: collections.Counter[str] = collections.Counter()
    done = await asyncio.gather(*(drain(w, f"w{i}", runs) for i, w in enumerate(workers)))
    assert set(runs) == ids
    assert max(runs.values()) == 1
    assert sum(done) == CALLS
    assert sum(1 for d in done if d) > 1  # the work really was shared
    counts = await gateway.counts()
    assert counts.by_state[CallState.SUCCEEDED] == CALLS


_CHILD = r"""
import asyncio, json, sys
from genapi.durable import open_store

async def main(url, name):
    store = open_store(url)
    await store.open()
    print("ready", flush=True)
    sys.stdin.readline()
    mine = []
    while True:
        claimed = await store.claim(name, limit=5, lease_s=300.0)
        if not claimed:
            break
        settles = await store.complete_many([(c.lease, name) for c in claimed])
        mine += [c.id for c, s in zip(claimed, settles) if s.value == "recorded"]
        await asyncio.sleep(0.005)  # "work": gives the other process a turn at the lock
    await store.aclose()
    print(json.dumps(mine), flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def test_two_processes_complete_each_call_exactly_once(
    make_store: Callable[..., Any], backend: str, request: Any, tmp_path: Path
) -> None:
    """Two OS processes racing over one queue complete disjoint sets covering every call."""
    store = await make_store()
    stored = await store.enqueue_many([new_call(f"r{i}") for i in range(CALLS)])
    ids = {call.id for call, _ in stored}
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'durable.db'}"
    else:
        url = f"{request.getfixturevalue('pg_url')}?schema={request.getfixturevalue('pg_schema')}"
    env = {**os.environ, "PYTHONPATH": str(Path(genapi.__file__).parents[1])}
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", _CHILD, url, f"proc{n}", env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )
        for n in range(2)
    ]
    for child in children:
        assert child.stdout is not None
        assert await asyncio.wait_for(child.stdout.readline(), 30) == b"ready\n"
    for child in children:  # start both at once
        assert child.stdin is not None
        child.stdin.write(b"go\n")
        await child.stdin.drain()
    outputs = [await asyncio.wait_for(child.communicate(), 60) for child in children]
    assert [child.returncode for child in children] == [0, 0]
    completed = [json.loads(out.decode().strip().splitlines()[-1]) for out, _ in outputs]
    runs = collections.Counter(i for mine in completed for i in mine)
    assert set(runs) == ids
    assert max(runs.values()) == 1
    assert all(completed), "both processes should have completed some calls"
