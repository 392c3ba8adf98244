"""A gateway's optional parts, built from their settings: each brings routes and runs
while the gateway runs (the Prometheus exporter, the tracer, the admin console).

The observability parts are imported only when asked for, so a gateway without them
loads neither prometheus-client's exporter code nor OpenTelemetry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from starlette.routing import BaseRoute, Route

from ..execution.executor import Executor
from .settings import GatewayStats, MetricsSettings, TracingSettings

if TYPE_CHECKING:
    from ..observability.metrics import PrometheusExporter
    from ..observability.tracing import RequestTracer

__all__ = ["GatewayPart", "MetricsPart", "TracingPart"]


class GatewayPart(Protocol):
    """An optional piece of a gateway."""

    def routes(self) -> Sequence[BaseRoute]:
        """Routes the gateway serves for this part."""

    def start(self) -> None:
        """Begin work (the gateway is starting; again after a stop)."""

    def stop(self) -> None:
        """End work (the gateway stopped)."""


class MetricsPart:
    """Prometheus metrics at ``GET /metrics``."""

    def __init__(self, settings: MetricsSettings, executor: Executor,
                 stats: GatewayStats) -> None:
        from ..observability.metrics import DEFAULT_BUCKETS, PrometheusExporter

        self.exporter: PrometheusExporter = PrometheusExporter(
            executor=executor, stats=stats, buckets=settings.buckets or DEFAULT_BUCKETS,
            max_series=settings.max_series)
        self._token = settings.token

    def routes(self) -> Sequence[BaseRoute]:
        """``GET /metrics``, behind the scrape token when one is set."""
        from ..observability.metrics import metrics_endpoint

        return [Route("/metrics", metrics_endpoint(self.exporter, self._token),
                      methods=["GET"])]

    def start(self) -> None:
        """Count again (after a stop)."""
        self.exporter.attach()

    def stop(self) -> None:
        """Stop counting (the counts are kept)."""
        self.exporter.close()


class TracingPart:
    """An OpenTelemetry span per call."""

    def __init__(self, settings: TracingSettings, executor: Executor) -> None:
        from ..observability.tracing import RequestTracer

        self.tracer: RequestTracer = RequestTracer(
            executor=executor, sample_rate=settings.sample_rate,
            tracer_provider=settings.tracer_provider)

    def routes(self) -> Sequence[BaseRoute]:
        """None: spans are exported by the OpenTelemetry SDK."""
        return ()

    def start(self) -> None:
        """Trace again (after a stop)."""
        self.tracer.attach()

    def stop(self) -> None:
        """Stop tracing; flush the queued spans."""
        self.tracer.close()
