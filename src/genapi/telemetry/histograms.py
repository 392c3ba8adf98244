"""Request counts and duration histograms, filled by the executor as requests end.

An exporter hands a :class:`RequestHistograms` to :meth:`genapi.Executor.attach_histograms`;
from then on the executor counts every request into it *inline*, without calling anything:
one identity-keyed dict lookup of the request's route, one ``bisect`` and two integer
additions on plain lists. That is the cheapest way to count on the request path under the
GIL — cheaper than a per-request callback (:meth:`~genapi.Executor.add_request_observer`),
an event, or a hand-off to a thread. Scrapes read :meth:`RequestHistograms.snapshot`.

Series are keyed by (service, request_type, success). Requests naming no registered
function share one ``_unknown`` series (clients choose those names: they must not mint
series), and past ``max_series`` functions new ones share ``_other``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Hashable, Sequence
from typing import Final, Protocol

from ..errors import ConfigError

__all__ = ["OTHER", "UNKNOWN", "CountedRoute", "RequestHistograms", "Series"]

UNKNOWN: Final = "_unknown"
OTHER: Final = "_other"

class CountedRoute(Hashable, Protocol):
    """What a series is keyed by: a compiled route (its ``key`` starts with service and
    request type), hashed by identity."""

    @property
    def key(self) -> tuple[str, str, str | None]:
        """``(service, request_type, version)``."""


#: ``[sum of durations in ns, count per bucket …, count past the last bound]``.
Series = list[int]
#: A function's series indexed by ``success``: ``pair[False]`` failures, ``pair[True]`` successes.
SeriesPair = tuple[Series, Series]


class RequestHistograms:
    """Counts and duration histograms of requests by (service, request_type, success).

    ``bounds_s`` are the buckets' upper bounds in seconds (``le``: a duration equal to a
    bound falls in that bucket). Only the thread of the executor's event loop writes.
    """

    __slots__ = ("_series", "bounds_ns", "bounds_s", "by_route", "max_series", "unknown")

    def __init__(self, bounds_s: Sequence[float], *, max_series: int = 1000) -> None:
        bounds = sorted(float(b) for b in bounds_s if b != float("inf"))
        if not bounds:
            raise ConfigError("buckets must hold at least one finite upper bound")
        if max_series < 1:
            raise ConfigError("max_series must be at least 1")
        self.bounds_s = bounds
        self.bounds_ns = [round(b * 1e9) for b in bounds]
        self.max_series = max_series
        self._series: dict[tuple[str, str], SeriesPair] = {}
        #: The series of each route seen so far, read by the executor's inline counting. A
        #: cache: a function registered again gets a new route, whose entry then points to
        #: the same series.
        self.by_route: dict[CountedRoute, SeriesPair] = {}
        #: The series of requests naming no registered function.
        self.unknown = self._pair(UNKNOWN, UNKNOWN)

    def bind(self, route: CountedRoute) -> SeriesPair:
        """The series of ``route``, created on its first request."""
        service, request_type = route.key[0], route.key[1]
        if (service, request_type) not in self._series and len(self._series) > self.max_series:
            service = request_type = OTHER  # the first entry is _unknown's
        pair = self._pair(service, request_type)
        if len(self.by_route) >= 4 * self.max_series:
            self.by_route.clear()  # routes replaced many times over: forget the old ones
        self.by_route[route] = pair
        return pair

    def record(self, service: str, request_type: str, success: bool, duration_ns: int,
               *, known: bool = True) -> None:
        """Count one request by name (for counts that come from telemetry events)."""
        if not known:
            service = request_type = UNKNOWN
        elif (service, request_type) not in self._series and (
                len(self._series) > self.max_series):
            service = request_type = OTHER
        series = self._pair(service, request_type)[success]
        series[0] += duration_ns
        series[1 + bisect_left(self.bounds_ns, duration_ns)] += 1

    def snapshot(self) -> list[tuple[str, str, bool, Series]]:
        """Copies of every series that counted a request: (service, request_type, success,
        series)."""
        found = []
        for (service, request_type), pair in list(self._series.items()):
            for success in (True, False):
                series = list(pair[success])  # counts and sum consistent with each other
                if any(series[1:]):
                    found.append((service, request_type, success, series))
        return found

    def _pair(self, service: str, request_type: str) -> SeriesPair:
        pair = self._series.get((service, request_type))
        if pair is None:
            size = len(self.bounds_ns) + 2
            pair = self._series[service, request_type] = ([0] * size, [0] * size)
        return pair
