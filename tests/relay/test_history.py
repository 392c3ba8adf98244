"""The bounded history: offsets, eviction by size and age, recovery answers."""

from __future__ import annotations

import pytest

from genapi.relay.history import History, RelayMessage, iso_timestamp


class Clock:
    """A settable clock (seconds)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def message(clock: Clock, text: str = "hi") -> RelayMessage:
    """A message sent now."""
    return RelayMessage(group_id="g", from_user_id="u", message=text,
                        timestamp=iso_timestamp(clock.now), sent_at=clock.now)


def offsets(history: History, after: int | None) -> tuple[list[int], bool, int]:
    """What since(after) answers, as offsets."""
    got = history.since(after)
    return [m.offset for m in got.messages], got.recovered, got.offset


def test_offsets_increase_from_one() -> None:
    """Each appended message gets the next offset."""
    clock = Clock()
    history = History(max_messages=10, max_age=None, clock=clock)
    assert [history.append(message(clock)).offset for _ in range(3)] == [1, 2, 3]
    assert history.last_offset == 3


def test_recovery_with_enough_history() -> None:
    """Everything after the offset is returned and recovered is True."""
    clock = Clock()
    history = History(max_messages=10, max_age=None, clock=clock)
    for n in range(5):
        history.append(message(clock, f"m{n}"))
    assert offsets(history, 2) == ([3, 4, 5], True, 5)
    assert offsets(history, 0) == ([1, 2, 3, 4, 5], True, 5)
    assert offsets(history, 5) == ([], True, 5)
    assert [m.message for m in history.since(3).messages] == ["m3", "m4"]


def test_recovery_without_enough_history_by_size() -> None:
    """After eviction by count, an old offset is answered recovered=False with what is left."""
    clock = Clock()
    history = History(max_messages=3, max_age=None, clock=clock)
    for _ in range(6):
        history.append(message(clock))
    assert len(history) == 3
    assert offsets(history, 1) == ([4, 5, 6], False, 6)
    assert offsets(history, 3) == ([4, 5, 6], True, 6)  # 3 was the last evicted: no gap


def test_recovery_without_enough_history_by_age() -> None:
    """Messages older than max_age are gone, so their offsets are not covered."""
    clock = Clock()
    history = History(max_messages=100, max_age=60.0, clock=clock)
    history.append(message(clock))
    clock.now += 30
    history.append(message(clock))
    clock.now += 31  # the first is now 61 s old
    assert offsets(history, 0) == ([2], False, 2)
    assert offsets(history, 1) == ([2], True, 2)
    clock.now += 60
    assert offsets(history, 1) == ([], False, 2)
    assert len(history) == 0


def test_an_offset_from_the_future_is_not_covered() -> None:
    """An offset beyond the latest (say from an older incarnation) gets recovered=False."""
    clock = Clock()
    history = History(max_messages=10, max_age=None, clock=clock)
    history.append(message(clock))
    assert offsets(history, 7) == ([], False, 1)


def test_none_asks_only_for_the_latest_offset() -> None:
    """since(None) returns no messages and the latest offset."""
    clock = Clock()
    history = History(max_messages=10, max_age=None, clock=clock)
    history.append(message(clock))
    assert offsets(history, None) == ([], True, 1)


def test_a_zero_size_history_keeps_nothing() -> None:
    """max_messages=0 numbers messages but never covers a gap."""
    clock = Clock()
    history = History(max_messages=0, max_age=None, clock=clock)
    history.append(message(clock))
    history.append(message(clock))
    assert offsets(history, 1) == ([], False, 2)
    assert offsets(history, 2) == ([], True, 2)


@pytest.mark.parametrize(("size", "age"), [(-1, None), (10, 0.0), (10, -5.0)])
def test_bad_bounds_are_refused(size: int, age: float | None) -> None:
    """Negative sizes and non-positive ages are configuration errors."""
    with pytest.raises(ValueError):
        History(max_messages=size, max_age=age, clock=Clock())


def test_payload_and_timestamp_shape() -> None:
    """Members get the reference's keys plus offset; timestamps are ISO-8601 with µs and Z."""
    clock = Clock(1736937000.123456)
    stored = History(max_messages=1, max_age=None, clock=clock).append(message(clock))
    assert stored.payload() == {"group_id": "g", "from_user_id": "u", "message": "hi",
                                "timestamp": "2025-01-15T10:30:00.123456Z", "offset": 1}
