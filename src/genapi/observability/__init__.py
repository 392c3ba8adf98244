"""Observability exporters: Prometheus metrics and OpenTelemetry spans from telemetry.

Both are fed by genapi's telemetry events (:mod:`genapi.telemetry`) and switched on per
gateway with ``Gateway(..., metrics=True, tracing=True)``. :mod:`.metrics` needs only
prometheus-client (a genapi dependency); :mod:`.tracing` imports OpenTelemetry only when a
:class:`RequestTracer` is created.
"""

from __future__ import annotations

from .metrics import CONTENT_TYPE, DEFAULT_BUCKETS, PrometheusExporter, metrics_endpoint
from .tracing import RequestTracer, TracingUnavailable

__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_BUCKETS",
    "PrometheusExporter",
    "RequestTracer",
    "TracingUnavailable",
    "metrics_endpoint",
]
