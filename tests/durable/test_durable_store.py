"""The store's behaviour, run once per backend (SQLite file, Postgres schema) on a fake clock."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from durable_helpers import T0, FakeClock, new_call

from genapi.durable import (
    CallState,
    DurableStore,
    Lease,
    Settle,
    SqliteStore,
    retry_at,
)
from genapi.errors import CallNotFound, StateConflict

LEASE = 30.0


async def claim_one(store: DurableStore, worker: str = "w1", now: float = T0) -> Any:
    claimed = await store.claim(worker, limit=10, lease_s=LEASE, now=now)
    assert len(claimed) == 1, claimed
    return claimed[0]


async def test_enqueue_then_get_returns_every_field(store: DurableStore) -> None:
    """A stored call reads back exactly as it was given, pending and due now."""
    call = new_call(key="alice:r1", args={"email": "a@example.com", "n": [1, 2]})
    stored, created = await store.enqueue(call)
    assert created is True
    got = await store.get(call.id)
    assert got == stored
    assert (got.id, got.service, got.request_type, got.request_id, got.version) == (
        call.id, "signup", "welcome", "r1", "1.0.0",
    )
    assert got.args == {"email": "a@example.com", "n": [1, 2]}
    assert (got.user_id, got.user_roles, got.device_id) == ("alice", ("user",), "d1")
    assert (got.idempotency_key, got.max_attempts, got.backoff) == ("alice:r1", 3, call.backoff)
    assert (got.state, got.attempts, got.due_at, got.created_at) == (CallState.PENDING, 0, T0, T0)
    assert got.lease_owner is None and got.result is None and got.finished_at is None
    assert await store.get_by_key("alice:r1") == stored
    assert await store.get("nope") is None
    assert await store.get_by_key("nope") is None


async def test_same_idempotency_key_stores_one_call(store: DurableStore) -> None:
    """A second enqueue with the same key returns the stored call, never a second row."""
    first, created = await store.enqueue(new_call(key="k1"))
    again, created_again = await store.enqueue(new_call(request_id="r2", key="k1"))
    assert (created, created_again) == (True, False)
    assert again == first
    assert len(await store.list_calls()) == 1


async def test_duplicate_key_returns_the_call_in_its_current_state(store: DurableStore) -> None:
    """A resubmission after completion gets the stored result, not a new run."""
    stored, _ = await store.enqueue(new_call(key="k1"))
    claimed = await claim_one(store)
    assert await store.complete(claimed.lease, {"sent": True}, now=T0 + 1) is Settle.RECORDED
    again, created = await store.enqueue(new_call(key="k1"))
    assert created is False
    assert (again.id, again.state, again.result) == (stored.id, CallState.SUCCEEDED, {"sent": True})


async def test_duplicate_keys_within_one_batch_store_one_call(store: DurableStore) -> None:
    """enqueue_many with the same key twice stores one row; both results name it."""
    results = await store.enqueue_many([new_call("a", key="k"), new_call("b", key="k"),
                                        new_call("c", key="other")])
    assert sorted(created for _, created in results) == [False, True, True]
    assert results[0][0].id == results[1][0].id
    assert len(await store.list_calls()) == 2


async def test_concurrent_enqueues_with_one_key_store_one_call(
    make_store: Callable[..., Any],
) -> None:
    """Forty racing enqueues of one key, through two stores, create exactly one call."""
    stores = [await make_store(), await make_store()]
    results = await asyncio.gather(
        *(stores[i % 2].enqueue(new_call(f"r{i}", key="race")) for i in range(40))
    )
    assert sum(created for _, created in results) == 1
    assert len({stored.id for stored, _ in results}) == 1
    assert len(await stores[0].list_calls()) == 1


async def test_claim_then_complete(store: DurableStore) -> None:
    """A claimed call is running under the worker's lease; completing records the result."""
    stored, _ = await store.enqueue(new_call())
    claimed = await claim_one(store, now=T0 + 1)
    assert claimed.id == stored.id
    assert (claimed.state, claimed.attempts, claimed.lease_owner) == (CallState.RUNNING, 1, "w1")
    assert claimed.lease_expires_at == claimed.due_at == T0 + 1 + LEASE
    assert claimed.started_at == T0 + 1
    assert claimed.lease == Lease(stored.id, "w1", 1)
    assert await store.claim("w2", limit=10, lease_s=LEASE, now=T0 + 2) == []
    assert await store.complete(claimed.lease, {"ok": 1}, now=T0 + 3) is Settle.RECORDED
    done = await store.get(stored.id)
    assert (done.state, done.result, done.finished_at) == (CallState.SUCCEEDED, {"ok": 1}, T0 + 3)
    assert await store.claim("w2", limit=10, lease_s=LEASE, now=T0 + 100) == []


async def test_claim_takes_due_calls_oldest_first_up_to_the_limit(store: DurableStore) -> None:
    """Only due calls are claimed, by due time, at most ``limit`` of them."""
    late = new_call("late", run_after=T0 + 60)
    calls = [new_call(f"r{i}", run_after=T0 - i) for i in range(3)]
    await store.enqueue_many([late, *calls])
    lease = 1_000.0
    claimed = await store.claim("w1", limit=2, lease_s=lease, now=T0)
    assert {c.request_id for c in claimed} == {"r2", "r1"}  # the order returned is free
    assert [c.request_id for c in await store.claim("w1", limit=9, lease_s=lease, now=T0)] == ["r0"]
    assert await store.claim("w1", limit=9, lease_s=lease, now=T0 + 59) == []
    assert [c.request_id for c in await store.claim("w1", limit=9, lease_s=lease, now=T0 + 60)] == [
        "late"
    ]


async def test_failures_retry_with_backoff_then_die(store: DurableStore) -> None:
    """Each failure schedules the next attempt by the call's backoff; the last one is dead."""
    stored, _ = await store.enqueue(new_call(max_attempts=3))
    now = T0
    delays = []
    for attempt in (1, 2, 3):
        claimed = await claim_one(store, now=now)
        assert claimed.attempts == attempt
        when = retry_at(claimed.backoff, attempts=claimed.attempts,
                        max_attempts=claimed.max_attempts, now=now, rand=lambda: 0.5)
        assert await store.fail(claimed.lease, f"boom {attempt}", retry_at=when,
                                now=now) is Settle.RECORDED
        after = await store.get(stored.id)
        assert after.last_error == f"boom {attempt}"
        if when is None:
            break
        delays.append(when - now)
        assert (after.state, after.retrying, after.due_at) == (CallState.PENDING, True, when)
        assert await store.claim("w1", limit=1, lease_s=LEASE, now=when - 0.01) == []
        now = when
    assert delays == [2.0, 4.0]
    dead = await store.get(stored.id)
    assert (dead.state, dead.attempts, dead.finished_at) == (CallState.DEAD, 3, now)
    assert await store.claim("w1", limit=1, lease_s=LEASE, now=now + 1_000) == []


async def test_expired_lease_is_reclaimed_and_the_stale_worker_is_refused(
    store: DurableStore,
) -> None:
    """After the lease expires another worker takes the call (attempt + 1); the first
    worker's completion and failure then change nothing."""
    stored, _ = await store.enqueue(new_call())
    first = await claim_one(store, "w1", now=T0)
    assert await store.claim("w2", limit=1, lease_s=LEASE, now=T0 + LEASE - 0.01) == []
    second = await claim_one(store, "w2", now=T0 + LEASE)
    assert (second.attempts, second.lease_owner) == (2, "w2")
    assert await store.complete(first.lease, "stale", now=T0 + 31) is Settle.NOT_OWNER
    assert await store.fail(first.lease, "stale", retry_at=None, now=T0 + 31) is Settle.NOT_OWNER
    assert await store.complete(second.lease, "fresh", now=T0 + 32) is Settle.RECORDED
    done = await store.get(stored.id)
    assert (done.state, done.result, done.attempts) == (CallState.SUCCEEDED, "fresh", 2)
    assert await store.complete(second.lease, "again", now=T0 + 33) is Settle.NOT_OWNER


async def test_same_worker_reclaiming_its_own_expired_call_is_fenced_by_attempt(
    store: DurableStore,
) -> None:
    """A worker id that claims its own expired call again cannot settle with the old lease."""
    await store.enqueue(new_call())
    old = await claim_one(store, "w1", now=T0)
    new = await claim_one(store, "w1", now=T0 + LEASE + 1)
    assert await store.complete(old.lease, "old", now=T0 + 40) is Settle.NOT_OWNER
    assert await store.complete(new.lease, "new", now=T0 + 40) is Settle.RECORDED


async def test_lease_expiring_on_the_last_attempt_makes_the_call_dead(store: DurableStore) -> None:
    """A call that keeps losing its worker is not run past max_attempts: the claim ends it."""
    stored, _ = await store.enqueue(new_call(max_attempts=2))
    await claim_one(store, "w1", now=T0)
    await claim_one(store, "w2", now=T0 + LEASE)
    assert await store.claim("w3", limit=5, lease_s=LEASE, now=T0 + 2 * LEASE) == []
    dead = await store.get(stored.id)
    assert (dead.state, dead.attempts) == (CallState.DEAD, 2)
    assert dead.finished_at == T0 + 2 * LEASE
    assert "lease expired" in (dead.last_error or "")


async def test_renew_extends_held_leases_only(store: DurableStore) -> None:
    """Renewed leases outlive their first expiry; a lease already taken over is not held."""
    (a, _), (b, _) = await store.enqueue_many([new_call("a"), new_call("b")])
    claimed = {c.id: c for c in await store.claim("w1", limit=2, lease_s=LEASE, now=T0)}
    renewal = await store.renew([claimed[a.id].lease], lease_s=LEASE, now=T0 + 20)
    assert (renewal.held, renewal.cancel_requested) == ({a.id}, frozenset())
    taken = await store.claim("w2", limit=5, lease_s=LEASE, now=T0 + LEASE)
    assert [c.id for c in taken] == [b.id]
    renewal = await store.renew([claimed[a.id].lease, claimed[b.id].lease], lease_s=LEASE,
                                now=T0 + 40)
    assert renewal.held == {a.id}
    assert (await store.get(a.id)).lease_expires_at == T0 + 40 + LEASE
    assert (await store.renew([], lease_s=LEASE)).held == frozenset()


async def test_manual_retry_runs_a_dead_call_again(store: DurableStore) -> None:
    """retry moves a dead call to pending, due now, attempts from zero; it runs again."""
    stored, _ = await store.enqueue(new_call(max_attempts=1))
    claimed = await claim_one(store, now=T0)
    await store.fail(claimed.lease, "boom", retry_at=None, now=T0)
    assert (await store.get(stored.id)).state is CallState.DEAD
    again = await store.retry(stored.id, now=T0 + 50)
    assert (again.state, again.attempts, again.due_at) == (CallState.PENDING, 0, T0 + 50)
    assert again.finished_at is None and again.last_error == "boom"
    rerun = await claim_one(store, now=T0 + 50)
    assert rerun.attempts == 1
    assert await store.complete(rerun.lease, "ok", now=T0 + 51) is Settle.RECORDED


async def test_retry_refuses_live_and_unknown_calls(store: DurableStore) -> None:
    """Retrying a pending, running or succeeded call is a StateConflict; an unknown id is
    CallNotFound."""
    stored, _ = await store.enqueue(new_call())
    with pytest.raises(StateConflict, match="pending"):
        await store.retry(stored.id)
    claimed = await claim_one(store)
    with pytest.raises(StateConflict, match="running"):
        await store.retry(stored.id)
    await store.complete(claimed.lease, None, now=T0)
    with pytest.raises(StateConflict, match="succeeded"):
        await store.retry(stored.id)
    with pytest.raises(CallNotFound):
        await store.retry("missing")
    with pytest.raises(CallNotFound):
        await store.cancel("missing")


async def test_cancel_pending_call(store: DurableStore) -> None:
    """A cancelled pending call is terminal at once and never claimed; cancelling again
    changes nothing; it can be retried."""
    stored, _ = await store.enqueue(new_call())
    cancelled = await store.cancel(stored.id, now=T0 + 1)
    assert (cancelled.state, cancelled.finished_at) == (CallState.CANCELLED, T0 + 1)
    assert await store.claim("w1", limit=5, lease_s=LEASE, now=T0 + 2) == []
    assert await store.cancel(stored.id, now=T0 + 5) == cancelled
    assert (await store.retry(stored.id, now=T0 + 6)).state is CallState.PENDING


async def test_cancel_running_call_is_requested_and_ends_at_its_failure(
    store: DurableStore,
) -> None:
    """Cancelling a running call flags it; renew tells the worker; its fail ends it
    cancelled instead of retrying."""
    stored, _ = await store.enqueue(new_call())
    claimed = await claim_one(store)
    flagged = await store.cancel(stored.id, now=T0 + 1)
    assert (flagged.state, flagged.cancel_requested) == (CallState.RUNNING, True)
    renewal = await store.renew([claimed.lease], lease_s=LEASE, now=T0 + 2)
    assert renewal.cancel_requested == {stored.id}
    assert await store.fail(claimed.lease, "Cancelled", retry_at=T0 + 10,
                            now=T0 + 3) is Settle.RECORDED
    assert (await store.get(stored.id)).state is CallState.CANCELLED


async def test_cancel_requested_call_whose_worker_died_ends_cancelled(
    store: DurableStore,
) -> None:
    """When the lease of a cancel-requested call expires it ends cancelled, not rerun."""
    stored, _ = await store.enqueue(new_call())
    await claim_one(store)
    await store.cancel(stored.id, now=T0 + 1)
    assert await store.claim("w2", limit=5, lease_s=LEASE, now=T0 + LEASE) == []
    assert (await store.get(stored.id)).state is CallState.CANCELLED


async def test_cancel_refuses_finished_calls(store: DurableStore) -> None:
    """A succeeded or dead call cannot be cancelled."""
    stored, _ = await store.enqueue(new_call())
    claimed = await claim_one(store)
    await store.complete(claimed.lease, 1, now=T0)
    with pytest.raises(StateConflict, match="succeeded"):
        await store.cancel(stored.id)


async def test_settling_an_unknown_call_is_not_found(store: DurableStore) -> None:
    """complete and fail of an id that is not stored say NOT_FOUND."""
    lease = Lease("ghost", "w1", 1)
    assert await store.complete_many([(lease, 1)], now=T0) == [Settle.NOT_FOUND]
    assert await store.fail(lease, "x", retry_at=None, now=T0) is Settle.NOT_FOUND
    assert await store.complete_many([]) == []


async def test_complete_many_reports_each_outcome(store: DurableStore) -> None:
    """A batch of completions reports recorded, not owner and not found per item, in order."""
    await store.enqueue_many([new_call("a"), new_call("b")])
    a, b = await store.claim("w1", limit=2, lease_s=LEASE, now=T0)
    wrong = Lease(b.id, "intruder", b.attempts)
    results = await store.complete_many(
        [(a.lease, "a"), (wrong, "x"), (Lease("ghost", "w1", 1), None)], now=T0 + 1
    )
    assert results == [Settle.RECORDED, Settle.NOT_OWNER, Settle.NOT_FOUND]
    assert (await store.get(b.id)).state is CallState.RUNNING


async def test_purge_deletes_only_calls_finished_before(store: DurableStore) -> None:
    """purge removes terminal calls finished before the cutoff and nothing else."""
    old, recent, pending = (new_call("old"), new_call("recent"), new_call("pending"))
    await store.enqueue_many([old, recent])
    first, second = await store.claim("w1", limit=2, lease_s=LEASE, now=T0)
    await store.complete(first.lease, 1, now=T0 + 10)
    await store.fail(second.lease, "x", retry_at=None, now=T0 + 100)
    await store.enqueue(pending, now=T0 - 1000)
    assert await store.purge(finished_before=T0 + 50) == 1
    assert await store.get(first.id) is None
    assert await store.get(second.id) is not None
    assert await store.get(pending.id) is not None
    assert await store.purge(finished_before=T0 + 50) == 0


async def test_counts_by_state_and_oldest_due(store: DurableStore) -> None:
    """counts gives every state, the retrying pending calls and the queue's lag."""
    empty = await store.counts(now=T0)
    assert set(empty.by_state) == set(CallState)
    assert sum(empty.by_state.values()) == 0 and empty.oldest_due_age_s is None
    await store.enqueue_many([new_call(f"r{i}", run_after=T0 - 10 + i) for i in range(4)])
    await store.enqueue(new_call("future", run_after=T0 + 100))
    a, b = await store.claim("w1", limit=2, lease_s=LEASE, now=T0)  # due T0-10, T0-9
    await store.complete(a.lease, 1, now=T0)
    await store.fail(b.lease, "x", retry_at=T0 + 5, now=T0)
    counts = await store.counts(now=T0)
    assert counts.by_state == {
        CallState.PENDING: 4, CallState.RUNNING: 0, CallState.SUCCEEDED: 1,
        CallState.DEAD: 0, CallState.CANCELLED: 0,
    }
    assert counts.retrying == 1
    assert counts.oldest_due_age_s == pytest.approx(8.0)


async def test_undelivered_results_until_marked_delivered(store: DurableStore) -> None:
    """A caller's finished calls are listed until marked delivered; others' are not."""
    mine = [new_call(f"m{i}", user_id="alice") for i in range(3)]
    theirs = new_call("t", user_id="bob")
    await store.enqueue_many([*mine, theirs])
    claimed = await store.claim("w1", limit=10, lease_s=LEASE, now=T0)
    by_request = {c.request_id: c for c in claimed}
    await store.complete_many([(by_request[r].lease, r) for r in ("m0", "m1", "t")], now=T0 + 1)
    await store.fail(by_request["m2"].lease, "boom", retry_at=T0 + 60, now=T0 + 1)  # not final
    waiting = await store.undelivered("alice")
    assert [c.request_id for c in waiting] == ["m0", "m1"]
    assert await store.mark_delivered([waiting[0].id, by_request["m2"].id], now=T0 + 2) == 1
    assert [c.request_id for c in await store.undelivered("alice")] == ["m1"]
    assert (await store.get(waiting[0].id)).delivered_at == T0 + 2
    assert [c.request_id for c in await store.undelivered("bob")] == ["t"]
    assert await store.mark_delivered([waiting[0].id]) == 0


async def test_undelivered_for_several_users_in_one_query(store: DurableStore) -> None:
    """undelivered_for lists the finished, undelivered calls of any of the users given,
    oldest first, and nothing for no users."""
    calls = [new_call("a1", user_id="alice"), new_call("b1", user_id="bob"),
             new_call("c1", user_id="carol")]
    await store.enqueue_many(calls)
    claimed = await store.claim("w1", limit=10, lease_s=LEASE, now=T0)
    await store.complete_many([(c.lease, c.request_id) for c in claimed], now=T0 + 1)
    found = await store.undelivered_for(["alice", "bob", "nobody"])
    assert [c.request_id for c in found] == ["a1", "b1"]
    assert await store.undelivered_for([]) == []
    assert [c.request_id for c in await store.undelivered_for(["carol"], limit=1)] == ["c1"]


async def test_unfinished_lists_a_callers_pending_and_running_calls(
    store: DurableStore,
) -> None:
    """unfinished lists the pending and running calls of one user, newest first."""
    calls = [new_call(f"a{i}", user_id="alice") for i in range(3)]
    await store.enqueue_many([*calls, new_call("b1", user_id="bob")])
    first = (await store.claim("w1", limit=1, lease_s=LEASE, now=T0))[0]
    assert first.request_id == "a0"
    assert [c.request_id for c in await store.unfinished("alice")] == ["a2", "a1", "a0"]
    await store.complete(first.lease, "done", now=T0 + 1)
    assert [c.request_id for c in await store.unfinished("alice", limit=1)] == ["a2"]
    assert [c.request_id for c in await store.unfinished("bob")] == ["b1"]


async def test_the_topic_is_stored_with_the_call(store: DurableStore) -> None:
    """A call's topic (where its terminal response goes) survives the round trip."""
    call = msgspec.structs.replace(new_call("r1"), topic="api:user:alice")
    stored, _ = await store.enqueue(call)
    assert stored.topic == "api:user:alice"
    assert (await store.get(stored.id)).topic == "api:user:alice"
    plain, _ = await store.enqueue(new_call("r2"))
    assert (await store.get(plain.id)).topic is None


async def test_list_filters_and_pages_newest_first(store: DurableStore) -> None:
    """list_calls filters by state, service and user and pages by id, newest first."""
    calls = [new_call(f"r{i}", user_id="alice" if i % 2 else "bob",
                      service="mail" if i < 3 else "crm") for i in range(6)]
    for call in calls:
        await store.enqueue(call, now=T0)
    ids = [c.id for c in calls]
    assert [c.id for c in await store.list_calls()] == ids[::-1]
    page1 = await store.list_calls(limit=4)
    page2 = await store.list_calls(limit=4, before=page1[-1].id)
    assert [c.id for c in page1 + page2] == ids[::-1]
    assert [c.request_id for c in await store.list_calls(service="mail", user_id="alice")] == ["r1"]
    await store.claim("w1", limit=1, lease_s=LEASE, now=T0)
    running = await store.list_calls(state=CallState.RUNNING)
    assert len(running) == 1 and running[0].state is CallState.RUNNING


async def test_migrate_twice_is_harmless(store: DurableStore) -> None:
    """Migrating an up-to-date schema changes nothing and keeps the data."""
    stored, _ = await store.enqueue(new_call())
    assert await store.migrate() == 2
    assert await store.migrate() == 2
    assert await store.get(stored.id) == stored


async def test_wait_for_work_wakes_on_another_connections_enqueue(
    make_store: Callable[..., Any],
) -> None:
    """A worker waiting on one connection wakes when another connection enqueues."""
    worker, gateway = await make_store(), await make_store()
    await worker.wait_for_work(0.01)  # starts listening; may report a first wake-up
    while await worker.wait_for_work(0.05):
        pass
    waiting = asyncio.create_task(worker.wait_for_work(5.0))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    loop = asyncio.get_running_loop()
    started = loop.time()
    await gateway.enqueue(new_call())
    assert await waiting is True
    assert loop.time() - started < 2.0
    assert await worker.wait_for_work(0.05) is False


async def test_wait_for_work_wakes_on_its_own_enqueue(store: DurableStore) -> None:
    """Enqueueing through the same store wakes its waiting worker."""
    await store.wait_for_work(0.01)
    while await store.wait_for_work(0.05):
        pass
    waiting = asyncio.create_task(store.wait_for_work(5.0))
    await asyncio.sleep(0.02)
    await store.enqueue(new_call())
    assert await asyncio.wait_for(waiting, 2.0) is True


async def test_times_default_to_the_store_clock(store: DurableStore, clock: FakeClock) -> None:
    """Without ``now`` the store uses its clock (here a fake one)."""
    clock.advance(5)
    stored, _ = await store.enqueue(new_call())
    assert stored.created_at == T0 + 5
    claimed = (await store.claim("w1", limit=1, lease_s=LEASE))[0]
    assert claimed.lease_expires_at == T0 + 5 + LEASE


async def test_a_call_that_is_not_json_fails_alone(store: DurableStore) -> None:
    """Among concurrent enqueues, one whose args are not JSON-able raises TypeError by
    itself; the others are stored."""
    good = [new_call(f"r{i}") for i in range(5)]
    bad = new_call("bad", args={"when": object()})
    results = await asyncio.gather(
        *(store.enqueue(c) for c in [*good[:2], bad, *good[2:]]), return_exceptions=True
    )
    assert isinstance(results[2], TypeError)
    assert all(created for stored, created in (r for i, r in enumerate(results) if i != 2))
    assert len(await store.list_calls()) == 5


async def test_a_result_that_is_not_json_fails_alone(store: DurableStore) -> None:
    """A completion whose result is not JSON-able raises TypeError; the call stays running."""
    stored, _ = await store.enqueue(new_call())
    claimed = await claim_one(store)
    with pytest.raises(TypeError):
        await store.complete(claimed.lease, {"at": object()})
    assert (await store.get(stored.id)).state is CallState.RUNNING


async def test_claim_refuses_a_useless_limit_or_lease(store: DurableStore) -> None:
    """A claim of no calls or with no lease is a ValueError."""
    with pytest.raises(ValueError, match="limit"):
        await store.claim("w1", limit=0, lease_s=LEASE)
    with pytest.raises(ValueError, match="lease"):
        await store.claim("w1", limit=1, lease_s=0)


async def test_a_closed_store_opens_again(store: DurableStore) -> None:
    """aclose then open gives a working store with the same data."""
    stored, _ = await store.enqueue(new_call())
    await store.aclose()
    await store.open()
    assert await store.get(stored.id) == stored
    assert (await store.enqueue(new_call("r2")))[1] is True


async def test_a_sqlite_store_whose_opening_is_cancelled_stops_its_thread(tmp_path: Any) -> None:
    """Cancelling open() (a gateway stopped while starting) ends the store's thread at
    once, and the store opens again afterwards."""
    store = SqliteStore(str(tmp_path / "cancelled.db"))
    opening = asyncio.ensure_future(store.open())
    await asyncio.sleep(0)
    opening.cancel()
    started = time.monotonic()
    with contextlib.suppress(asyncio.CancelledError):
        await opening
    assert time.monotonic() - started < 2.0
    await store.open()
    await store.migrate()
    assert await store.counts()
    await store.aclose()
