"""The telemetry events of durable calls (registered in the catalogue at import).

Every event's metadata names the call (``call_id``, ``service``, ``request_type``,
``request_id``, ``user_id``) unless said otherwise. A Prometheus exporter counts the
``durable.call.*`` events and reads the queue's gauges from
:meth:`genapi.durable.DurableCalls.queue_stats` (or the periodic ``durable.queue`` event).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..telemetry.events import Telemetry, register_event
from .calls import StoredCall

__all__ = [
    "CANCELLED",
    "DEAD",
    "DELIVERED",
    "ENQUEUED",
    "FAILED",
    "LEASE_LOST",
    "QUEUE",
    "RETRY",
    "STARTED",
    "SUCCEEDED",
    "WEBHOOK_FAILED",
    "WEBHOOK_SENT",
    "call_meta",
    "emit",
]

_CALL = ("call_id", "service", "request_type", "request_id", "user_id")

ENQUEUED = register_event(
    "durable.call.enqueued", ("duration_us",), (*_CALL, "created"),
    "A durable call was stored before its ack (created False: its idempotency key "
    "named a call already stored, which was answered instead).",
)
STARTED = register_event(
    "durable.call.started", ("attempt",), (*_CALL, "worker_id"),
    "A worker claimed a durable call and started an attempt.",
)
SUCCEEDED = register_event(
    "durable.call.succeeded", ("duration_us", "attempt"), _CALL,
    "A durable call's attempt succeeded and its result was recorded.",
)
FAILED = register_event(
    "durable.call.failed", ("duration_us", "attempt"), (*_CALL, "error", "retryable"),
    "An attempt of a durable call failed (a retry or the call's death follows).",
)
RETRY = register_event(
    "durable.call.retry", ("delay_s", "attempt"), _CALL,
    "A failed durable call was scheduled to run again after delay_s.",
)
DEAD = register_event(
    "durable.call.dead", ("attempts",), (*_CALL, "error"),
    "A durable call failed for good (out of attempts, or a non-retryable error); kept "
    "for an operator.",
)
CANCELLED = register_event(
    "durable.call.cancelled", (), (*_CALL, "by"),
    "A durable call was cancelled (by an operator, while pending or running).",
)
LEASE_LOST = register_event(
    "durable.call.lease_lost", ("attempt",), _CALL,
    "A worker lost its lease on a running call (it expired and another worker took the "
    "call); its attempt was abandoned without writing.",
)
DELIVERED = register_event(
    "durable.call.delivered", ("count",), ("how",),
    "Terminal responses of durable calls reached their callers: how is live (the calling "
    "connection or the user's), join (on joining a topic), sweep (finished elsewhere), "
    "duplicate (a repeated submission) or get_result.",
)
QUEUE = register_event(
    "durable.queue",
    ("pending", "running", "retrying", "succeeded", "dead", "cancelled", "oldest_due_age_s"),
    (),
    "A periodic snapshot of the durable queue (oldest_due_age_s is -1 when nothing is due).",
)
WEBHOOK_SENT = register_event(
    "durable.webhook.sent", ("duration_us", "status"), ("call_id", "url_host"),
    "A completion webhook was delivered (2xx).",
)
WEBHOOK_FAILED = register_event(
    "durable.webhook.failed", ("duration_us",), ("call_id", "url_host", "error", "retryable"),
    "A completion webhook delivery failed (refused by the SSRF guard, an error status, a "
    "redirect, a timeout).",
)


def call_meta(call: StoredCall) -> dict[str, Any]:
    """The metadata naming a call."""
    return {"call_id": call.id, "service": call.service, "request_type": call.request_type,
            "request_id": call.request_id, "user_id": call.user_id}


def emit(telemetry: Telemetry, event: str, measurements: Mapping[str, Any],
         metadata: Mapping[str, Any]) -> None:
    """Emit ``event`` when something listens (cheap otherwise)."""
    if event in telemetry.handled:
        telemetry.emit(event, measurements, metadata)
