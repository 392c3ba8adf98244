"""The Prometheus exporter: counts from real calls, scrape-time gauges, /metrics over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from genapi import (
    Client,
    DurableSettings,
    Executor,
    Gateway,
    MetricsSettings,
    Registry,
    Request,
    Service,
)
from genapi.observability import CONTENT_TYPE, PrometheusExporter
from genapi.ratelimit import RateLimit, RateLimitConfig, RateLimiter
from genapi.telemetry.events import Telemetry
from tests.support.servers import running_app
from tests.support.services import observed_service

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(exporter: PrometheusExporter | None = None, text: str | None = None) -> Samples:
    """Every sample of an exposition, keyed by (name, labels)."""
    if text is None:
        assert exporter is not None
        assert exporter.flush(5.0)  # offloaded (the default): wait until counted
        text = exporter.exposition().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(found: Samples, metric: str, **labels: str) -> float | None:
    return found.get((metric, frozenset(labels.items())))


@pytest.fixture
async def executor() -> AsyncIterator[Executor]:
    registry = Registry(telemetry=Telemetry())
    registry.add_service(observed_service("bench"))
    executor = Executor(registry)
    yield executor
    await executor.aclose()


def call(n: int, request_type: str = "echo", service: str = "bench",
         user_id: str | None = None) -> Request:
    args = {"n": n} if request_type == "echo" else {}
    return Request(request_id=f"r{n}", service=service, request_type=request_type, args=args,
                   user_id=user_id)


async def test_requests_are_counted_by_function_and_outcome(executor: Executor) -> None:
    """Calls through an executor show up in requests_total and the duration histogram."""
    exporter = PrometheusExporter(executor=executor)
    for n in (1, 2, 3, -1, -2):
        await executor.execute(call(n))
    found = samples(exporter)
    ok = {"service": "bench", "request_type": "echo", "success": "true"}
    failed = {**ok, "success": "false"}
    assert value(found, "genapi_requests_total", **ok) == 3
    assert value(found, "genapi_requests_total", **failed) == 2
    assert value(found, "genapi_request_duration_seconds_count", **ok) == 3
    assert value(found, "genapi_request_duration_seconds_bucket", **ok, le="+Inf") == 3
    assert value(found, "genapi_request_duration_seconds_sum", **ok) > 0  # type: ignore[operator]
    cumulative = [v for (name, labels), v in found.items()
                  if name == "genapi_request_duration_seconds_bucket"
                  and ("success", "true") in labels]
    assert len(cumulative) == 17  # 16 bounds from 0.1 ms to 10 s, and +Inf
    exporter.close()


async def test_durations_land_in_the_right_buckets() -> None:
    """A duration lands in the first bucket whose bound it does not exceed (le)."""
    telemetry = Telemetry()
    exporter = PrometheusExporter(telemetry)
    meta = {"service": "s", "request_type": "f", "success": True, "version": None}
    for duration_us in (100, 101, 250, 20_000_000):
        telemetry.emit("executor.request.stop", {"duration_us": duration_us}, meta)
    found = samples(exporter)
    labels = {"service": "s", "request_type": "f", "success": "true"}
    bucket = "genapi_request_duration_seconds_bucket"
    assert value(found, bucket, **labels, le="0.0001") == 1
    assert value(found, bucket, **labels, le="0.00025") == 3
    assert value(found, bucket, **labels, le="10.0") == 3
    assert value(found, bucket, **labels, le="+Inf") == 4
    assert value(found, "genapi_request_duration_seconds_sum", **labels) == pytest.approx(
        20.000451)


async def test_unknown_functions_do_not_mint_series(executor: Executor) -> None:
    """Calls to names the registry does not know share one _unknown series."""
    exporter = PrometheusExporter(executor=executor)
    for n in range(5):
        await executor.execute(call(n, request_type=f"nope{n}", service=f"ghost{n}"))
    assert exporter.flush(5.0)
    text = exporter.exposition().decode()
    assert "ghost" not in text and "nope" not in text
    found = samples(text=text)
    assert value(found, "genapi_requests_total", service="_unknown", request_type="_unknown",
                 success="false") == 5


async def test_label_sets_past_max_series_go_to_other(executor: Executor) -> None:
    """Past max_series label sets, new functions are counted under _other."""
    exporter = PrometheusExporter(executor=executor, max_series=1)
    await executor.execute(call(1))
    await executor.execute(call(2, request_type="other"))
    found = samples(exporter)
    assert value(found, "genapi_requests_total", service="bench", request_type="echo",
                 success="true") == 1
    assert value(found, "genapi_requests_total", service="_other", request_type="_other",
                 success="true") == 1


async def test_pool_and_breaker_gauges_are_read_at_scrape_time(executor: Executor) -> None:
    """Pool occupancy and breaker states come from executor.pool_status() when scraped."""
    exporter = PrometheusExporter(executor=executor)
    found = samples(exporter)
    for pool in ("async", "stream"):
        assert value(found, "genapi_pool_busy", pool=pool) == 0
        assert value(found, "genapi_pool_queued", pool=pool) == 0
        assert value(found, "genapi_pool_idle", pool=pool) == value(found, "genapi_pool_size",
                                                                    pool=pool)
        assert value(found, "genapi_breaker_state", name=f"pool:{pool}") == 0
        assert value(found, "genapi_pool_tasks_total", pool=pool, outcome="executed") == 0
    breaker = executor.breakers.get("node-a")
    while breaker.allow():
        breaker.record_failure()
    assert value(samples(exporter), "genapi_breaker_state", name="node-a") == 2


async def test_rate_limited_requests_are_counted_by_scope(executor: Executor) -> None:
    """Rejections by a RateLimiter count in genapi_rate_limited_total{scope}."""
    executor.rate_limiter = RateLimiter(
        RateLimitConfig(global_limits=[RateLimit("user_id", 1, 60_000)],
                        api_limits=[RateLimit("user_id", 5, 60_000, service="bench",
                                              request_type="other")]),
        telemetry=executor.telemetry)
    exporter = PrometheusExporter(executor=executor)
    for n in range(3):
        await executor.execute(call(n, user_id="u1"))
    found = samples(exporter)
    assert value(found, "genapi_rate_limited_total", scope="global") == 2
    assert value(found, "genapi_requests_total", service="bench", request_type="echo",
                 success="false") == 2


async def test_relay_and_node_events_are_counted() -> None:
    """relay.message.sent adds its recipients; node.up/down set genapi_node_up."""
    telemetry = Telemetry()
    exporter = PrometheusExporter(telemetry)
    telemetry.emit("relay.message.sent", {"recipients": 3, "duration_us": 5}, {})
    telemetry.emit("relay.message.sent", {"recipients": 4, "duration_us": 5}, {})
    telemetry.emit("node.up", {}, {"node": "a"})
    telemetry.emit("node.up", {}, {"node": "b"})
    telemetry.emit("node.up", {}, {"node": "c"})
    telemetry.emit("node.down", {}, {"node": "b", "reason": "silent"})
    telemetry.emit("node.down", {}, {"node": "c", "reason": "left"})
    found = samples(exporter)
    assert value(found, "genapi_relay_messages_total") == 2
    assert value(found, "genapi_relay_deliveries_total") == 7
    assert value(found, "genapi_node_up", node="a") == 1
    assert value(found, "genapi_node_up", node="b") == 0
    assert value(found, "genapi_node_up", node="c") is None


async def test_counting_is_offloaded_by_default(executor: Executor) -> None:
    """By default the counts arrive through an offloading thread, not on the request path."""
    exporter = PrometheusExporter(executor=executor)
    assert exporter.offload
    for n in range(10):
        await executor.execute(call(n))
    assert exporter.flush(5.0)
    found = samples(exporter)
    assert value(found, "genapi_requests_total", service="bench", request_type="echo",
                 success="true") == 10
    assert value(found, "genapi_metrics_dropped_events_total") == 0
    exporter.close()


async def test_inline_counting_counts_before_the_call_returns(executor: Executor) -> None:
    """offload=False counts on the request path: the exposition is current at once."""
    exporter = PrometheusExporter(executor=executor, offload=False)
    await executor.execute(call(1))
    text = exporter.exposition().decode()
    assert value(samples(text=text), "genapi_requests_total", service="bench",
                 request_type="echo", success="true") == 1
    exporter.close()


async def test_close_detaches_from_telemetry(executor: Executor) -> None:
    """After close() the exporter holds no handler and counts nothing more."""
    exporter = PrometheusExporter(executor=executor)
    await executor.execute(call(1))
    exporter.close()
    assert executor.telemetry.handler_ids() == []
    await executor.execute(call(2))
    assert value(samples(exporter), "genapi_requests_total", service="bench",
                 request_type="echo", success="true") == 1


@pytest.mark.parametrize("offload", [False, True])
async def test_attach_resumes_after_detach_and_close(executor: Executor, offload: bool) -> None:
    """detach() keeps the counts; attach() resumes, also after close() (a gateway restart)."""
    exporter = PrometheusExporter(executor=executor, offload=offload)
    await executor.execute(call(1))
    exporter.detach()
    await executor.execute(call(2))
    exporter.attach()
    exporter.close()
    exporter.attach()
    await executor.execute(call(3))
    assert exporter.flush(5.0)
    assert value(samples(exporter), "genapi_requests_total", service="bench",
                 request_type="echo", success="true") == 2
    exporter.close()


async def test_exporters_keep_their_own_registries() -> None:
    """Two exporters in one process do not clash (no global registry)."""
    first, second = PrometheusExporter(Telemetry()), PrometheusExporter(Telemetry())
    assert first.registry is not second.registry
    first.close()
    second.close()


async def test_gateway_serves_metrics_over_http() -> None:
    """Gateway(metrics=True) serves GET /metrics with calls, connections and pools."""
    gateway = Gateway([observed_service("bench")], metrics=True,
                      registry=Registry(telemetry=Telemetry()))
    async with running_app(gateway) as url:
        socket = url.replace("http://", "ws://") + "/socket"
        async with Client(socket) as client, httpx.AsyncClient(base_url=url) as http:
            assert await client.call("bench", "echo", {"n": 1}) == 1
            answer = await http.post("/api/bench/echo", json={"n": 2})
            assert answer.json()["result"] == 2
            scraped = await http.get("/metrics")
        assert scraped.status_code == 200
        assert scraped.headers["content-type"] == CONTENT_TYPE
        found = samples(text=scraped.text)
        assert value(found, "genapi_requests_total", service="bench", request_type="echo",
                     success="true") == 2
        assert value(found, "genapi_connections_open") == 1
        assert value(found, "genapi_connections_total") == 1
        assert value(found, "genapi_pool_busy", pool="async") == 0
        assert value(found, "genapi_breaker_state", name="pool:async") == 0
    assert gateway.executor.telemetry.handler_ids() == []  # aclose() detached it


async def test_gateway_without_metrics_has_no_metrics_route() -> None:
    """Without metrics=True there is no /metrics (and no exporter)."""
    gateway = Gateway([observed_service("bench")], registry=Registry(telemetry=Telemetry()))
    assert gateway.metrics is None
    async with running_app(gateway) as url, httpx.AsyncClient(base_url=url) as http:
        assert (await http.get("/metrics")).status_code == 404


async def test_metrics_token_guards_the_scrape() -> None:
    """With metrics_token, /metrics answers 401 unless the Bearer token matches."""
    gateway = Gateway([observed_service("bench")], registry=Registry(telemetry=Telemetry()),
                      metrics=MetricsSettings(token="s3cret"))
    async with running_app(gateway) as url, httpx.AsyncClient(base_url=url) as http:
        assert (await http.get("/metrics")).status_code == 401
        wrong = await http.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        right = await http.get("/metrics", headers={"Authorization": "Bearer s3cret"})
        assert right.status_code == 200
        # the scheme is case-insensitive, as in the admin check (one parser for both)
        for header in ("bearer s3cret", "BEARER  s3cret"):
            lower = await http.get("/metrics", headers={"Authorization": header})
            assert lower.status_code == 200, header
        assert (await http.get("/metrics", headers={"Authorization": "Basic s3cret"})
                ).status_code == 401
        assert "genapi_requests_total" in right.text or "genapi_requests" in right.text


async def test_async_and_stream_calls_count_their_terminal_outcome() -> None:
    """A stream counts when it ends: completed → success="true"; cancelled or failed →
    success="false" (not the success of its init); async calls likewise."""
    import asyncio

    from genapi import ApiError, Response, Service

    svc = Service("s")

    @svc.function(response_type="stream", timeout=None)
    async def ticks(count: int, fail: bool = False) -> AsyncIterator[int]:
        for n in range(count):
            yield n
            await asyncio.sleep(0.01)
        if fail:
            raise ApiError("broke")

    @svc.function(response_type="async")
    async def later(fail: bool = False) -> int:
        if fail:
            raise ApiError("no")
        return 1

    registry = Registry(telemetry=Telemetry())
    registry.add_service(svc)
    executor = Executor(registry)
    exporter = PrometheusExporter(executor=executor, offload=False)
    ended: list[Response] = []

    async def sink(response: Response) -> None:
        if not response.has_more:
            ended.append(response)

    def request(rid: str, request_type: str, **args: object) -> Request:
        return Request(request_id=rid, service="s", request_type=request_type, args=args)

    await executor.execute(request("done", "ticks", count=2), sink)
    await executor.execute(request("failed", "ticks", count=1, fail=True), sink)
    await executor.execute(request("cancelled", "ticks", count=1000), sink)
    await asyncio.sleep(0.03)
    executor.cancel("cancelled")
    await executor.execute(request("ok", "later"), sink)
    await executor.execute(request("no", "later", fail=True), sink)
    async with asyncio.timeout(5):
        while len(ended) < 5:
            await asyncio.sleep(0.01)
    found = samples(exporter)
    stream = {"service": "s", "request_type": "ticks"}
    assert value(found, "genapi_requests_total", **stream, success="true") == 1
    assert value(found, "genapi_requests_total", **stream, success="false") == 2
    later_labels = {"service": "s", "request_type": "later"}
    assert value(found, "genapi_requests_total", **later_labels, success="true") == 1
    assert value(found, "genapi_requests_total", **later_labels, success="false") == 1
    exporter.close()
    await executor.aclose()


async def test_durable_calls_are_counted_and_the_queue_read_at_scrape(tmp_path: Path) -> None:
    """A gateway with durable calls and metrics counts each call's steps by service and
    shows the queue's gauges (as last sampled)."""
    jobs = Service("jobs", response_type="async", durable=True)

    @jobs.function()
    async def add(a: int, b: int) -> int:
        return a + b

    gateway = Gateway([jobs], metrics=True,
                      registry=Registry(telemetry=Telemetry()),
                      durable=DurableSettings(url=f"sqlite:///{tmp_path / 'jobs.db'}",
                                              stats_interval=0.05, poll_interval=0.05))
    async with running_app(gateway) as url:
        socket = url.replace("http://", "ws://") + "/socket"
        async with Client(socket, params={"user_id": "u1"}) as client, \
                httpx.AsyncClient(base_url=url) as http:
            assert await client.call("jobs", "add", {"a": 1, "b": 2}) == 3
            found: Samples = {}
            for _ in range(100):  # the exporter counts off the loop; the queue is sampled
                found = samples(text=(await http.get("/metrics")).text)
                if value(found, "genapi_durable_calls_total", outcome="succeeded",
                         service="jobs") == 1 and value(
                        found, "genapi_durable_queue", state="succeeded") == 1:
                    break
                await asyncio.sleep(0.05)
        assert value(found, "genapi_durable_calls_total", outcome="enqueued",
                     service="jobs") == 1
        assert value(found, "genapi_durable_calls_total", outcome="started",
                     service="jobs") == 1
        assert value(found, "genapi_durable_calls_total", outcome="succeeded",
                     service="jobs") == 1
        assert value(found, "genapi_durable_queue", state="succeeded") == 1
        assert value(found, "genapi_durable_queue", state="pending") == 0
        assert value(found, "genapi_durable_deliveries_total") == 1
        assert value(found, "genapi_durable_running") == 0
