"""RequestHistograms: what the executor counts into, and what exporters read."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from genapi import Executor, Registry, Request
from genapi.telemetry.events import Telemetry
from genapi.telemetry.histograms import OTHER, UNKNOWN, RequestHistograms
from tests.support.services import observed_service

BOUNDS = (0.001, 0.01, 0.1)


def executor() -> Executor:
    registry = Registry(telemetry=Telemetry())
    registry.add_service(observed_service())
    return Executor(registry)


def call(n: int, request_type: str = "echo", service_name: str = "svc") -> Request:
    args = {"n": n} if request_type == "echo" else {}
    return Request(request_id=f"r{n}", service=service_name, request_type=request_type,
                   args=args)


def counts(histograms: RequestHistograms) -> dict[tuple[str, str, bool], int]:
    return {(s, r, ok): sum(series[1:]) for s, r, ok, series in histograms.snapshot()}


async def test_the_executor_counts_requests_by_function_and_outcome() -> None:
    """Attached histograms count every request as it ends, successes and failures apart."""
    ex = executor()
    histograms = RequestHistograms(BOUNDS)
    ex.attach_histograms(histograms)
    for n in (1, 2, -1):
        await ex.execute(call(n))
    await ex.execute(call(0, request_type="nope", service_name="ghost"))
    assert counts(histograms) == {("svc", "echo", True): 2, ("svc", "echo", False): 1,
                                  (UNKNOWN, UNKNOWN, False): 1}
    series = next(s for svc, _, ok, s in histograms.snapshot() if svc == "svc" and ok)
    assert series[0] > 0  # the sum of durations, in ns
    await ex.aclose()


async def test_detached_histograms_keep_their_counts_and_count_no_more() -> None:
    ex = executor()
    histograms = RequestHistograms(BOUNDS)
    ex.attach_histograms(histograms)
    ex.attach_histograms(histograms)  # attaching twice counts once
    await ex.execute(call(1))
    ex.detach_histograms(histograms)
    await ex.execute(call(2))
    assert counts(histograms) == {("svc", "echo", True): 1}
    await ex.aclose()


async def test_a_function_registered_again_keeps_its_series() -> None:
    """A new route for the same function (registered again) counts into the same series."""
    ex = executor()
    histograms = RequestHistograms(BOUNDS)
    ex.attach_histograms(histograms)
    await ex.execute(call(1))
    ex.registry.add_service(observed_service())  # new Route objects
    await ex.execute(call(2))
    assert counts(histograms) == {("svc", "echo", True): 2}
    await ex.aclose()


async def test_functions_past_max_series_share_other() -> None:
    ex = executor()
    histograms = RequestHistograms(BOUNDS, max_series=1)
    ex.attach_histograms(histograms)
    await ex.execute(call(1))
    await ex.execute(call(2, request_type="other"))
    assert counts(histograms) == {("svc", "echo", True): 1, (OTHER, OTHER, True): 1}
    await ex.aclose()


def test_record_places_durations_by_upper_bound() -> None:
    """A duration equal to a bound falls in that bucket (Prometheus ``le``)."""
    histograms = RequestHistograms(BOUNDS)
    for ms in (0.5, 1, 2, 10, 500):
        histograms.record("s", "f", True, int(ms * 1_000_000))
    [(_, _, _, series)] = histograms.snapshot()
    assert series[1:] == [2, 2, 0, 1]
    assert series[0] == 513_500_000
    histograms.record("s", "f", False, 5, known=False)
    assert counts(histograms)[(UNKNOWN, UNKNOWN, False)] == 1


@given(st.lists(st.integers(min_value=0, max_value=10**12), max_size=50))
def test_every_recorded_duration_is_counted_once(durations: list[int]) -> None:
    histograms = RequestHistograms(BOUNDS)
    for duration in durations:
        histograms.record("s", "f", True, duration)
    found = histograms.snapshot()
    assert sum(sum(series[1:]) for *_, series in found) == len(durations)
    assert sum(series[0] for *_, series in found) == sum(durations)


def test_the_route_cache_is_bounded() -> None:
    """Routes are cached by identity; many replaced routes do not grow the cache for ever."""
    from genapi.functions.routes import Route

    histograms = RequestHistograms(BOUNDS, max_series=2)
    route = Registry(telemetry=Telemetry())
    route.add_service(observed_service())
    original = route.resolve("svc", "echo", None)
    for _ in range(20):
        clone = Route(original.config, original.key, original.response_type,
                      original.validator, original.permission)
        assert histograms.bind(clone) is histograms.bind(clone)
    assert len(histograms.by_route) <= 8
    assert len(histograms.snapshot()) == 0  # nothing counted yet


@pytest.mark.parametrize("bounds", [(), (float("inf"),)])
def test_buckets_need_a_finite_bound(bounds: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="finite upper bound"):
        RequestHistograms(bounds)


def test_max_series_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_series"):
        RequestHistograms(BOUNDS, max_series=0)
