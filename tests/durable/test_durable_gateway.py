"""Durable calls through a real gateway (uvicorn in this process, a raw Phoenix client),
on each backend: stored before the ack, run by the workers with retries and backoff,
delivered once to the caller, live or when they come back, and operated over /admin/jobs.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from durable_app import ADMIN_TOKEN, GATES, RUNS, durable_gateway
from gateway_helpers import Caller
from tests.support.servers import running_app

from genapi import Gateway, Service
from genapi.durable import CallState, StoredCall
from genapi.execution.executor import Executor
from genapi.functions.registry import Registry
from genapi.messages import Request

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(autouse=True)
def _fresh() -> None:
    RUNS.clear()
    GATES.clear()


@pytest.fixture
async def serve(store_url: str, backend: str) -> AsyncIterator[Callable[..., Any]]:
    """Start a durable gateway on the backend's fresh store; yields (base URL, gateway)."""
    stack: list[Any] = []

    async def start(**options: Any) -> tuple[str, Gateway]:
        gateway = durable_gateway(store_url, backend=backend, **options)
        runner = running_app(gateway)
        url = await runner.__aenter__()
        stack.append(runner)
        assert gateway.durable is not None
        await asyncio.wait_for(gateway.durable._ready.wait(), 10)
        return url, gateway

    yield start
    for runner in reversed(stack):
        await runner.__aexit__(None, None, None)


async def stored(gateway: Gateway, request_id: str, user: str = "alice") -> StoredCall:
    assert gateway.durable is not None
    call = await gateway.durable.store.get_by_key(f"{user}:r:{request_id}")
    assert call is not None
    return call


async def until(condition: Callable[[], Any], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


def runs_of(request_id: str) -> list[int]:
    return [attempt for rid, attempt, _ in RUNS if rid == request_id]


async def test_a_durable_call_is_acked_once_stored_then_answered(serve: Any) -> None:
    """The ack says the call is stored (pending); the terminal carries the result; the
    function saw attempt 1 and the caller-scoped idempotency key; the call ends
    succeeded and delivered."""
    url, gateway = await serve()
    async with Caller(url) as alice:
        await alice.push("r1", "signup", "welcome", {"email": "a@x.io", "fail_times": 0})
        ack = await alice.ack("r1")
        assert ack["success"] and ack["async"]
        assert ack["result"]["durable"] == "stored"
        assert ack["result"]["state"] == "pending" and not ack["result"]["duplicate"]
        terminal = await alice.terminal("r1")
        assert terminal["success"] and not terminal["async"]
        assert terminal["result"] == {"sent_to": "a@x.io", "attempt": 1, "key": "alice:r:r1"}
        assert ack["result"]["call_id"] == (await stored(gateway, "r1")).id

        async def delivered() -> bool:
            call = await stored(gateway, "r1")
            return call.state is CallState.SUCCEEDED and call.delivered_at is not None

        await until(delivered)
        assert len(alice.pushes["r1"]) == 2
        assert runs_of("a@x.io") == [1]


async def test_the_python_client_waits_past_the_ack_for_the_result(serve: Any) -> None:
    """genapi.Client.call of a durable function returns the final result, not the ack
    (which carries the stored call's details)."""
    import genapi

    url, _ = await serve()
    socket = url.replace("http", "ws", 1) + "/socket"
    async with genapi.Client(socket, params={"user_id": "dora"}) as client:
        result = await client.call("signup", "welcome", {"email": "y@x.io", "fail_times": 1})
        assert result == {"sent_to": "y@x.io", "attempt": 2, "key": result["key"]}
        assert result["key"].startswith("dora:r:")
        with pytest.raises(genapi.ApiError, match="No such customer"):
            await client.call("signup", "refuse", {"email": "z@x.io"})


async def test_failures_are_retried_with_backoff_until_success(serve: Any) -> None:
    """An unexpected exception is retried (with the function's backoff): attempts 1, 2, 3
    run with the same key, and the caller gets one terminal, the success."""
    url, _gateway = await serve()
    async with Caller(url) as alice:
        await alice.push("r1", "signup", "welcome", {"email": "b@x.io", "fail_times": 2})
        terminal = await alice.terminal("r1")
        assert terminal["success"] and terminal["result"]["attempt"] == 3
        assert runs_of("b@x.io") == [1, 2, 3]
        assert {key for _, _, key in RUNS} == {"alice:r:r1"}
        await asyncio.sleep(0.3)
        assert len(alice.terminals("r1")) == 1


async def test_out_of_attempts_the_call_is_dead_and_the_caller_told(serve: Any) -> None:
    """After max_attempts failures the call is dead: the caller gets one error (masked,
    not retryable), the operator sees the real error."""
    url, gateway = await serve()
    async with Caller(url) as alice:
        await alice.push("r1", "signup", "welcome", {"email": "c@x.io", "fail_times": 9})
        terminal = await alice.terminal("r1")
        assert not terminal["success"]
        assert terminal["error"] == "Internal Server Error" and not terminal["can_retry"]
        call = await stored(gateway, "r1")
        assert call.state is CallState.DEAD and call.attempts == 3
        assert "RuntimeError('smtp down (attempt 3)')" in (call.last_error or "")
        assert runs_of("c@x.io") == [1, 2, 3]


async def test_a_business_error_ends_the_call_at_once(serve: Any) -> None:
    """An ApiError without can_retry is a refusal: dead after one attempt, its message
    shown; one with can_retry is retried until the attempts run out."""
    url, _gateway = await serve()
    async with Caller(url) as alice:
        await alice.push("r1", "signup", "refuse", {"email": "d@x.io"})
        terminal = await alice.terminal("r1")
        assert terminal["error"] == "No such customer"
        assert runs_of("d@x.io") == [1]
        await alice.push("r2", "signup", "unavailable", {"email": "e@x.io"})
        terminal = await alice.terminal("r2")
        assert terminal["error"] == "Mail server busy"
        assert runs_of("e@x.io") == [1, 2, 3, 4, 5]


async def test_a_duplicate_submission_runs_once(serve: Any) -> None:
    """The same request id twice (and the same client key under two request ids) is one
    call: the second ack says duplicate with the stored state, and once the call has
    finished a resubmission gets its terminal again, without running it."""
    url, _gateway = await serve()
    async with Caller(url) as alice:
        GATES["g"] = asyncio.Event()
        await alice.push("r1", "signup", "gated", {"name": "g"})
        await alice.ack("r1")
        await alice.wait_for(lambda: runs_of("g") == [1])
        await alice.push("r1", "signup", "gated", {"name": "g"})
        await alice.wait_for(lambda: len(alice.acks("r1")) == 2)
        second = alice.acks("r1")[1]["result"]
        assert second["duplicate"] and second["state"] == "running"
        GATES["g"].set()
        await alice.terminal("r1")
        await alice.push("r1", "signup", "gated", {"name": "g"})
        await alice.wait_for(lambda: len(alice.terminals("r1")) == 2)
        assert alice.acks("r1")[2]["result"]["state"] == "succeeded"
        assert runs_of("g") == [1]

        for rid in ("k1", "k2"):
            await alice.push(rid, "signup", "welcome", {"email": "f@x.io", "fail_times": 0},
                             idempotency_key="order-42")
        await alice.terminal("k1")
        await alice.ack("k2")
        assert runs_of("f@x.io") == [1]
        assert alice.acks("k2")[0]["result"]["duplicate"]


async def test_a_key_of_another_caller_or_function_is_refused(serve: Any) -> None:
    """A key already naming another function's call is refused and nothing runs; keys
    are scoped per caller, so another user's same key is another call."""
    url, _gateway = await serve()
    async with Caller(url) as alice, Caller(url, "bob") as bob:
        await alice.push("r1", "signup", "welcome", {"email": "g@x.io", "fail_times": 0},
                         idempotency_key="k")
        await alice.terminal("r1")
        answer = await alice.call("r2", "signup", "refuse", {"email": "h@x.io"},
                                  idempotency_key="k")
        assert answer["error"] == "Idempotency key already used by another call"
        await bob.push("r1", "signup", "welcome", {"email": "i@x.io", "fail_times": 0},
                       idempotency_key="k")
        assert (await bob.terminal("r1"))["result"]["key"] == "bob:k:k"
        assert runs_of("h@x.io") == [] and runs_of("i@x.io") == [1]
        long_key = await alice.call("r3", "signup", "welcome",
                                    {"email": "j@x.io", "fail_times": 0},
                                    idempotency_key="x" * 256)
        assert long_key["error"].startswith("Invalid request: idempotency_key")


async def test_anonymous_callers_get_their_results_live_and_never_share(serve: Any) -> None:
    """Anonymous callers have no default key (the same request id from two of them is two
    calls, each answered on its own socket; the function sees the call id as its key)."""
    url, _gateway = await serve()
    async with Caller(url, None) as one, Caller(url, None) as two:
        for caller, email in ((one, "p@x.io"), (two, "q@x.io")):
            await caller.push("r1", "signup", "welcome", {"email": email, "fail_times": 0})
        first, second = await one.terminal("r1"), await two.terminal("r1")
        assert first["result"]["sent_to"] == "p@x.io"
        assert second["result"]["sent_to"] == "q@x.io"
        assert first["result"]["key"] == (await one.ack("r1"))["result"]["call_id"]
        answer = await one.call("g1", "durable", "get_result", {"request_id": "r1"})
        assert answer["error"] == "Authentication required"


async def test_results_wait_for_the_caller_and_arrive_once_on_join(serve: Any) -> None:
    """A caller who left before the call finished gets its terminal when they join again
    (once: a second reconnection gets nothing more), on any gateway topic."""
    url, gateway = await serve()
    async with Caller(url) as alice:
        GATES["late"] = asyncio.Event()
        await alice.push("r1", "signup", "gated", {"name": "late"})
        await alice.ack("r1")
        await alice.wait_for(lambda: runs_of("late") == [1])
    GATES["late"].set()

    async def finished() -> bool:
        return (await stored(gateway, "r1")).state is CallState.SUCCEEDED

    await until(finished)
    assert (await stored(gateway, "r1")).delivered_at is None
    async with Caller(url, topic="api:elsewhere") as again:
        assert (await again.terminal("r1"))["result"] == {"name": "late", "attempt": 1}
        await asyncio.sleep(0.5)  # a sweep or two: nothing more
        assert len(again.pushes["r1"]) == 1
    async with Caller(url) as third:
        await asyncio.sleep(0.5)
        assert third.pushes == {}


async def test_get_result_and_pending(serve: Any) -> None:
    """durable.get_result shows the caller's own call (not another's) and counts as its
    delivery; durable.pending lists the unfinished ones."""
    url, _gateway = await serve()
    async with Caller(url) as alice, Caller(url, "bob") as bob:
        GATES["p"] = asyncio.Event()
        await alice.push("r1", "signup", "gated", {"name": "p"})
        await alice.ack("r1")
        listed = (await alice.call("q1", "durable", "pending"))["result"]["calls"]
        assert [c["request_id"] for c in listed] == ["r1"]
        assert (await bob.call("q2", "durable", "pending"))["result"]["calls"] == []
        GATES["p"].set()
        await alice.terminal("r1")
        got = (await alice.call("q3", "durable", "get_result", {"request_id": "r1"}))["result"]
        assert got["found"] and got["state"] == "succeeded"
        assert got["result"] == {"name": "p", "attempt": 1} and got["error"] is None
        theirs = await bob.call("q4", "durable", "get_result", {"request_id": "r1"})
        assert theirs["result"]["found"] is False
        nothing = await alice.call("q5", "durable", "get_result", {})
        assert nothing["error"].startswith("Missing required argument")


async def test_cancel_pending_and_running_calls_over_the_admin_api(serve: Any) -> None:
    """An operator cancels a pending call (it never runs) and a running one (stopped at
    once on this gateway); the caller gets "Cancelled" for each; cancelling a finished
    call is a 409; retrying the cancelled one runs it."""
    url, _gateway = await serve(run_workers=False)
    async with Caller(url) as alice, httpx.AsyncClient(base_url=url, headers=AUTH) as admin:
        await alice.push("r1", "signup", "welcome", {"email": "k@x.io", "fail_times": 0})
        ack = (await alice.ack("r1"))["result"]
        answer = await admin.post(f"/admin/jobs/{ack['call_id']}/cancel")
        assert answer.status_code == 200 and answer.json()["state"] == "cancelled"
        assert (await alice.terminal("r1"))["error"] == "Cancelled"
        assert (await admin.post(f"/admin/jobs/{ack['call_id']}/cancel")).status_code == 200
        assert runs_of("k@x.io") == []
    url2, gateway2 = await serve(run_workers=True)
    async with Caller(url2) as alice, httpx.AsyncClient(base_url=url2, headers=AUTH) as admin:
        GATES["c"] = asyncio.Event()
        await alice.push("r2", "signup", "gated", {"name": "c"})
        ack = (await alice.ack("r2"))["result"]
        await alice.wait_for(lambda: runs_of("c") == [1])
        answer = await admin.post(f"/admin/jobs/{ack['call_id']}/cancel")
        assert answer.status_code == 200
        assert (await alice.terminal("r2"))["error"] == "Cancelled"
        assert (await stored(gateway2, "r2")).state is CallState.CANCELLED
        GATES["c"].set()
        retried = await admin.post(f"/admin/jobs/{ack['call_id']}/retry")
        assert retried.status_code == 200 and retried.json()["attempts"] == 0
        await alice.wait_for(lambda: len(alice.terminals("r2")) == 2)
        assert alice.terminals("r2")[1]["result"] == {"name": "c", "attempt": 1}
        assert (await admin.post(f"/admin/jobs/{ack['call_id']}/cancel")).status_code == 409


async def test_the_admin_jobs_api(serve: Any) -> None:
    """/admin/jobs lists, filters, pages and shows calls, counts them, purges finished
    ones; it needs the token, and writes need manage_durable."""
    url, gateway = await serve()
    async with Caller(url) as alice, httpx.AsyncClient(base_url=url, headers=AUTH) as admin:
        for i in range(3):
            await alice.push(f"r{i}", "signup", "welcome",
                             {"email": f"l{i}@x.io", "fail_times": 0})
        await alice.push("bad", "signup", "refuse", {"email": "m@x.io"})
        for rid in ("r0", "r1", "r2", "bad"):
            await alice.terminal(rid)
        page = (await admin.get("/admin/jobs", params={"limit": 2})).json()
        assert [c["request_id"] for c in page["calls"]] == ["bad", "r2"]
        rest = (await admin.get("/admin/jobs", params={"before": page["next"]})).json()
        assert [c["request_id"] for c in rest["calls"]] == ["r1", "r0"]
        dead = (await admin.get("/admin/jobs", params={"state": "dead"})).json()["calls"]
        assert [c["request_id"] for c in dead] == ["bad"]
        assert dead[0]["last_error"] == "No such customer"
        assert (await admin.get("/admin/jobs", params={"state": "nope"})).status_code == 400
        shown = (await admin.get(f"/admin/jobs/{dead[0]['id']}")).json()
        assert shown["args"] == {"email": "m@x.io"} and shown["user_id"] == "alice"
        assert (await admin.get("/admin/jobs/nope")).status_code == 404
        counts = (await admin.get("/admin/jobs/counts")).json()
        assert counts["by_state"]["succeeded"] == 3 and counts["by_state"]["dead"] == 1
        assert (await admin.post("/admin/jobs/purge",
                                 params={"older_than_s": "x"})).status_code == 400
        purged = await admin.post("/admin/jobs/purge", params={"older_than_s": 0})
        assert purged.json() == {"purged": 4}
        assert (await admin.get("/admin/jobs")).json()["calls"] == []
        stats = gateway.durable.queue_stats() if gateway.durable else {}
        assert set(stats) >= {"pending", "running", "dead", "oldest_due_age_s", "running_here"}
    async with httpx.AsyncClient(base_url=url) as anonymous:
        assert (await anonymous.get("/admin/jobs")).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert (await anonymous.post("/admin/jobs/purge", headers=wrong)).status_code == 401


async def test_writes_need_manage_durable(store_url: str, backend: str) -> None:
    """With the token but a gate without manage_durable, reads work and writes are 403."""
    from genapi import AdminSettings

    gateway = durable_gateway(store_url, backend=backend)
    gateway_plain = Gateway(
        [Service("x")], admin=AdminSettings(token=ADMIN_TOKEN), durable=gateway.durable.settings
        if gateway.durable else None)
    async with running_app(gateway_plain) as url, httpx.AsyncClient(
            base_url=url, headers=AUTH) as admin:
        await until(lambda: _ready(gateway_plain))
        assert (await admin.get("/admin/jobs")).status_code == 200
        answer = await admin.post("/admin/jobs/purge")
        assert answer.status_code == 403 and "manage_durable" in answer.json()["error"]


async def _ready(gateway: Gateway) -> bool:
    return gateway.durable is not None and gateway.durable.ready


async def test_fire_and_forget_durable_calls_run_and_answer_nothing(serve: Any) -> None:
    """A durable "none" function is stored (no ack, an ok reply), runs, and nothing is
    pushed to the caller then or on a later join."""
    url, gateway = await serve()
    async with Caller(url) as alice:
        ref = await alice.push("r1", "signup", "audit", {"event": "signed-up"})
        await alice.wait_for(lambda: ref in alice.replies)
        assert alice.replies[ref]["status"] == "ok"
        await alice.wait_for(lambda: runs_of("signed-up") == [1])

        async def marked() -> bool:
            return (await stored(gateway, "r1")).delivered_at is not None

        await until(marked)
    async with Caller(url) as again:
        await asyncio.sleep(0.4)
        assert again.pushes == {}


async def test_over_http_the_ack_is_the_answer(serve: Any) -> None:
    """POST /api answers 202 with the ack once stored (not waiting for the run); the
    Idempotency-Key header names the call."""
    url, gateway = await serve()
    headers = {"Authorization": "Bearer carol", "Idempotency-Key": "signup-7"}
    async with httpx.AsyncClient(base_url=url) as http:
        body = {"email": "n@x.io", "fail_times": 0}
        first = await http.post("/api/signup/welcome", json=body, headers=headers)
        second = await http.post("/api/signup/welcome", json=body, headers=headers)
        assert first.status_code == second.status_code == 202
        assert first.json()["result"]["durable"] == "stored"
        assert second.json()["result"]["duplicate"] is True
        assert first.json()["result"]["call_id"] == second.json()["result"]["call_id"]
        too_long = {**headers, "Idempotency-Key": "k" * 300}
        refused = await http.post("/api/signup/welcome", json=body, headers=too_long)
        assert refused.status_code == 400
    assert gateway.durable is not None
    await until(lambda: _succeeded(gateway, "carol:k:signup-7"))
    assert runs_of("n@x.io") == [1]


async def _succeeded(gateway: Gateway, key: str) -> bool:
    assert gateway.durable is not None
    call = await gateway.durable.store.get_by_key(key)
    return call is not None and call.state is CallState.SUCCEEDED


async def test_a_restart_drains_running_calls_back_into_the_queue(serve: Any,
                                                                  store_url: str,
                                                                  backend: str) -> None:
    """A gateway stopping with a call still running puts it back at once ("Server
    shutting down", the attempt counted); the next gateway runs it to the end."""
    url, gateway = await serve()
    async with Caller(url) as alice:
        GATES["d"] = asyncio.Event()
        await alice.push("r1", "signup", "gated", {"name": "d"})
        await alice.wait_for(lambda: runs_of("d") == [1])
    assert gateway.durable is not None
    await gateway.durable.aclose(timeout=0.2)
    reopened = durable_gateway(store_url, backend=backend)
    assert reopened.durable is not None
    await reopened.durable.start()
    try:
        call = await stored(reopened, "r1")
        assert call.last_error == "Server shutting down"
        GATES["d"].set()
        await until(lambda: _succeeded(reopened, "alice:r:r1"))
        assert runs_of("d") == [1, 2]
    finally:
        await reopened.durable.aclose()


async def test_without_a_store_a_durable_function_is_refused() -> None:
    """An executor with no durable store answers durable calls with a clear error, and
    never runs them."""
    from durable_app import signup

    registry = Registry()
    registry.add_service(signup)
    executor = Executor(registry)
    response = await executor.execute(Request(
        request_id="r1", service="signup", request_type="audit", args={"event": "x"}))
    assert response is not None and not response.success
    assert response.error == "Durable calls unavailable: this gateway has no durable store"
    assert RUNS == []
    await executor.aclose()


async def test_many_calls_each_run_once_and_answered_once(serve: Any) -> None:
    """A burst of calls from two callers: each runs once and each caller gets exactly one
    terminal per call."""
    url, _gateway = await serve()
    async with Caller(url) as alice, Caller(url, "bob") as bob:
        for i in range(60):
            for caller in (alice, bob):
                await caller.push(f"r{i}", "signup", "welcome",
                                  {"email": "many@x.io", "fail_times": 0,
                                   "tag": f"{caller.ws_url[-5:]}-{i}"})
        for caller in (alice, bob):
            await caller.wait_for(
                lambda c=caller: all(len(c.terminals(f"r{i}")) == 1 for i in range(60)), 30)
        await asyncio.sleep(0.3)
        for caller in (alice, bob):
            assert all(len(caller.terminals(f"r{i}")) == 1 for i in range(60))
    counted = collections.Counter(rid for rid, _, _ in RUNS)
    assert len(counted) == 120 and set(counted.values()) == {1}
