"""Async, fire-and-forget and stream calls; cancellation; pools."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from genapi import (
    ApiError,
    CallContext,
    Executor,
    Registry,
    Request,
    Response,
    Service,
)
from genapi.execution.pool import PoolSettings
from genapi.execution.streams import StreamHelper
from genapi.telemetry.events import Telemetry


class Sink:
    """Collects the responses sent after the first one."""

    def __init__(self) -> None:
        self.responses: list[Response] = []
        self.event = asyncio.Event()

    async def __call__(self, response: Response) -> None:
        self.responses.append(response)
        self.event.set()

    async def wait(self, count: int, timeout: float = 5.0) -> list[Response]:
        async with asyncio.timeout(timeout):
            while len(self.responses) < count:
                self.event.clear()
                await self.event.wait()
        return self.responses


def make(svc: Service, **options: Any) -> Executor:
    registry = Registry(telemetry=Telemetry())
    registry.add_service(svc)
    return Executor(registry, **options)


def req(rt: str, **args: Any) -> Request:
    return Request(request_id="r1", service="svc", request_type=rt, args=args)


def terminal(responses: list[Response]) -> list[Response]:
    """Responses that end a stream (after the init ack)."""
    return [r for r in responses if not (r.success and r.has_more)]


async def test_async_ack_then_one_final_result() -> None:
    """Async: an immediate ack, then exactly one final Response (async false)."""
    svc = Service("svc")

    @svc.function(response_type="async")
    async def report(fmt: str = "pdf") -> dict[str, str]:
        await asyncio.sleep(0.05)
        return {"url": f"/r.{fmt}"}

    executor, sink = make(svc), Sink()
    assert await executor.execute(req("report"), sink) == Response.async_ack("r1")
    assert await sink.wait(1) == [Response.sync("r1", {"url": "/r.pdf"})]
    await asyncio.sleep(0.05)
    assert len(sink.responses) == 1


async def test_async_error_is_the_final_response() -> None:
    """An async function's error is its one final Response."""
    svc = Service("svc")

    @svc.function(response_type="async")
    async def fails() -> None:
        raise ApiError("No report today")

    executor, sink = make(svc), Sink()
    await executor.execute(req("fails"), sink)
    assert await sink.wait(1) == [Response.fail("r1", "No report today")]


async def test_async_validation_errors_come_first() -> None:
    """Invalid arguments are refused before any ack."""
    svc = Service("svc")

    @svc.function(response_type="async")
    async def job(n: int) -> int:
        return n

    executor, sink = make(svc), Sink()
    response = await executor.execute(req("job"), sink)
    assert response == Response.fail("r1", "Missing required argument: n")
    assert sink.responses == []


async def test_fire_and_forget_runs_without_answers() -> None:
    """'none': no answer at all, but the function runs."""
    svc = Service("svc")
    ran = asyncio.Event()

    @svc.function(response_type="none")
    async def log_it(message: str) -> None:
        ran.set()

    executor, sink = make(svc), Sink()
    assert await executor.execute(req("log_it", message="hi"), sink) is None
    await asyncio.wait_for(ran.wait(), 2)
    await asyncio.sleep(0.02)
    assert sink.responses == []


@pytest.mark.parametrize("style", ["generator", "helper", "helper_last", "plain_generator",
                                   "plain_helper"])
async def test_stream_styles(style: str) -> None:
    """Every stream style: init ack, ordered chunks, exactly one terminator."""
    svc = Service("svc")

    @svc.function(response_type="stream")
    async def generator(count: int):  # type: ignore[no-untyped-def]
        for i in range(count):
            yield {"n": i}

    @svc.function(response_type="stream")
    async def helper(count: int, stream: StreamHelper) -> None:
        for i in range(count):
            await stream.send_result({"n": i})
        await stream.send_complete()

    @svc.function(response_type="stream")
    async def helper_last(count: int, stream: StreamHelper) -> None:
        for i in range(count - 1):
            await stream.send_result({"n": i})
        await stream.send_last_result({"n": count - 1})

    @svc.function(response_type="stream")
    def plain_generator(count: int):  # type: ignore[no-untyped-def]
        yield from ({"n": i} for i in range(count))

    @svc.function(response_type="stream")
    def plain_helper(count: int, stream: StreamHelper) -> None:
        for i in range(count):
            stream.send_result({"n": i})

    executor, sink = make(svc), Sink()
    assert await executor.execute(req(style, count=3), sink) == Response.stream_init("r1")
    responses = await sink.wait(4 if style != "helper_last" else 3)
    await asyncio.sleep(0.05)
    data = [r.result for r in sink.responses if r.result is not None]
    assert data == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert len(terminal(sink.responses)) == 1
    assert sink.responses[-1].has_more is False
    assert all(r.async_ for r in responses)


async def test_stream_timeout_sends_one_error_terminator() -> None:
    """A stream past its timeout ends with one 'Request timed out' error; no hidden cap."""
    svc = Service("svc")

    @svc.function(response_type="stream", timeout=200)
    async def endless():  # type: ignore[no-untyped-def]
        while True:
            yield "tick"
            await asyncio.sleep(0.03)

    executor, sink = make(svc), Sink()
    await executor.execute(req("endless"), sink)
    await asyncio.sleep(0.5)
    ends = terminal(sink.responses)
    assert ends == [Response.fail("r1", "Request timed out after 200ms", can_retry=True)]
    assert sink.responses[-1] == ends[0]


async def test_stream_crash_sends_one_error_terminator() -> None:
    """A stream that raises ends with Internal Server Error after its chunks."""
    svc = Service("svc")

    @svc.function(response_type="stream")
    async def crash():  # type: ignore[no-untyped-def]
        yield 1
        raise RuntimeError("boom")

    executor, sink = make(svc), Sink()
    await executor.execute(req("crash"), sink)
    responses = await sink.wait(2)
    assert responses == [Response.stream_chunk("r1", 1),
                         Response.fail("r1", "Internal Server Error")]


async def test_long_streams_are_not_capped() -> None:
    """timeout=None streams run as long as they need."""
    svc = Service("svc")

    @svc.function(response_type="stream", timeout=None)
    async def slow(count: int):  # type: ignore[no-untyped-def]
        for i in range(count):
            await asyncio.sleep(0.01)
            yield i

    executor, sink = make(svc), Sink()
    await executor.execute(req("slow", count=20), sink)
    responses = await sink.wait(21)
    assert [r.result for r in responses[:-1]] == list(range(20))
    assert responses[-1] == Response.stream_end("r1")


async def test_cancel_a_stream_and_an_async_call() -> None:
    """Cancelling in-flight work ends it with exactly one 'Cancelled'."""
    svc = Service("svc")
    cancelled = asyncio.Event()

    @svc.function(response_type="stream", timeout=None)
    async def ticker():  # type: ignore[no-untyped-def]
        try:
            while True:
                yield "tick"
                await asyncio.sleep(0.01)
        finally:
            cancelled.set()

    @svc.function(response_type="async", timeout=None)
    async def long_job() -> str:
        await asyncio.sleep(30)
        return "never"

    executor = make(svc)
    stream_sink, job_sink = Sink(), Sink()
    await executor.execute(Request(request_id="s", service="svc", request_type="ticker"),
                           stream_sink)
    await executor.execute(Request(request_id="j", service="svc", request_type="long_job"),
                           job_sink)
    await stream_sink.wait(2)
    assert executor.cancel("s") == 1
    assert executor.cancel("j") == 1
    await asyncio.wait_for(cancelled.wait(), 2)
    await asyncio.sleep(0.05)
    assert terminal(stream_sink.responses) == [Response.fail("s", "Cancelled")]
    assert job_sink.responses == [Response.fail("j", "Cancelled")]
    assert executor.cancel("s") == 0


async def test_stop_stream_ends_normally() -> None:
    """stop_stream ends a stream with a stream end, not an error."""
    svc = Service("svc")

    @svc.function(response_type="stream", timeout=None)
    async def ticker():  # type: ignore[no-untyped-def]
        while True:
            yield "tick"
            await asyncio.sleep(0.01)

    executor, sink = make(svc), Sink()
    await executor.execute(req("ticker"), sink)
    await sink.wait(2)
    assert executor.stop_stream("r1") == 1
    await asyncio.sleep(0.05)
    assert terminal(sink.responses) == [Response.stream_end("r1")]


async def test_owner_disconnect_cancels_unless_kept_running() -> None:
    """Work owned by a connection is cancelled when it goes, unless configured to stay."""
    svc = Service("svc")
    finished: list[str] = []

    @svc.function(response_type="async", timeout=None)
    async def fragile() -> None:
        await asyncio.sleep(0.1)
        finished.append("fragile")

    @svc.function(response_type="async", timeout=None, keep_running_on_disconnect=True)
    async def durable() -> None:
        await asyncio.sleep(0.1)
        finished.append("durable")

    executor, owner = make(svc), object()
    await executor.run(Request(request_id="a", service="svc", request_type="fragile"), Sink(),
                       owner)
    await executor.run(Request(request_id="b", service="svc", request_type="durable"), Sink(),
                       owner)
    assert executor.cancel_owned(owner) == 1
    await asyncio.sleep(0.3)
    assert finished == ["durable"]


async def test_full_pool_refuses_with_can_retry() -> None:
    """When the pool and its queue are full, calls are refused with can_retry."""
    svc = Service("svc")
    release = asyncio.Event()

    @svc.function(response_type="async", timeout=None)
    async def wait() -> str:
        await release.wait()
        return "done"

    executor = make(svc, pool_settings=PoolSettings(async_size=1, async_max_queue=1))
    sinks = [Sink() for _ in range(3)]
    first = [await executor.execute(Request(request_id=str(i), service="svc",
                                            request_type="wait"), sinks[i]) for i in range(3)]
    assert first[0] == Response.async_ack("0")
    assert first[1] == Response.async_ack("1")
    assert first[2] == Response.fail("2", "Service temporarily unavailable", can_retry=True)
    release.set()
    assert (await sinks[1].wait(1))[0].result == "done"


async def test_thousand_async_calls_none_lost() -> None:
    """1,000 concurrent async calls on a pool of 50: each completes or is refused, none lost."""
    svc = Service("svc")

    @svc.function(response_type="async")
    async def work(n: int) -> int:
        await asyncio.sleep(0.005)
        return n

    executor = make(svc, pool_settings=PoolSettings(async_size=50, async_max_queue=500))
    sinks = [Sink() for _ in range(1000)]
    firsts = await asyncio.gather(*(
        executor.execute(Request(request_id=str(i), service="svc", request_type="work",
                                 args={"n": i}), sinks[i])
        for i in range(1000)
    ))
    refused = [i for i, r in enumerate(firsts) if r is not None and not r.success]
    accepted = [i for i, r in enumerate(firsts) if r == Response.async_ack(str(i))]
    assert len(refused) + len(accepted) == 1000
    assert all(firsts[i].can_retry for i in refused)  # type: ignore[union-attr]
    for i in accepted:
        assert await sinks[i].wait(1) == [Response.sync(str(i), i)]
    assert all(not sinks[i].responses for i in refused)
    for _ in range(100):  # the last jobs finish just after sending their results
        status = executor.pool_status()["pools"]["async"]
        if status.busy == 0:
            break
        await asyncio.sleep(0.01)
    assert status.busy == 0
    assert status.queued == 0
    assert status.total_executed == len(accepted)


async def test_pool_status_reports_pools_and_breakers() -> None:
    """pool_status reports idle, busy, queued and breaker states."""
    executor = make(Service("svc"))
    status = executor.pool_status()
    assert set(status["pools"]) == {"async", "stream"}
    assert status["pools"]["async"].idle == status["pools"]["async"].size
    assert status["pools"]["async"].breaker == "closed"


async def test_versions_change_while_traffic_runs() -> None:
    """Disabling or deleting a version leaves in-flight calls to finish."""
    svc = Service("svc")
    started, release = asyncio.Event(), asyncio.Event()

    @svc.function(version="1.0.0", timeout=None)
    async def slow() -> str:
        started.set()
        await release.wait()
        return "v1"

    executor = make(svc)
    call = asyncio.create_task(executor.execute(req("slow")))
    await started.wait()
    executor.registry.disable("svc", "slow", "1.0.0")
    assert (await executor.execute(req("slow"))).error == (  # type: ignore[union-attr]
        "disabled function: slow version latest")
    executor.registry.delete("svc", "slow", "1.0.0")
    release.set()
    assert (await call) == Response.sync("r1", "v1")



async def test_streams_run_in_the_stream_pool_not_the_async_pool() -> None:
    """A stream takes a stream worker: with the async pool full, streams still start, and a
    running stream leaves the async pool's slot free."""
    svc = Service("svc")
    release = asyncio.Event()

    @svc.function(response_type="async", timeout=None)
    async def hold() -> str:
        await release.wait()
        return "done"

    @svc.function(response_type="stream", timeout=None)
    async def ticks(stream: StreamHelper) -> None:
        await release.wait()
        await stream.send_last_result("tick")

    executor = make(svc, pool_settings=PoolSettings(async_size=1, async_max_queue=0,
                                                     stream_size=1, stream_max_queue=0))
    held = Sink()
    assert await executor.execute(Request(request_id="a", service="svc", request_type="hold"),
                                  held) == Response.async_ack("a")
    streamed = Sink()
    assert await executor.execute(Request(request_id="s", service="svc", request_type="ticks"),
                                  streamed) == Response.stream_init("s")
    status = executor.pool_status()["pools"]
    assert (status["async"].busy, status["stream"].busy) == (1, 1)
    release.set()
    assert terminal(await streamed.wait(1)) == [Response.stream_last("s", "tick")]
    assert (await held.wait(1)) == [Response.sync("a", "done")]


@pytest.mark.parametrize(("style", "reason"), [
    ("async_helper", "bad input"), ("async_helper_default", "Internal Server Error"),
    ("thread_helper", "bad input"), ("thread_helper_default", "Internal Server Error"),
])
async def test_send_error_ends_the_stream_with_that_message(style: str, reason: str) -> None:
    """StreamHelper.send_error (async and in a thread) ends the stream with exactly its
    reason (default: Internal Server Error), after the chunks sent before it."""
    svc = Service("svc")

    @svc.function(response_type="stream")
    async def async_helper(stream: StreamHelper) -> None:
        await stream.send_result(1)
        await stream.send_error("bad input")

    @svc.function(response_type="stream")
    async def async_helper_default(stream: StreamHelper) -> None:
        await stream.send_result(1)
        await stream.send_error()

    @svc.function(response_type="stream")
    def thread_helper(stream: StreamHelper) -> None:
        stream.send_result(1)
        stream.send_error("bad input")

    @svc.function(response_type="stream")
    def thread_helper_default(stream: StreamHelper) -> None:
        stream.send_result(1)
        stream.send_error()

    executor, sink = make(svc), Sink()
    assert await executor.execute(req(style), sink) == Response.stream_init("r1")
    await sink.wait(2)
    await asyncio.sleep(0.05)
    assert sink.responses == [Response.stream_chunk("r1", 1), Response.fail("r1", reason)]


async def test_drain_lets_short_work_finish_and_answers_the_rest_once() -> None:
    """Executor.drain: work that ends within the budget ends normally; running and queued
    work past it is answered 'Server shutting down' (retryable), exactly once each."""
    svc = Service("svc")

    @svc.function(response_type="async", timeout=None)
    async def wait(ms: int) -> int:
        await asyncio.sleep(ms / 1000)
        return ms

    @svc.function(response_type="stream", timeout=None)
    async def forever():  # type: ignore[no-untyped-def]
        while True:
            yield 1
            await asyncio.sleep(0.05)

    executor = make(svc, pool_settings=PoolSettings(async_size=2, async_max_queue=5))
    sinks = {name: Sink() for name in ("short", "long", "queued", "stream")}
    await executor.execute(Request(request_id="short", service="svc", request_type="wait",
                                   args={"ms": 50}), sinks["short"])
    for name in ("long", "queued"):
        await executor.execute(Request(request_id=name, service="svc", request_type="wait",
                                       args={"ms": 5000}), sinks[name])
    await executor.execute(Request(request_id="stream", service="svc", request_type="forever"),
                           sinks["stream"])
    assert await executor.drain(0.3) == 3
    assert sinks["short"].responses == [Response.sync("short", 50)]
    for name in ("long", "queued"):
        assert sinks[name].responses == [Response.fail(name, "Server shutting down",
                                                       can_retry=True)]
    assert terminal(sinks["stream"].responses) == [
        Response.fail("stream", "Server shutting down", can_retry=True)]


async def test_async_generator_streams_receive_their_call_context() -> None:
    """A stream written as an async generator gets its CallContext like any function."""
    svc = Service("svc")

    @svc.function(response_type="stream")
    async def whoami(call: CallContext):  # type: ignore[no-untyped-def]
        yield call.request.request_id

    executor, sink = make(svc), Sink()
    assert await executor.execute(req("whoami"), sink) == Response.stream_init("r1")
    await sink.wait(2)
    assert sink.responses == [Response.stream_chunk("r1", "r1"), Response.stream_end("r1")]
