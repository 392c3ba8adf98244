"""Gateway faults with real processes: a SIGTERM drain, request ids reused by a client."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.support.fault_app import ADMIN_TOKEN
from tests.support.faults import FaultCluster, Recorder, started, verdict

pytestmark = pytest.mark.integration


async def test_gateway_sigterm_answers_every_call_in_flight() -> None:
    """On SIGTERM the gateway lets calls shorter than its drain finish, answers the longer
    ones 'Server shutting down' (retryable), sync, async and stream alike, local and remote,
    and only then closes the socket with 1012."""
    with FaultCluster(gateway_drain=2.0) as cluster, started(cluster):
        await cluster.wait_serving("a", "b")
        async with Recorder(cluster.url) as recorder:
            for length, ms in (("short", 500), ("long", 6000)):
                for i in range(3):
                    await recorder.call("slow", "sync", {"ms": ms}, request_id=f"{length}-slow-{i}")
                    await recorder.call("work", "async", {"ms": ms},
                                        request_id=f"{length}-work-{i}")
                    await recorder.call("ticks", "stream", {"count": ms // 100, "interval_ms": 100},
                                        request_id=f"{length}-ticks-{i}", timeout=None)
                    await recorder.call("slow_local", "sync", {"ms": ms}, service="local",
                                        request_id=f"{length}-local-{i}")
                    await recorder.call("work_local", "async", {"ms": ms}, service="local",
                                        request_id=f"{length}-work_local-{i}")
                    await recorder.call("ticks_local", "stream",
                                        {"count": ms // 100, "interval_ms": 100},
                                        service="local", request_id=f"{length}-ticks_local-{i}",
                                        timeout=None)
            await asyncio.sleep(0.3)
            assert cluster.gateway is not None
            cluster.gateway.signal(15)
            await recorder.settle(time.monotonic() + 15)
            assert cluster.gateway.wait(15) == 0
            await asyncio.sleep(0.2)
            close_code = recorder.close_code
        records = list(recorder.records.values())
    v = verdict(records)
    assert (v.lost, v.duplicated, v.late) == (0, 0, 0), v.line()
    short = [r for r in records if r.request_id.startswith("short")]
    long = [r for r in records if r.request_id.startswith("long")]
    assert all(r.terminals()[0][1]["success"] for r in short)
    assert {(r.terminals()[0][1]["error"], r.terminals()[0][1]["can_retry"]) for r in long} == {
        ("Server shutting down", True)}
    assert close_code == 1012


async def test_reused_request_ids_are_all_tracked_and_cancelled_on_disconnect() -> None:
    """A client reusing a request id while calls with it run: every call counts in flight,
    and all of them stop when the client goes."""
    with FaultCluster() as cluster, started(cluster, nodes=()):
        await cluster.wait_serving()
        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with httpx.AsyncClient(base_url=cluster.url, headers=auth) as http:
            recorder = Recorder(cluster.url)
            await recorder.__aenter__()
            args = {"ms": 4000}
            await recorder.call("slow_local", "sync", args, service="local", request_id="a")
            await recorder.call("slow_local", "sync", {"ms": 100}, service="local",
                                request_id="b")
            await recorder.call("slow_local", "sync", args, service="local", request_id="a")
            await recorder.settle(time.monotonic() + 2)  # b answered; the two a's run
            await recorder.call("slow_local", "sync", args, service="local", request_id="a")
            await asyncio.sleep(0.3)
            open_ = (await http.get("/admin/connections")).json()["open"]
            assert [c["inflight"] for c in open_] == [3]
            await recorder.close()
            async with Recorder(cluster.url) as probe:
                deadline = time.monotonic() + 3
                while True:
                    rid = await probe.call("running", "sync", {}, service="local")
                    await probe.settle(time.monotonic() + 2)
                    if probe.records[rid].terminals()[0][1]["result"] == []:
                        break
                    assert time.monotonic() < deadline, "calls kept running after disconnect"
                    await asyncio.sleep(0.1)


async def test_cancel_by_a_reused_id_ends_every_call_with_it() -> None:
    """Cancelling an id ends all of the client's running calls with that id, sync and async
    alike, each with one 'Cancelled'."""
    with FaultCluster() as cluster, started(cluster, nodes=()):
        await cluster.wait_serving()
        async with Recorder(cluster.url) as recorder:
            for kind, name in (("sync", "slow_local"), ("sync", "slow_local"),
                               ("async", "work_local"), ("async", "work_local")):
                recorder.records.pop("x", None)
                await recorder.call(name, kind, {"ms": 5000}, service="local", request_id="x")
            await asyncio.sleep(0.3)
            await recorder.send_push("99", {"request_id": "x"}, event="cancel")
            await asyncio.sleep(0.5)
            responses = [r for _, r in recorder.records["x"].responses]
    errors = [r["error"] for r in responses if not r["success"]]
    assert errors == ["Cancelled"] * 4
