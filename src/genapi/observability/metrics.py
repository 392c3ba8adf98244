"""Prometheus metrics fed by genapi's telemetry, served as text at ``GET /metrics``.

::

    gateway = genapi.Gateway([users], metrics=True)        # adds GET /metrics
    # or, by hand, for an executor or another app:
    exporter = PrometheusExporter(executor=executor)
    body = exporter.exposition()

Metrics (each exporter has its own ``CollectorRegistry``, never prometheus-client's global
one, so several gateways in one process do not clash):

========================================  =========  ==================================
name                                      type       labels
========================================  =========  ==================================
genapi_requests_total                     counter    service, request_type, success
genapi_request_duration_seconds           histogram  service, request_type, success
genapi_rate_limited_total                 counter    scope (``global`` or ``svc.type``)
genapi_relay_messages_total               counter    —
genapi_relay_deliveries_total             counter    — (one per recipient)
genapi_node_up                            gauge      node (1 up, 0 silent)
genapi_pool_size / _idle / _busy /        gauge      pool (``async``, ``stream``)
genapi_pool_queued
genapi_pool_tasks_total                   counter    pool, outcome (executed, rejected,
                                                     cancelled)
genapi_pool_task_failures_total           counter    pool
genapi_breaker_state                      gauge      name (``pool:async`` … or a node);
                                                     0 closed, 1 half-open, 2 open
genapi_connections_open                   gauge      — (with a gateway's stats)
genapi_connections_total,                 counter    — (likewise, one per field of
genapi_slow_consumers_closed_total, …                :class:`~genapi.gateway.GatewayStats`)
genapi_process_loop_lag_seconds           gauge      — the event loop's last measured lag
genapi_process_loop_lag_max_seconds       gauge      — its worst over the health window
genapi_process_asyncio_tasks              gauge      — asyncio tasks alive
genapi_process_threads                    gauge      — threads alive
========================================  =========  ==================================

The process's memory, CPU time and file descriptors (``process_resident_memory_bytes``,
``process_cpu_seconds_total``, ``process_open_fds``, ``process_max_fds``, …) and GC
counts (``python_gc_collections_total``, ``python_gc_objects_collected_total``, …) come
from prometheus-client's own ``ProcessCollector`` and ``GCCollector``, registered on each
exporter's registry under their standard names (not duplicated as ``genapi_*``). The
``genapi_process_*`` gauges need the gateway's process probe (:attr:`process`).

Durations are measured by the executor up to a request's answer: the result or error of a
sync call; for async and stream calls their *terminal* Response (the final result, the
last chunk or end, or the error — a cancelled stream counts as ``success="false"``); a
fire-and-forget call's acceptance. ``success`` is ``"true"`` or ``"false"``. Calls to
functions the registry does not know are counted under ``service="_unknown"`` (clients
choose those names: they must not mint series), and past ``max_series`` functions new
ones go to ``"_other"``.

Cost on the request path. Request counts and durations are counted by the executor itself
into the exporter's :class:`~genapi.telemetry.histograms.RequestHistograms`
(:meth:`~genapi.Executor.attach_histograms`), inline: per request one identity-keyed dict
lookup, one ``bisect`` and two integer additions on plain lists — no call, no event, no
lock, no I/O, memory bounded by the functions registered. Every other event (rate-limit
rejections, relay messages, nodes) reaches the exporter through an
:class:`~genapi.OffloadingHandler` (``offload=True``, the default): one ``deque.append``
where it is emitted, counted in batches on a worker thread; past 10,000 queued events,
events are dropped and counted in ``genapi_metrics_dropped_events_total``. (An exporter
built over a bare ``Telemetry``, without an executor, counts requests from
``executor.request.stop`` events the same way.) ``offload=False`` counts those events
inline instead. Pools, breakers and connection counts are read only when scraped; the
``/metrics`` endpoint first waits (off the event loop) until the events queued so far are
counted.

Why not offload the request counts too: under the GIL a worker thread's CPU is taken from
the event loop, and handing batches to it costs more than the counting it moves (on the
socket path, ~6 µs per call offloaded; ``bench/exporters.py``), while counting inline
costs about a quarter of a microsecond.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    GCCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from ..durable import events as durable_events
from ..execution.breaker import BreakerState
from ..telemetry.events import EXECUTOR_STOP, Telemetry, default_telemetry
from ..telemetry.handlers import OffloadSlot
from ..telemetry.histograms import RequestHistograms

if TYPE_CHECKING:
    from starlette.requests import Request as HttpRequest
    from starlette.responses import Response as HttpResponse

    from ..execution.executor import Executor
    from ..functions.registry import Registry

__all__ = ["CONTENT_TYPE", "DEFAULT_BUCKETS", "Counters", "PrometheusExporter",
           "metrics_endpoint"]

#: The media type of :meth:`PrometheusExporter.exposition` (Prometheus text format 0.0.4).
CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
#: Histogram upper bounds in seconds: 0.1 ms … 10 s.
DEFAULT_BUCKETS: Final = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                          0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# Subscribed by name: the relay and cluster packages register these when they are imported.
RATE_LIMITED: Final = "rate_limiter.exceeded"
RELAY_SENT: Final = "relay.message.sent"
NODE_UP: Final = "node.up"
NODE_DOWN: Final = "node.down"

_LABELS: Final = ("service", "request_type", "success")
_BREAKER_VALUE: Final = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1,
                         BreakerState.OPEN: 2}
_STATS_HELP: Final = {
    "connections_total": "WebSockets accepted.",
    "connections_refused": "WebSocket upgrades refused (auth, vsn, rate, drain).",
    "slow_consumers_closed": "Connections closed because the client stopped reading.",
    "idle_closed": "Connections closed after missed heartbeats.",
}


class Counters(Protocol):
    """Counters that read as a plain dict (a gateway's
    :class:`~genapi.gateway.GatewayStats`)."""

    def as_dict(self) -> dict[str, int]:
        """The counters by name."""


class PrometheusExporter:
    """Collects genapi's metrics from ``telemetry`` and exposes them in :attr:`registry`.

    ``executor`` supplies the telemetry (unless given), the registry used to tell known
    functions from unknown ones, and the pool and breaker states read at scrape time;
    ``stats`` (a gateway's :class:`~genapi.gateway.GatewayStats`) the connection counters.
    The exporter attaches itself at once; :meth:`close` detaches it.
    """

    def __init__(
        self,
        telemetry: Telemetry | None = None,
        *,
        executor: Executor | None = None,
        stats: Counters | None = None,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
        max_series: int = 1000,
        offload: bool = True,
    ) -> None:
        if telemetry is None:
            telemetry = executor.telemetry if executor is not None else default_telemetry
        self.histograms = RequestHistograms(buckets, max_series=max_series)
        self.telemetry = telemetry
        self.executor = executor
        self.stats = stats
        self.max_series = max_series
        self.handler_id = f"genapi-prometheus-{id(self):x}"
        self.registry = CollectorRegistry(auto_describe=False)
        self._functions: Registry | None = executor.registry if executor is not None else None
        self._rate_limited: dict[str, int] = {}
        self._relay_messages = 0
        self._relay_deliveries = 0
        self._nodes: dict[str, int] = {}
        self._durable: dict[tuple[str, str], int] = {}  # (outcome, service) -> count
        self._durable_delivered = 0
        self._webhooks: dict[str, int] = {}
        #: The durable queue's gauges (a gateway's ``durable.queue_stats``), read at scrape.
        self.durable_queue: Callable[[], Mapping[str, float]] | None = None
        #: The process probe's figures (a gateway's ``process_health.snapshot``), read at
        #: scrape for the loop lag, tasks and threads.
        self.process: Callable[[], Mapping[str, Any]] | None = None
        self._handlers: dict[str, Callable[[str, Mapping[str, Any], Mapping[str, Any]], None]] = {
            EXECUTOR_STOP: self._on_request,
            RATE_LIMITED: self._on_rate_limited,
            RELAY_SENT: self._on_relay_sent,
            NODE_UP: self._on_node,
            NODE_DOWN: self._on_node,
            **dict.fromkeys(_DURABLE_OUTCOMES, self._on_durable_call),
            durable_events.DELIVERED: self._on_durable_delivered,
            durable_events.WEBHOOK_SENT: self._on_webhook,
            durable_events.WEBHOOK_FAILED: self._on_webhook,
        }
        self.offload = offload
        self._offload = OffloadSlot(self._dispatch, name="genapi-prometheus")
        self.registry.register(self)
        ProcessCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.attach()

    # -- lifecycle ------------------------------------------------------------------------

    def attach(self) -> None:
        """Subscribe to the telemetry events (idempotent; also after :meth:`close`)."""
        handlers = dict(self._handlers)
        if self.executor is not None:
            del handlers[EXECUTOR_STOP]  # counted inline by the executor: no event
            self.executor.attach_histograms(self.histograms)
        if self.offload:
            self.telemetry.attach(self.handler_id, list(handlers), self._offload.open())
            return
        for event, handler in handlers.items():
            # One id per event: the telemetry then calls the bound method directly.
            self.telemetry.attach(f"{self.handler_id}-{event}", event, handler)

    def detach(self) -> None:
        """Stop counting (the counts are kept; :meth:`attach` resumes)."""
        if self.executor is not None:
            self.executor.detach_histograms(self.histograms)
        self.telemetry.detach(self.handler_id)
        for event in self._handlers:
            self.telemetry.detach(f"{self.handler_id}-{event}")

    def close(self) -> None:
        """Detach, and stop the offloading thread after it handled what is queued."""
        self.detach()
        self._offload.close()

    def flush(self, timeout: float | None = 5.0) -> bool:
        """Wait until offloaded events are counted (always True when updating inline)."""
        return self._offload.flush(timeout)

    def exposition(self) -> bytes:
        """The metrics in the Prometheus text format (:data:`CONTENT_TYPE`)."""
        return generate_latest(self.registry)

    # -- the request path -------------------------------------------------------------------

    def _on_request(self, event: str, measurements: Mapping[str, Any],
                    metadata: Mapping[str, Any]) -> None:
        service, request_type = metadata["service"], metadata["request_type"]
        self.histograms.record(
            service, request_type, bool(metadata["success"]),
            int(measurements["duration_us"]) * 1000,
            known=self._known(service, request_type, metadata.get("version")))

    def _known(self, service: str, request_type: str, version: str | None) -> bool:
        functions = self._functions
        if functions is None:
            return True
        if (service, request_type, version) in functions:
            return True
        try:
            return functions.get_latest(service, request_type) is not None
        except RuntimeError:  # changed meanwhile on the loop's thread (we may be offloaded)
            return False

    def _on_rate_limited(self, event: str, measurements: Mapping[str, Any],
                         metadata: Mapping[str, Any]) -> None:
        scope = metadata.get("scope")
        label = ".".join(scope) if isinstance(scope, tuple) else str(scope)
        self._rate_limited[label] = self._rate_limited.get(label, 0) + 1

    def _on_relay_sent(self, event: str, measurements: Mapping[str, Any],
                       metadata: Mapping[str, Any]) -> None:
        self._relay_messages += 1
        self._relay_deliveries += int(measurements.get("recipients", 0))

    def _on_node(self, event: str, measurements: Mapping[str, Any],
                 metadata: Mapping[str, Any]) -> None:
        node = str(metadata.get("node"))
        if event == NODE_UP:
            self._nodes[node] = 1
        elif metadata.get("reason") == "left":
            self._nodes.pop(node, None)  # gone for good: its series goes too
        else:
            self._nodes[node] = 0

    def _on_durable_call(self, event: str, measurements: Mapping[str, Any],
                         metadata: Mapping[str, Any]) -> None:
        # Stored calls name registered functions only (checked at submission): the
        # services are as few as the registry's.
        key = (_DURABLE_OUTCOMES[event], str(metadata.get("service")))
        self._durable[key] = self._durable.get(key, 0) + 1

    def _on_durable_delivered(self, event: str, measurements: Mapping[str, Any],
                              metadata: Mapping[str, Any]) -> None:
        self._durable_delivered += int(measurements.get("count", 1))

    def _on_webhook(self, event: str, measurements: Mapping[str, Any],
                    metadata: Mapping[str, Any]) -> None:
        outcome = "sent" if event == durable_events.WEBHOOK_SENT else "failed"
        self._webhooks[outcome] = self._webhooks.get(outcome, 0) + 1

    def _dispatch(self, event: str, measurements: Mapping[str, Any],
                  metadata: Mapping[str, Any]) -> None:
        self._handlers[event](event, measurements, metadata)

    # -- scrape time --------------------------------------------------------------------

    def collect(self) -> Iterable[Metric]:
        """Build every metric family from the current counts (prometheus-client calls it)."""
        yield from self._collect_requests()
        limited = CounterMetricFamily("genapi_rate_limited", "Requests rejected by a rate "
                                      "limit.", labels=["scope"])
        for scope, count in list(self._rate_limited.items()):
            limited.add_metric([scope], count)
        yield limited
        yield CounterMetricFamily("genapi_relay_messages", "Messages sent to relay groups.",
                                  value=self._relay_messages)
        yield CounterMetricFamily("genapi_relay_deliveries", "Relay messages handed to "
                                  "recipients (one per member reached).",
                                  value=self._relay_deliveries)
        nodes = GaugeMetricFamily("genapi_node_up", "1 while a service node is heard from, "
                                  "0 once silent.", labels=["node"])
        for node, up in list(self._nodes.items()):
            nodes.add_metric([node], up)
        yield nodes
        if self.executor is not None:
            yield from self._collect_pools(self.executor.pool_status())
        yield from self._collect_durable()
        yield from self._collect_process()
        if self.stats is not None:
            yield from _collect_stats(self.stats.as_dict())
        if self.offload:
            dropped = self._offload.dropped
            yield CounterMetricFamily("genapi_metrics_dropped_events", "Telemetry events the "
                                      "offloading exporter dropped (queue full).",
                                      value=dropped)

    def _collect_requests(self) -> Iterator[Metric]:
        total = CounterMetricFamily("genapi_requests", "Requests answered, by function and "
                                    "outcome.", labels=list(_LABELS))
        durations = HistogramMetricFamily(
            "genapi_request_duration_seconds",
            "Time from a request's arrival to its first answer.", labels=list(_LABELS))
        bounds = [_le(b) for b in self.histograms.bounds_s] + ["+Inf"]
        for service, request_type, success, series in self.histograms.snapshot():
            labels = [service, request_type, "true" if success else "false"]
            cumulative = list(itertools.accumulate(series[1:]))
            total.add_metric(labels, cumulative[-1])
            durations.add_metric(labels, list(zip(bounds, cumulative, strict=True)),
                                 sum_value=series[0] / 1e9)
        yield total
        yield durations

    def _collect_durable(self) -> Iterator[Metric]:
        calls = CounterMetricFamily("genapi_durable_calls", "Durable calls by what happened "
                                    "to them (enqueued, started, succeeded, failed, retry, "
                                    "dead, cancelled, lease_lost) and service.",
                                    labels=["outcome", "service"])
        for (outcome, service), count in list(self._durable.items()):
            calls.add_metric([outcome, service], count)
        yield calls
        yield CounterMetricFamily("genapi_durable_deliveries", "Terminal responses of "
                                  "durable calls that reached their callers.",
                                  value=self._durable_delivered)
        webhooks = CounterMetricFamily("genapi_durable_webhooks", "Completion webhook "
                                       "deliveries by outcome.", labels=["outcome"])
        for outcome, count in list(self._webhooks.items()):
            webhooks.add_metric([outcome], count)
        yield webhooks
        if self.durable_queue is None:
            return
        stats = dict(self.durable_queue())
        oldest = stats.pop("oldest_due_age_s", 0.0)
        running_here = stats.pop("running_here", 0.0)
        queue = GaugeMetricFamily("genapi_durable_queue", "Durable calls in the store by "
                                  "state (retrying: pending after a failed attempt), as "
                                  "last sampled.", labels=["state"])
        for state, in_state in stats.items():
            queue.add_metric([state], in_state)
        yield queue
        yield GaugeMetricFamily("genapi_durable_oldest_due_age_seconds", "How long the "
                                "oldest due call has waited to be claimed (0: none due).",
                                value=oldest)
        yield GaugeMetricFamily("genapi_durable_running", "Durable calls this gateway's "
                                "workers run now.", value=running_here)

    def _collect_process(self) -> Iterator[Metric]:
        if self.process is None:
            return
        figures = self.process()
        yield GaugeMetricFamily("genapi_process_loop_lag_seconds", "How late the event "
                                "loop ran its last health timer.",
                                value=figures.get("loop_lag_ms", 0.0) / 1000)
        yield GaugeMetricFamily("genapi_process_loop_lag_max_seconds", "The event loop's "
                                "worst lag over the health window.",
                                value=figures.get("loop_lag_max_ms", 0.0) / 1000)
        tasks = figures.get("asyncio_tasks")
        if tasks is not None:
            yield GaugeMetricFamily("genapi_process_asyncio_tasks", "asyncio tasks alive.",
                                    value=tasks)
        yield GaugeMetricFamily("genapi_process_threads", "Threads alive.",
                                value=figures.get("threads", 0))

    def _collect_pools(self, status: Mapping[str, Any]) -> Iterator[Metric]:
        gauges = {field: GaugeMetricFamily(f"genapi_pool_{field}", help_, labels=["pool"])
                  for field, help_ in (("size", "Workers a pool runs at most."),
                                       ("idle", "Workers free right now."),
                                       ("busy", "Workers running a task."),
                                       ("queued", "Tasks waiting for a worker."))}
        tasks = CounterMetricFamily("genapi_pool_tasks", "Tasks submitted, by how they ended.",
                                    labels=["pool", "outcome"])
        failures = CounterMetricFamily("genapi_pool_task_failures", "Executed tasks that "
                                       "raised.", labels=["pool"])
        breakers = GaugeMetricFamily("genapi_breaker_state", "Circuit breakers: 0 closed, "
                                     "1 half-open, 2 open.", labels=["name"])
        for pool in status.get("pools", {}).values():
            for field, gauge in gauges.items():
                gauge.add_metric([pool.name], getattr(pool, field))
            tasks.add_metric([pool.name, "executed"], pool.total_executed)
            tasks.add_metric([pool.name, "rejected"], pool.total_rejected)
            tasks.add_metric([pool.name, "cancelled"], pool.total_cancelled)
            failures.add_metric([pool.name], pool.total_failed)
            breakers.add_metric([f"pool:{pool.name}"], _BREAKER_VALUE[pool.breaker])
        for name, snapshot in status.get("nodes", {}).items():
            breakers.add_metric([name], _BREAKER_VALUE[snapshot.state])
        yield from gauges.values()
        yield tasks
        yield failures
        yield breakers


_DURABLE_OUTCOMES: Final = {
    event: event.rsplit(".", 1)[1]
    for event in (durable_events.ENQUEUED, durable_events.STARTED, durable_events.SUCCEEDED,
                  durable_events.FAILED, durable_events.RETRY, durable_events.DEAD,
                  durable_events.CANCELLED, durable_events.LEASE_LOST)
}


def _collect_stats(stats: Mapping[str, int]) -> Iterator[Metric]:
    for field, value in stats.items():
        if field == "connections_open":
            yield GaugeMetricFamily("genapi_connections_open", "WebSockets open now.",
                                    value=value)
        else:  # counters: prometheus-client adds the _total suffix
            help_ = _STATS_HELP.get(field, f"Gateway counter {field}.")
            yield CounterMetricFamily(f"genapi_{field}", help_, value=value)


def _le(bound: float) -> str:
    return repr(bound)  # shortest exact form: 0.0001, 0.25, 10.0


def metrics_endpoint(
    exporter: PrometheusExporter, token: str | None = None,
) -> Callable[[HttpRequest], Awaitable[HttpResponse]]:
    """A Starlette endpoint serving ``exporter``'s metrics.

    With ``token``, a scrape must present it as ``Authorization: Bearer <token>`` (compared
    in constant time); others get 401.
    """
    from starlette.responses import Response

    from ..security import bearer_credentials, secrets_equal

    async def endpoint(request: HttpRequest) -> HttpResponse:
        # the admin check's parser: "bearer", "BEARER" and extra spaces are accepted alike
        given = bearer_credentials(request.headers.get("authorization"))
        if not secrets_equal(token, given):
            return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
        # Count what is queued so far (in a thread: the loop keeps serving meanwhile).
        await asyncio.to_thread(exporter.flush, 1.0)
        return Response(exporter.exposition(), media_type=CONTENT_TYPE)

    return endpoint
