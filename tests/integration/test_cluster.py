"""Service nodes over a real nats-server: calls, streams, cancellation, config push and
pull, fail-over, outages, draining."""

from __future__ import annotations

import asyncio
import functools
import signal
from typing import Any

import pytest

from genapi import Gateway, Request, Response, ServiceConfig
from genapi.cluster.embedded import EmbeddedNats
from genapi.cluster.node import Node
from genapi.gateway import ClusterOptions
from genapi.security import AdminAction, AdminGate
from tests.integration import cluster_app
from tests.integration.conftest import TOKEN, Nodes, wait_for

pytestmark = pytest.mark.integration


def req(rt: str, rid: str = "r1", **args: Any) -> Request:
    return Request(request_id=rid, service="data_service", request_type=rt, args=args)


def served(gateway: Gateway, *names: str) -> bool:
    assert gateway.cluster is not None
    return (gateway.registry.get_route("data_service", "get_data") is not None
            and all(gateway.cluster.directory.alive(n) for n in names)
            and set(names) <= set(gateway.cluster.directory.nodes_for("data_service")))


class Sink:
    def __init__(self) -> None:
        self.responses: list[Response] = []

    async def __call__(self, response: Response) -> None:
        self.responses.append(response)

    def ended(self) -> bool:
        return any(not (r.success and r.has_more) for r in self.responses)


async def test_remote_sync_async_and_stream(gateway: Gateway, nodes: Nodes) -> None:
    """Node processes serve sync, async and stream calls through the gateway."""
    nodes.start("n1")
    nodes.start("n2")
    await wait_for(lambda: served(gateway, "n1", "n2"))
    seen = set()
    for i in range(20):
        response = await gateway.executor.execute(req("get_data", str(i), key="k"))
        assert response is not None and response.success, response
        seen.add(response.result["node"])
    assert seen == {"n1", "n2"}

    sink = Sink()
    assert await gateway.executor.execute(req("export", rows=5), sink) == Response.async_ack("r1")
    await wait_for(lambda: sink.responses)
    assert sink.responses[0].result["rows"] == 5
    assert sink.responses[0].async_ is False

    stream = Sink()
    assert await gateway.executor.execute(req("ticks", count=50), stream) == (
        Response.stream_init("r1"))
    await wait_for(stream.ended)
    assert [r.result for r in stream.responses[:-1]] == list(range(50))
    assert stream.responses[-1] == Response.stream_end("r1")


async def test_dependencies_run_and_are_cleaned_up_on_the_node(
    gateway: Gateway, nodes: Nodes
) -> None:
    """A Depends parameter is resolved by the node running the call (it sees the node's
    CallContext) and cleaned up there after the call."""
    nodes.start("n1")
    await wait_for(lambda: served(gateway, "n1"))
    first = await gateway.executor.execute(req("with_session", key="a"))
    second = await gateway.executor.execute(req("with_session", "r2", key="b"))
    assert first is not None and second is not None
    assert first.result == {"key": "a", "node": "n1", "closed_before": 0}
    assert second.result == {"key": "b", "node": "n1", "closed_before": 1}


async def test_errors_are_carried_not_retried_and_unencodable_results_fail(
    gateway: Gateway, nodes: Nodes
) -> None:
    """A node's ApiError reaches the client once; an unencodable result is a clear error."""
    nodes.start("n1")
    await wait_for(lambda: served(gateway, "n1"))
    refused = await gateway.executor.execute(req("refuse", key="x"))
    assert refused == Response.fail("r1", "no such key: x")
    broken = await gateway.executor.execute(req("unencodable"))
    assert broken == Response.fail("r1", "Internal Server Error")


async def test_cancel_reaches_the_node(gateway: Gateway, nodes: Nodes) -> None:
    """Cancelling a remote stream ends it with one 'Cancelled' and stops the node's chunks."""
    nodes.start("n1")
    await wait_for(lambda: served(gateway, "n1"))
    sink = Sink()
    await gateway.executor.execute(req("ticks", count=100_000, interval_ms=10), sink)
    await wait_for(lambda: len(sink.responses) > 3)
    assert gateway.executor.cancel("r1") == 1
    await wait_for(sink.ended)
    await asyncio.sleep(0.3)
    ended = [r for r in sink.responses if not (r.success and r.has_more)]
    assert ended == [Response.fail("r1", "Cancelled")]
    assert sink.responses[-1] == ended[0]


def started(sink: Sink) -> bool:
    return len(sink.responses) > 3


async def test_two_gateways_cancel_only_their_own_call(
    gateway: Gateway, nodes: Nodes, nats_server: EmbeddedNats
) -> None:
    """Two gateways run streams with the same request id on one node; cancelling on one
    ends only its own (the node tells gateways' calls apart)."""
    nodes.start("n1")
    other = Gateway(cluster=ClusterOptions(nats=nats_server.url, push_token=TOKEN),
                    admin=AdminGate({AdminAction.PUSH_CONFIG}))
    async with other.running():
        await wait_for(lambda: served(gateway, "n1") and served(other, "n1"))
        mine, theirs = Sink(), Sink()
        # One after the other: were the node to confuse them, the later would be cancelled.
        for gw, sink in ((gateway, mine), (other, theirs)):
            await gw.executor.execute(req("ticks", count=100_000, interval_ms=10), sink)
            await wait_for(functools.partial(started, sink))
        assert gateway.executor.cancel("r1") == 1
        await wait_for(mine.ended)
        before = len(theirs.responses)
        await wait_for(lambda: len(theirs.responses) > before + 5)
        assert not theirs.ended()
        assert other.executor.cancel("r1") == 1
        await wait_for(theirs.ended)


async def test_push_with_good_and_bad_tokens_and_verify(
    gateway: Gateway, nats_server: EmbeddedNats
) -> None:
    """Pushes with a wrong token are rejected; verify answers matched/mismatch/not_found."""
    intruder = Node([cluster_app.data_service], nats=nats_server.url, name="bad",
                    push_token="wrong", push_wait=0.5)
    await intruder.start()
    try:
        results = await intruder.push("data_service")
        assert [(r.status, r.reasons) for r in results] == [("rejected", ["invalid push token"])]
        assert gateway.registry.get_route("data_service", "get_data") is None
        assert [r.status for r in await intruder.verify("data_service")] == ["not_found"]
    finally:
        await intruder.drain()

    good = Node([cluster_app.data_service], nats=nats_server.url, name="good", push_token=TOKEN)
    await good.start()
    try:
        assert gateway.registry.get_route("data_service", "get_data") is not None
        assert [r.status for r in await good.verify("data_service")] == ["matched"]
        assert [r.status for r in await good.push("data_service")] == ["skipped"]
        assert gateway.cluster is not None
        gateway.cluster.sync.versions["data_service"] = "older"
        verify = await good.verify("data_service")
        assert [(r.status, r.stored_version) for r in verify] == [("mismatch", "older")]
        assert [r.status for r in await good.push("data_service")] == ["accepted"]
    finally:
        await good.drain()


async def test_pull_with_version_skip(gateway: Gateway, nodes: Nodes) -> None:
    """A gateway pulls a service from a node; an unchanged version skips the full pull."""
    nodes.start("puller-source", token="not-the-token")  # its pushes are refused
    assert gateway.cluster is not None
    await wait_for(lambda: gateway.cluster.directory.alive("puller-source"))  # type: ignore[union-attr]
    assert gateway.registry.get_route("data_service", "get_data") is None
    config = ServiceConfig(service="data_service", nodes=["puller-source"])
    assert await gateway.cluster.sync.pull(config) == "applied"
    assert gateway.registry.get_route("data_service", "get_data") is not None
    assert await gateway.cluster.sync.pull(config) == "skipped"
    response = await gateway.executor.execute(req("get_data", key="p"))
    assert response is not None and response.result["node"] == "puller-source"
    failing = ServiceConfig(service="data_service", nodes=["nobody"])
    gateway.cluster.sync.versions.pop("data_service")
    assert await gateway.cluster.sync.pull(failing) == "failed"
    assert gateway.cluster.sync.failed.count() == 1


async def test_node_killed_during_a_run(gateway: Gateway, nodes: Nodes) -> None:
    """SIGKILL one of two nodes during 2,000 calls with retry=3: every call gets exactly one
    terminal response, none is lost."""
    nodes.start("k1")
    victim = nodes.start("k2")
    await wait_for(lambda: served(gateway, "k1", "k2"))
    answers: dict[str, list[Response]] = {}
    counter = iter(range(2000))

    async def worker() -> None:
        for i in counter:
            rid = f"c{i}"
            if i == 400:
                victim.send_signal(signal.SIGKILL)
            response = await gateway.executor.execute(req("get_data", rid, key=str(i)))
            assert response is not None
            answers.setdefault(rid, []).append(response)

    await asyncio.gather(*(worker() for _ in range(40)))
    assert len(answers) == 2000
    assert all(len(responses) == 1 for responses in answers.values())
    failures = [r[0] for r in answers.values() if not r[0].success]
    assert all(f.can_retry for f in failures)
    assert len(failures) < 20  # fail-over and retries absorb the loss of a node


async def test_nats_restart_mid_run(gateway: Gateway, nodes: Nodes,
                                    nats_server: EmbeddedNats) -> None:
    """During a NATS outage calls fail fast with can_retry; afterwards they succeed."""
    nodes.start("r1")
    await wait_for(lambda: served(gateway, "r1"))
    nats_server.stop()
    outage = await gateway.executor.execute(req("slow", ms=0))
    assert outage is not None
    assert outage.success is False
    assert outage.can_retry is True
    nats_server.start()

    async def recovered() -> bool:
        response = await gateway.executor.execute(req("slow", ms=0))
        return response is not None and response.success

    async with asyncio.timeout(20):
        while not await recovered():
            await asyncio.sleep(0.2)


async def test_node_drains_on_sigterm(gateway: Gateway, nodes: Nodes) -> None:
    """A node receiving SIGTERM finishes in-flight calls, leaves, and exits cleanly."""
    process = nodes.start("d1")
    await wait_for(lambda: served(gateway, "d1"))
    call = asyncio.create_task(gateway.executor.execute(req("slow", ms=600)))
    await asyncio.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    response = await call
    assert response is not None and response.result == {"slept": 600, "node": "d1"}
    assert await asyncio.to_thread(process.wait, 15) == 0
    assert gateway.cluster is not None
    await wait_for(lambda: not gateway.cluster.directory.alive("d1"))  # type: ignore[union-attr]
    after = await gateway.executor.execute(req("get_data", key="x"))
    assert after == Response.fail("r1", "Service temporarily unavailable", can_retry=True)




async def test_stream_flow_control_pauses_the_node(nats_server: EmbeddedNats) -> None:
    """A node stops sending when the gateway holds `window` unacknowledged chunks."""
    from genapi import AdminGate, ClusterOptions

    gateway = Gateway(cluster=ClusterOptions(nats=nats_server.url, push_token=TOKEN,
                                             stream_window=4),
                      admin=AdminGate({"push_config"}))
    node = Node([cluster_app.data_service], nats=nats_server.url, name="flow",
                push_token=TOKEN)
    release = asyncio.Event()
    received: list[Response] = []

    async def slow_sink(response: Response) -> None:
        received.append(response)
        if len(received) >= 2:
            await release.wait()  # the client stops reading

    async with gateway.running():
        assert gateway.cluster is not None
        await gateway.cluster.ready(15)
        await node.start()
        try:
            await wait_for(lambda: served(gateway, "flow"))
            await gateway.executor.execute(req("ticks", count=1000, interval_ms=0), slow_sink)
            await asyncio.sleep(0.5)
            [flow] = node._flows.values()
            task = next(iter(node._tasks.values()))
            assert not task.done()  # paused, not finished
            assert flow.acked <= 2
            release.set()
            await wait_for(lambda: any(not r.has_more for r in received))
            assert [r.result for r in received[:-1]] == list(range(1000))
        finally:
            await node.drain()


async def test_a_node_starts_before_any_gateway() -> None:
    """With no gateway listening, the push gets "no responders": the node still serves."""
    with EmbeddedNats(jetstream=False) as nats:
        node = Node([cluster_app.data_service], nats=nats.url, name="early",
                    push_token=TOKEN, push_wait=0.2)
        await node.start()
        try:
            assert await node.push("data_service") == []
            assert await node.verify("data_service") == []
        finally:
            await node.drain()


async def test_a_node_checks_the_callable_again_before_each_call(
        gateway: Gateway, nats_server: EmbeddedNats) -> None:
    """The deny list is checked at dispatch too: a function swapped for a denied callable
    after registration (a monkeypatch, a plugin) is refused, never run."""
    ran: list[str] = []

    async def sneaky(key: str) -> str:
        ran.append(key)
        return "ran"

    sneaky.__module__ = "os"  # what the deny list looks at

    node = Node([cluster_app.data_service], nats=nats_server.url, name="strict",
                push_token=TOKEN)
    await node.start()
    try:
        await wait_for(lambda: served(gateway, "strict"))
        route = node.registry.get_route("data_service", "refuse")
        assert route is not None
        route.function = sneaky  # swapped in after the registration-time check
        response = await gateway.executor.execute(req("refuse", key="k"))
        assert response == Response.fail("r1", "Internal Server Error")
        assert ran == []
    finally:
        await node.drain()
