"""Remote calls through the fake multi-node transport: selection, fallback, retries,
breakers."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

from genapi import (
    ApiError,
    Executor,
    FunConfig,
    InternalError,
    NodeLost,
    Registry,
    Request,
    Response,
    TransportUnavailable,
)
from genapi.execution.breaker import BreakerSet, BreakerSettings
from genapi.execution.retry import Backoff
from genapi.execution.selection import NodeSelector
from genapi.telemetry.events import Telemetry
from genapi.transport import FakeNode, FakeTransport


async def answer(node: str, request: Request) -> Any:
    return {"node": node, "args": request.args}


def cluster(*names: str) -> FakeTransport:
    return FakeTransport(*(FakeNode(n, answer) for n in names))


def make(transport: FakeTransport, *configs: FunConfig, telemetry: Telemetry | None = None,
         threshold: int = 5) -> Executor:
    tel = telemetry or Telemetry()
    registry = Registry(telemetry=tel)
    for config in configs:
        registry.add(config)
    return Executor(
        registry, transport=transport, telemetry=tel, rng=random.Random(7),
        selector=NodeSelector(rng=random.Random(7)),
        backoff=Backoff(base_ms=1, cap_ms=5, jitter=0),
        node_breakers=BreakerSet(BreakerSettings(failure_threshold=threshold,
                                                 reset_timeout=60), telemetry=tel),
    )


def remote(nodes: Any, **options: Any) -> FunConfig:
    return FunConfig(service="data_service", request_type="get_data", nodes=nodes,
                     arg_types={"key": "string"}, **options)


def req(key: str = "k", rid: str = "r1") -> Request:
    return Request(request_id=rid, service="data_service", request_type="get_data",
                   args={"key": key})


async def test_remote_call_returns_the_node_result() -> None:
    """A remote function runs on a node and its result comes back."""
    transport = cluster("n1")
    response = await make(transport, remote(["n1"])).execute(req())
    assert response == Response.sync("r1", {"node": "n1", "args": {"key": "k"}})


async def test_hash_of_arg_is_stable_and_round_robin_cycles() -> None:
    """("hash", arg) keeps a value on one node; round_robin visits every node in turn."""
    transport = cluster("n1", "n2", "n3")
    executor = make(transport, remote(["n1", "n2", "n3"], choose_node_mode=("hash", "key")))
    nodes = {(await executor.execute(req("same", str(i)))).result["node"]  # type: ignore[union-attr]
             for i in range(10)}
    assert len(nodes) == 1
    rr = make(cluster("n1", "n2", "n3"), remote(["n1", "n2", "n3"],
                                                 choose_node_mode="round_robin"))
    seen = [(await rr.execute(req(rid=str(i)))).result["node"]  # type: ignore[union-attr]
            for i in range(4)]
    assert seen[3] == seen[0]
    assert sorted(seen[:3]) == ["n1", "n2", "n3"]


async def test_fallback_to_the_next_node_without_retry() -> None:
    """A node that cannot be reached is skipped even when no retry is configured."""
    transport = cluster("n1", "n2")
    transport.nodes["n1"].down = True
    executor = make(transport, remote(["n1", "n2"], choose_node_mode="round_robin"))
    for i in range(4):
        response = await executor.execute(req(rid=str(i)))
        assert response is not None and response.result["node"] == "n2"


async def test_all_nodes_down_without_retry() -> None:
    """With every node down and no retry, the client may retry later."""
    transport = cluster("n1", "n2")
    for node in transport.nodes.values():
        node.down = True
    response = await make(transport, remote(["n1", "n2"])).execute(req())
    assert response == Response.fail("r1", "Service temporarily unavailable", can_retry=True)


async def test_retry_recovers_and_emits_telemetry() -> None:
    """A flaky node is retried with growing backoff until it answers."""
    events: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    tel = Telemetry()
    tel.attach("t", "executor.retry*", lambda e, m, md: events.append((e, dict(m), dict(md))))
    transport = cluster("n1")
    transport.nodes["n1"].fail_next = 2
    executor = make(transport, remote(["n1"], retry=("same_node", 3)), telemetry=tel)
    response = await executor.execute(req())
    assert response is not None and response.result["node"] == "n1"
    assert [(e, m["attempt"], m["backoff_ms"]) for e, m, _ in events] == [
        ("executor.retry", 1, 1.0), ("executor.retry", 2, 2.0)]
    assert events[0][2]["mode"] == "same_node"


async def test_exhaustion() -> None:
    """When every attempt fails the client gets 'All retry attempts exhausted'."""
    events: list[str] = []
    tel = Telemetry()
    tel.attach("t", "executor.retry*", lambda e, m, md: events.append(e))
    transport = cluster("n1", "n2")
    for node in transport.nodes.values():
        node.down = True
    executor = make(transport, remote(["n1", "n2"], retry=2), telemetry=tel)
    response = await executor.execute(req())
    assert response == Response.fail("r1", "All retry attempts exhausted", can_retry=True)
    assert events == ["executor.retry", "executor.retry", "executor.retry.exhausted"]


async def test_business_errors_are_not_retried() -> None:
    """An error the function reports is final: no retry, no fallback."""

    async def refuse(node: str, request: Request) -> Any:
        raise ApiError("No such key")

    transport = FakeTransport(FakeNode("n1", refuse), FakeNode("n2", refuse))
    executor = make(transport, remote(["n1", "n2"], retry=3, choose_node_mode="round_robin"))
    response = await executor.execute(req())
    assert response == Response.fail("r1", "No such key")
    assert len(transport.nodes["n1"].calls) + len(transport.nodes["n2"].calls) == 1


async def test_timeouts_are_retried() -> None:
    """A node that does not answer in time is retried (here: on the other node)."""
    transport = cluster("n1", "n2")
    transport.nodes["n1"].delay = 1.0
    executor = make(transport, remote(["n1", "n2"], timeout=100, retry=("all_nodes", 1),
                                      choose_node_mode="round_robin"))
    results = [await executor.execute(req(rid=str(i))) for i in range(2)]
    assert all(r is not None and r.result["node"] == "n2" for r in results)


async def test_node_breaker_opens_and_the_node_goes_last() -> None:
    """After repeated failures a node's breaker opens and calls stop reaching it first."""
    transport = cluster("n1", "n2")
    transport.nodes["n1"].down = True
    executor = make(transport, remote(["n1", "n2"], choose_node_mode="round_robin"),
                    threshold=2)
    for i in range(6):
        await executor.execute(req(rid=str(i)))
    assert executor.breakers.get("n1").state == "open"
    transport.nodes["n1"].down = False
    before = len(transport.nodes["n1"].calls)
    for i in range(4):
        response = await executor.execute(req(rid=f"x{i}"))
        assert response is not None and response.result["node"] == "n2"
    assert len(transport.nodes["n1"].calls) == before
    assert executor.pool_status()["nodes"]["n1"].state == "open"


async def test_dynamic_node_lists() -> None:
    """nodes may be a callable resolved on every call; failures are reported cleanly."""
    current = ["n2"]
    transport = cluster("n1", "n2")
    executor = make(transport, remote(lambda: current))
    assert (await executor.execute(req())).result["node"] == "n2"  # type: ignore[union-attr]
    current = []
    response = await executor.execute(req())
    assert response == Response.fail("r1", "Service temporarily unavailable", can_retry=True)


async def test_remote_stream() -> None:
    """A remote stream's chunks arrive in order, then one terminator."""

    async def chunks(node: str, request: Request) -> AsyncIterator[Any]:
        for i in range(3):
            yield {"node": node, "i": i}

    transport = FakeTransport(FakeNode("n1", answer, chunks))
    config = FunConfig(service="data_service", request_type="get_data", nodes=["n1"],
                       response_type="stream", arg_types={"key": "string"})
    executor = make(transport, config)
    got: list[Response] = []

    async def sink(response: Response) -> None:
        got.append(response)

    assert await executor.execute(req(), sink) == Response.stream_init("r1")
    for _ in range(100):
        if got and got[-1].has_more is False:
            break
        await asyncio.sleep(0.01)
    assert [r.result for r in got] == [{"node": "n1", "i": i} for i in range(3)] + [None]


async def test_local_retry_on_timeout() -> None:
    """Local functions are retried too when they time out."""
    attempts: list[int] = []

    async def sometimes_slow() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            await asyncio.sleep(1)
        return "ok"

    registry = Registry(telemetry=Telemetry())
    registry.add(FunConfig(service="svc", request_type="f", function=sometimes_slow,
                           timeout=100, retry=1))
    executor = Executor(registry, backoff=Backoff(base_ms=1, jitter=0))
    response = await executor.execute(Request(request_id="r", service="svc", request_type="f"))
    assert response == Response.sync("r", "ok")
    assert len(attempts) == 2


async def test_no_exhausted_event_without_retries() -> None:
    """Without a retry policy a failed remote call emits neither retry nor exhausted
    events: there was nothing to exhaust (the client gets Service temporarily unavailable)."""
    events: list[str] = []
    tel = Telemetry()
    tel.attach("t", "executor.retry*", lambda e, m, md: events.append(e))
    transport = cluster("n1")
    transport.nodes["n1"].down = True
    response = await make(transport, remote(["n1"]), telemetry=tel).execute(req())
    assert response == Response.fail("r1", "Service temporarily unavailable", can_retry=True)
    assert events == []


async def test_a_node_lost_in_flight_is_not_run_again_without_retries() -> None:
    """The call may have run on the lost node: without a retry policy the client gets a
    retryable error at once and no other node runs it."""
    transport = cluster("n1", "n2")
    transport.nodes["n1"].raises = NodeLost("node n1 stopped answering")
    executor = make(transport, remote(["n1", "n2"], choose_node_mode="round_robin"))
    response = await executor.execute(req())
    assert response == Response.fail("r1", "Service temporarily unavailable", can_retry=True)
    assert transport.nodes["n2"].calls == []


async def test_a_node_lost_in_flight_moves_to_another_node_when_retries_are_allowed() -> None:
    """A function that allows retries runs again on the next node."""
    transport = cluster("n1", "n2")
    transport.nodes["n1"].raises = NodeLost("node n1 stopped answering")
    executor = make(transport, remote(["n1", "n2"], choose_node_mode="round_robin", retry=1))
    response = await executor.execute(req())
    assert response is not None and response.result["node"] == "n2"


async def test_our_own_lost_connection_blames_no_node() -> None:
    """Not connected to the transport: no breaker counts it, no other node is tried."""
    transport = cluster("n1", "n2")
    for node in transport.nodes.values():
        node.raises = TransportUnavailable("not connected to NATS")
    executor = make(transport, remote(["n1", "n2"], choose_node_mode="round_robin"),
                    threshold=1)
    response = await executor.execute(req())
    assert response == Response.fail("r1", "Service temporarily unavailable", can_retry=True)
    assert {n: b.consecutive_failures for n, b in executor.breakers.snapshot().items()} == {
        "n1": 0}


async def test_an_open_breaker_puts_a_node_last_not_out() -> None:
    """When every other node fails, a node whose breaker is open is still tried; once it
    answers, its breaker closes."""
    transport = cluster("n1", "n2")
    executor = make(transport, remote(["n1", "n2"], choose_node_mode="round_robin"),
                    threshold=1)
    transport.nodes["n1"].fail_next = 1
    await executor.execute(req())  # n1 fails once: its breaker opens; n2 answers
    assert executor.breakers.get("n1").state.value == "open"
    transport.nodes["n2"].down = True
    response = await executor.execute(req(rid="r2"))
    assert response is not None and response.result["node"] == "n1"
    assert executor.breakers.get("n1").state.value == "closed"


async def test_remote_failures_never_open_the_local_pools() -> None:
    """A dead node's async calls fail, each once; the async pool's breaker stays closed, so
    local async functions keep working."""

    async def broken(node: str, request: Request) -> Any:
        raise InternalError()

    transport = FakeTransport(FakeNode("n1", broken))
    local = FunConfig(service="data_service", request_type="local", response_type="async",
                      function=_local_answer)
    executor = make(transport, remote(["n1"], response_type="async"), local)
    sink = _Collect()
    for i in range(15):
        await executor.execute(req(rid=f"r{i}"), sink)
    await sink.wait(15)
    assert executor.pool_status()["pools"]["async"].breaker.value == "closed"
    assert await executor.execute(Request(request_id="l", service="data_service",
                                          request_type="local"), sink) == Response.async_ack("l")


async def _local_answer() -> str:
    return "local"


class _Collect:
    def __init__(self) -> None:
        self.responses: list[Response] = []

    async def __call__(self, response: Response) -> None:
        self.responses.append(response)

    async def wait(self, count: int) -> None:
        async with asyncio.timeout(5):
            while len(self.responses) < count:
                await asyncio.sleep(0.01)
