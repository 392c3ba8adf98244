"""What happens as each request ends: histograms, request observers and the stop event.

Kept apart from the pipeline so that a request with nobody watching pays one check.
:class:`RequestHistograms` are counted *inline*, without a call (see
:mod:`genapi.telemetry.histograms`); observers are called with
``(request, response, known, duration_us)``; the ``executor.request.stop`` event is emitted
only when a handler listens.

Async and stream calls are counted in the histograms when they *end*, with the outcome of
their terminal Response (a cancelled or failed stream is ``success=false``, however well it
started) and the time to it: :meth:`RequestEnd.count_at_end` wraps the call's sink.
"""

from __future__ import annotations

import logging
import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable
from typing import Any

from ..functions.routes import Route
from ..messages import Request, Response
from ..telemetry.events import EXECUTOR_STOP, Telemetry
from ..telemetry.histograms import RequestHistograms
from .pipeline import request_meta

__all__ = ["CountAtEnd", "RequestEnd", "RequestObserver"]

logger = logging.getLogger("genapi.executor")

#: ``observer(request, response, known, duration_us)``: see
#: :meth:`genapi.Executor.add_request_observer`.
RequestObserver = Callable[[Request, Response | None, bool, int], None]


class RequestEnd:
    """The histograms and observers a request's end is reported to."""

    __slots__ = ("histograms", "observers", "telemetry")

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry
        self.observers: tuple[RequestObserver, ...] = ()
        self.histograms: tuple[RequestHistograms, ...] = ()

    def report(self, request: Request, response: Response | None, route: Route | None,
               elapsed_ns: int, *, count: bool = True) -> None:
        """Count and announce one finished request (``route`` None: no such function;
        ``count`` False: the histograms count it later, see :meth:`count_at_end`)."""
        success = response.success if response is not None else True
        for counts in self.histograms if count else ():
            # Inline on purpose: the cheapest way to count on the request path (see
            # genapi.telemetry.histograms); a call per request would cost more.
            if route is None:
                pair = counts.unknown
            else:
                pair = counts.by_route.get(route) or counts.bind(route)
            series = pair[success]
            series[0] += elapsed_ns
            series[1 + bisect_left(counts.bounds_ns, elapsed_ns)] += 1
        duration_us = elapsed_ns // 1000
        for observe in self.observers:
            try:
                observe(request, response, route is not None, duration_us)
            except Exception:
                logger.exception("request observer %r failed", observe)
        telemetry = self.telemetry
        if EXECUTOR_STOP in telemetry.handled:
            meta = request_meta(request)
            meta["success"] = success
            meta["async"] = response.async_ if response is not None else False
            meta["error"] = response.error if response is not None else None
            telemetry.emit(EXECUTOR_STOP, {"duration_us": duration_us}, meta)

    def count(self, route: Route, success: bool, elapsed_ns: int) -> None:
        """Count one request that ended in the histograms."""
        for counts in self.histograms:
            pair = counts.by_route.get(route) or counts.bind(route)
            series = pair[success]
            series[0] += elapsed_ns
            series[1 + bisect_left(counts.bounds_ns, elapsed_ns)] += 1

    def count_at_end(self, sink: Callable[[Response], Awaitable[None]], route: Route,
                     started_ns: int) -> CountAtEnd:
        """``sink`` counting the call in the histograms at its terminal Response."""
        return CountAtEnd(self, sink, route, started_ns)

    def add_observer(self, observer: RequestObserver) -> None:
        """Call ``observer`` as each request ends (once, however often it is added)."""
        if observer not in self.observers:
            self.observers = (*self.observers, observer)

    def remove_observer(self, observer: RequestObserver) -> None:
        """Stop calling ``observer``."""
        self.observers = tuple(o for o in self.observers if o != observer)

    def attach(self, histograms: RequestHistograms) -> None:
        """Count every request into ``histograms`` (once, however often it is attached)."""
        if histograms not in self.histograms:
            self.histograms = (*self.histograms, histograms)

    def detach(self, histograms: RequestHistograms) -> None:
        """Stop counting into ``histograms`` (its counts are kept)."""
        self.histograms = tuple(h for h in self.histograms if h is not histograms)


class CountAtEnd:
    """The sink of an async or stream call that counts it when its terminal Response
    passes (the first one that is an error or has no more to come). Anything else is
    the wrapped sink's (a connection's topic sink keeps its attributes)."""

    __slots__ = ("_counted", "_end", "_route", "_sink", "_started_ns")

    def __init__(self, end: RequestEnd, sink: Callable[[Response], Awaitable[None]],
                 route: Route, started_ns: int) -> None:
        self._end = end
        self._sink = sink
        self._route = route
        self._started_ns = started_ns
        self._counted = False

    async def __call__(self, response: Response) -> None:
        if not self._counted and (not response.success or not response.has_more):
            self._counted = True
            self._end.count(self._route, response.success,
                            time.perf_counter_ns() - self._started_ns)
        await self._sink(response)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sink, name)
