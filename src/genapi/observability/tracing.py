"""OpenTelemetry spans for genapi calls, one per request, built from telemetry events.

::

    gateway = genapi.Gateway([users], tracing=True)   # needs opentelemetry-api
    # or: tracer = RequestTracer(executor=executor, tracer_provider=provider)

genapi does not depend on OpenTelemetry: enabling tracing without ``opentelemetry-api``
raises :class:`TracingUnavailable`. Spans go to the global tracer provider (or the one
given); without an SDK configured they are no-ops.

Each span is named ``"{service}.{request_type}"``, of kind ``SERVER``, and carries
``rpc.system="genapi"``, ``genapi.service``, ``genapi.request_type``, ``genapi.request_id``,
``genapi.version`` (when the request named one), ``genapi.success``, ``genapi.async`` and,
on failure, ``genapi.error`` plus an ``ERROR`` status. A function that raised adds an
``exception`` event (``exception.type``, ``exception.message``).

The span is created as the request ends (the executor's request observer, or the
``executor.request.stop`` event), with the start time the executor measured: one call per
request, no map of open spans, and no pairing by request id — ids are chosen by clients,
so two clients may well use the same one at once. The end is seen in the task that ran the
request, so the span's parent is whatever span is current there (an ASGI middleware's,
for example).

Cost: the OpenTelemetry SDK takes tens of microseconds to record one span — as much as
the rest of a call — so by default (``offload=True``) spans are made on an
:class:`~genapi.OffloadingHandler` worker thread: the request path only decides sampling,
notes the end time, the current OpenTelemetry context (the parent) and queues. Spans then
reach the SDK up to 50 ms late (:meth:`RequestTracer.flush` waits for them); past 10,000
queued requests, spans are dropped and counted (:attr:`RequestTracer.dropped`).
``sample_rate`` samples before anything is queued: a request that is not sampled costs a
random draw and a context lookup (well under a microsecond). A sampled
parent span is always followed, as OpenTelemetry's ``ParentBased`` sampler does; the SDK's
own sampler still applies to what is passed on.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from ..errors import ConfigError, TracingUnavailable
from ..telemetry.events import EXECUTOR_EXCEPTION, EXECUTOR_STOP, Telemetry, default_telemetry
from ..telemetry.handlers import OffloadSlot

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import TracerProvider

    from ..execution.executor import Executor
    from ..messages import Request, Response

__all__ = ["RequestTracer", "TracingUnavailable"]

INSTRUMENTATION_NAME: Final = "genapi"


_SPAN: Final[Mapping[str, Any]] = {}


class _Span(dict[str, Any]):
    """What the worker needs to make one span (a Mapping, to travel as event metadata)."""

    __slots__ = ("end", "exception", "metadata", "parent", "start")

    def __init__(self, metadata: Mapping[str, Any], start: int, end: int,
                 parent: Context | None, exception: tuple[str, str, str] | None) -> None:
        super().__init__()
        self.metadata = metadata
        self.start = start
        self.end = end
        self.parent = parent
        self.exception = exception


class RequestTracer:
    """Turns finished requests into OpenTelemetry spans.

    With ``executor`` (what ``Gateway(tracing=True)`` does) the tracer is a request
    observer of the executor: a request that is not sampled costs one call and a random
    draw, and nothing is built for it. Without, it listens to the ``executor.request.*``
    events of ``telemetry`` (each request then builds its stop event).

    ``sample_rate`` (0 to 1) is the share of requests without a current parent span that
    get one; ``rng`` returns floats in [0, 1) (inject a fake one in tests); ``offload``
    makes the spans on a worker thread (the default) instead of inline. It attaches
    itself at once; :meth:`close` detaches it and flushes the queued spans.
    """

    def __init__(self, telemetry: Telemetry | None = None, *,
                 executor: Executor | None = None,
                 tracer_provider: TracerProvider | None = None, sample_rate: float = 1.0,
                 rng: Callable[[], float] = random.random, offload: bool = True) -> None:
        if not 0.0 <= sample_rate <= 1.0:
            raise ConfigError("sample_rate must be between 0 and 1")
        try:
            from opentelemetry import context, trace
        except ImportError as exc:
            raise TracingUnavailable(
                "tracing needs OpenTelemetry: pip install opentelemetry-api "
                "(and opentelemetry-sdk, or another SDK, to export the spans)"
            ) from exc
        from .._version import __version__

        if telemetry is None:
            telemetry = executor.telemetry if executor is not None else default_telemetry
        self.telemetry = telemetry
        self.executor = executor
        self.tracer = trace.get_tracer(INSTRUMENTATION_NAME, __version__,
                                       tracer_provider=tracer_provider)
        self.handler_id = f"genapi-tracing-{id(self):x}"
        self.sample_rate = sample_rate
        self._rng = rng
        self._trace = trace
        self._context = context
        self._get_context = context.get_current
        self._server = trace.SpanKind.SERVER
        # The last function exception, kept until the stop event of the same request,
        # which the executor emits right after it in the same task.
        self._exception: tuple[str, str, str] | None = None
        self.offload = offload
        self._offload = OffloadSlot(self._make_span, name="genapi-tracing")
        self.attach()

    def attach(self) -> None:
        """Subscribe to the executor's request events (idempotent)."""
        if self.offload:
            self._offload.open()
        if self.executor is not None:
            self.executor.add_request_observer(self._observe)
        else:
            self.telemetry.attach(f"{self.handler_id}-stop", EXECUTOR_STOP, self._on_stop)
        self.telemetry.attach(f"{self.handler_id}-exception", EXECUTOR_EXCEPTION,
                              self._on_exception)

    def detach(self) -> None:
        """Stop making spans (:meth:`attach` resumes). Ended spans stay with the provider."""
        if self.executor is not None:
            self.executor.remove_request_observer(self._observe)
        self.telemetry.detach(f"{self.handler_id}-stop")
        self.telemetry.detach(f"{self.handler_id}-exception")

    def close(self) -> None:
        """Detach from the telemetry; make the queued spans, then stop the worker thread."""
        self.detach()
        self._offload.close()

    def flush(self, timeout: float | None = 5.0) -> bool:
        """Wait until the queued spans are made (always True when tracing inline)."""
        return self._offload.flush(timeout)

    @property
    def dropped(self) -> int:
        """Spans not made because the offloading queue was full."""
        return self._offload.dropped

    def _on_exception(self, event: str, measurements: Mapping[str, Any],
                      metadata: Mapping[str, Any]) -> None:
        self._exception = (str(metadata.get("request_id")), str(metadata.get("kind")),
                           str(metadata.get("reason")))

    def _observe(self, request: Request, response: Response | None, known: bool,
                 duration_us: int) -> None:
        # The executor's request observer: nothing is built for a request not sampled, and
        # the usual case (not drawn, no OpenTelemetry context at all) makes no other call.
        rate = self.sample_rate
        if rate < 1.0 and self._rng() >= rate and (
                not self._get_context() or not self._parent_sampled()):
            self._exception = None
            return
        self._end_span({
            "request_id": request.request_id, "service": request.service,
            "request_type": request.request_type, "version": request.version,
            "success": response.success if response is not None else True,
            "async": response.async_ if response is not None else False,
            "error": response.error if response is not None else None,
        }, duration_us)

    def _on_stop(self, event: str, measurements: Mapping[str, Any],
                 metadata: Mapping[str, Any]) -> None:
        if self.sample_rate < 1.0 and not self._sampled():
            self._exception = None
            return
        self._end_span(metadata, int(measurements.get("duration_us", 0)))

    def _end_span(self, metadata: Mapping[str, Any], duration_us: int) -> None:
        exception, self._exception = self._exception, None
        end = time.time_ns()
        start = end - duration_us * 1000
        if exception is not None and exception[0] != metadata["request_id"]:
            exception = None
        # The parent is the span current here, in the request's task: captured now.
        parent = self._context.get_current() or None
        offloader = self._offload.handler
        if offloader is not None:
            offloader(EXECUTOR_STOP, _SPAN, _Span(metadata, start, end, parent, exception))
        else:
            self._span(metadata, start, end, parent, exception)

    def _make_span(self, event: str, measurements: Mapping[str, Any],
                   span: Mapping[str, Any]) -> None:
        assert isinstance(span, _Span)
        self._span(span.metadata, span.start, span.end, span.parent, span.exception)

    def _span(self, metadata: Mapping[str, Any], start: int, end: int,
              parent: Context | None, exception: tuple[str, str, str] | None) -> None:
        service = metadata["service"]
        request_type = metadata["request_type"]
        success = bool(metadata["success"])
        attributes: dict[str, Any] = {
            "rpc.system": "genapi",
            "genapi.service": service,
            "genapi.request_type": request_type,
            "genapi.request_id": metadata["request_id"],
            "genapi.success": success,
            "genapi.async": bool(metadata.get("async")),
        }
        version = metadata.get("version")
        if version:
            attributes["genapi.version"] = version
        error = metadata.get("error")
        if error:
            attributes["genapi.error"] = error
        span = self.tracer.start_span(
            f"{service}.{request_type}", context=parent, kind=self._server,
            attributes=attributes, start_time=start,
        )
        if not success:
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, error or None))
        if exception is not None:
            span.add_event("exception", {"exception.type": exception[1],
                                         "exception.message": exception[2]}, timestamp=end)
        span.end(end_time=end)

    def _sampled(self) -> bool:
        if self._rng() < self.sample_rate:
            return True  # the SDK's sampler still sees the parent, if any
        # Not drawn, but a sampled parent is followed (as ParentBased does). Most requests
        # carry no OpenTelemetry context at all, which is cheap to see.
        return bool(self._get_context()) and self._parent_sampled()

    def _parent_sampled(self) -> bool:
        parent = self._trace.get_current_span().get_span_context()
        return parent.is_valid and bool(parent.trace_flags.sampled)
