"""OpenTelemetry spans per request, checked with the SDK's in-memory exporter."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from genapi import Executor, Gateway, Registry, Request
from genapi.observability import RequestTracer, TracingUnavailable
from genapi.telemetry.events import Telemetry
from tests.support.servers import running_app
from tests.support.services import observed_service


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(spans: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    return provider


@pytest.fixture
async def executor() -> AsyncIterator[Executor]:
    registry = Registry(telemetry=Telemetry())
    registry.add_service(observed_service())
    executor = Executor(registry)
    yield executor
    await executor.aclose()


@pytest.fixture(params=["observer", "events"])
def new_tracer(request: pytest.FixtureRequest,
               executor: Executor) -> Callable[..., RequestTracer]:
    """Builds a tracer fed by the executor's request observer, or by telemetry events."""
    def make(**options: Any) -> RequestTracer:
        if request.param == "observer":
            return RequestTracer(executor=executor, **options)
        return RequestTracer(executor.telemetry, **options)
    return make


@pytest.fixture(scope="module")
def global_spans() -> Iterator[InMemorySpanExporter]:
    """The process-wide provider (settable once), recording into an in-memory exporter."""
    exporter = InMemorySpanExporter()
    current = trace.get_tracer_provider()
    if not isinstance(current, TracerProvider):
        current = TracerProvider()
        trace.set_tracer_provider(current)
    current.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.clear()


def finished_spans(spans: InMemorySpanExporter,
                   tracer: RequestTracer) -> tuple[ReadableSpan, ...]:
    """The spans made so far, once the tracer's worker thread made the queued ones."""
    assert tracer.flush(5.0)
    return spans.get_finished_spans()


def request(request_type: str = "echo", n: int = 1, request_id: str = "r1") -> Request:
    args = {"n": n} if request_type == "echo" else {}
    return Request(request_id=request_id, service="svc", request_type=request_type, args=args)


def only(spans: InMemorySpanExporter, tracer: RequestTracer) -> ReadableSpan:
    finished = finished_spans(spans, tracer)
    assert len(finished) == 1
    return finished[0]


async def test_a_span_per_request_with_attributes(
        executor: Executor, provider: TracerProvider, spans: InMemorySpanExporter,
        new_tracer: Callable[..., RequestTracer]) -> None:
    """A successful call ends one SERVER span named service.request_type with attributes."""
    tracer = new_tracer(tracer_provider=provider)
    await executor.execute(request(n=5))
    span = only(spans, tracer)
    assert span.name == "svc.echo"
    assert span.kind is SpanKind.SERVER
    assert dict(span.attributes or {}) == {
        "rpc.system": "genapi", "genapi.service": "svc", "genapi.request_type": "echo",
        "genapi.request_id": "r1", "genapi.success": True, "genapi.async": False,
    }
    assert span.status.status_code is StatusCode.UNSET
    assert span.start_time is not None and span.end_time is not None
    assert span.start_time <= span.end_time
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == "genapi"
    tracer.close()


async def test_a_failed_request_has_an_error_status(
        executor: Executor, provider: TracerProvider, spans: InMemorySpanExporter,
        new_tracer: Callable[..., RequestTracer]) -> None:
    """An error Response sets genapi.error and an ERROR status with its message."""
    tracer = new_tracer(tracer_provider=provider)
    await executor.execute(request(n=-1))
    span = only(spans, tracer)
    assert span.attributes is not None
    assert span.attributes["genapi.success"] is False
    assert span.attributes["genapi.error"] == "negative"
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "negative"
    assert span.events == ()


async def test_a_raising_function_adds_an_exception_event(
        executor: Executor, provider: TracerProvider, spans: InMemorySpanExporter,
        new_tracer: Callable[..., RequestTracer]) -> None:
    """A function that raised adds an exception event with its type and message."""
    tracer = new_tracer(tracer_provider=provider)
    await executor.execute(request("crash"))
    span = only(spans, tracer)
    assert span.attributes is not None
    assert span.attributes["genapi.error"] == "Internal Server Error"
    [event] = span.events
    assert event.name == "exception"
    assert dict(event.attributes or {}) == {"exception.type": "RuntimeError",
                                            "exception.message": "boom"}


async def test_the_span_is_a_child_of_the_current_span(
        executor: Executor, provider: TracerProvider, spans: InMemorySpanExporter,
        new_tracer: Callable[..., RequestTracer]) -> None:
    """The request span's parent is the span current where the request ran."""
    tracer = new_tracer(tracer_provider=provider)
    with provider.get_tracer("test").start_as_current_span("outer") as outer:
        await executor.execute(request())
    [inner] = [s for s in finished_spans(spans, tracer) if s.name == "svc.echo"]
    assert inner.parent is not None
    assert inner.parent.span_id == outer.get_span_context().span_id
    assert inner.context is not None
    assert inner.context.trace_id == outer.get_span_context().trace_id


async def test_sampling_skips_roots_and_follows_sampled_parents(
        executor: Executor, provider: TracerProvider, spans: InMemorySpanExporter,
        new_tracer: Callable[..., RequestTracer]) -> None:
    """With sample_rate, unsampled roots get no span; a sampled parent is always followed."""
    draws = iter([0.5, 0.05, 0.5])
    tracer = new_tracer(tracer_provider=provider, sample_rate=0.1, rng=lambda: next(draws))
    await executor.execute(request(request_id="dropped"))  # draw 0.5: not sampled
    await executor.execute(request(request_id="kept"))  # draw 0.05: sampled
    with provider.get_tracer("test").start_as_current_span("outer"):
        await executor.execute(request(request_id="child"))  # draw 0.5: the parent decides
    ids = [s.attributes["genapi.request_id"] for s in finished_spans(spans, tracer)
           if s.attributes and "genapi.request_id" in s.attributes]
    assert ids == ["kept", "child"]


def test_sample_rate_must_be_a_share() -> None:
    """sample_rate outside 0..1 is refused."""
    with pytest.raises(ValueError, match="sample_rate"):
        RequestTracer(Telemetry(), sample_rate=1.5)


async def test_close_detaches(executor: Executor, provider: TracerProvider,
                              spans: InMemorySpanExporter,
        new_tracer: Callable[..., RequestTracer]) -> None:
    """After close() no more spans are made."""
    tracer = new_tracer(tracer_provider=provider)
    tracer.close()
    assert executor.telemetry.handler_ids() == []
    await executor.execute(request())
    assert finished_spans(spans, tracer) == ()


def test_missing_opentelemetry_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without opentelemetry installed, enabling tracing says what to install."""
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    with pytest.raises(TracingUnavailable, match="pip install opentelemetry-api"):
        RequestTracer(Telemetry())
    with pytest.raises(TracingUnavailable):
        Gateway([observed_service()], tracing=True, registry=Registry(telemetry=Telemetry()))


async def test_gateway_tracing_uses_the_global_provider(
        global_spans: InMemorySpanExporter) -> None:
    """Gateway(tracing=True) records a span per HTTP call with the global provider."""
    gateway = Gateway([observed_service()], tracing=True, registry=Registry(telemetry=Telemetry()))
    assert isinstance(gateway.tracer, RequestTracer)
    global_spans.clear()
    async with running_app(gateway) as url, httpx.AsyncClient(base_url=url) as http:
        assert (await http.post("/api/svc/echo", json={"n": 3})).json()["result"] == 3
    [span] = [s for s in global_spans.get_finished_spans() if s.name == "svc.echo"]
    assert span.attributes is not None
    assert span.attributes["genapi.success"] is True
    assert gateway.executor.telemetry.handler_ids() == []


async def test_inline_tracing_makes_the_span_before_the_call_returns(
        executor: Executor, provider: TracerProvider, spans: InMemorySpanExporter,
        new_tracer: Callable[..., RequestTracer]) -> None:
    """offload=False makes each span on the request path, parent included."""
    tracer = new_tracer(tracer_provider=provider, offload=False)
    with provider.get_tracer("test").start_as_current_span("outer") as outer:
        await executor.execute(request())
    [inner, _] = spans.get_finished_spans()  # made before "outer" ended
    assert inner.name == "svc.echo"
    assert inner.parent is not None
    assert inner.parent.span_id == outer.get_span_context().span_id
    assert tracer.dropped == 0
    tracer.close()
