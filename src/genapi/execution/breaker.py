"""Circuit breakers: stop sending work to something that keeps failing.

A :class:`CircuitBreaker` is a small state machine over an injected clock; it does no I/O
and never sleeps. It is the only owner of its state::

    CLOSED ──(failure_threshold consecutive failures)──▶ OPEN
    OPEN ──(reset_timeout elapsed, seen by allow/admit)──▶ HALF_OPEN
    HALF_OPEN ──(a trial succeeds)──▶ CLOSED
    HALF_OPEN ──(a trial fails)──▶ OPEN (the timer restarts)
    any ──(reset: proved alive another way)──▶ CLOSED

HALF_OPEN admits at most ``half_open_max_calls`` trials at a time: :meth:`admit` reserves
a trial slot, :meth:`record_success` / :meth:`record_failure` give the verdict and
:meth:`release` returns a slot whose call ended without one (cancelled). :meth:`allow`
only asks. Outcomes reported while OPEN are ignored: they belong to calls admitted before
the breaker opened. Transitions emit ``worker_pool.circuit_breaker.open|close|half_open``.

A :class:`BreakerSet` keeps one breaker per name (per node), created on first use.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from enum import StrEnum
from typing import Final

from ..errors import ConfigError
from ..telemetry.events import Telemetry, default_telemetry, register_event

__all__ = [
    "BREAKER_CLOSE",
    "BREAKER_HALF_OPEN",
    "BREAKER_OPEN",
    "BreakerSet",
    "BreakerSettings",
    "BreakerSnapshot",
    "BreakerState",
    "CircuitBreaker",
]

BREAKER_OPEN: Final = register_event(
    "worker_pool.circuit_breaker.open",
    (),
    ("name", "consecutive_failures"),
    "A circuit breaker opened: calls are refused until its reset timeout elapses.",
)
BREAKER_HALF_OPEN: Final = register_event(
    "worker_pool.circuit_breaker.half_open",
    (),
    ("name",),
    "A circuit breaker's reset timeout elapsed: trial calls are admitted.",
)
BREAKER_CLOSE: Final = register_event(
    "worker_pool.circuit_breaker.close",
    (),
    ("name",),
    "A circuit breaker closed after a successful trial call.",
)


class BreakerState(StrEnum):
    """Where a circuit breaker is."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BreakerSettings:
    """Consecutive failures that open a breaker, seconds it stays open, trials when half-open."""

    failure_threshold: int = 5
    reset_timeout: float = 60.0
    half_open_max_calls: int = 1

    def __post_init__(self) -> None:
        problems = []
        if self.failure_threshold < 1:
            problems.append("failure_threshold must be >= 1")
        if not self.reset_timeout >= 0:
            problems.append("reset_timeout must be >= 0 seconds")
        if self.half_open_max_calls < 1:
            problems.append("half_open_max_calls must be >= 1")
        if problems:
            raise ConfigError("BreakerSettings", problems)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BreakerSnapshot:
    """A breaker's state for status pages; ``retry_in`` is seconds until trials (when open)."""

    name: str
    state: BreakerState
    consecutive_failures: int
    failure_threshold: int
    trials_in_flight: int
    retry_in: float


class CircuitBreaker:
    """One breaker. ``clock`` returns monotonic seconds (inject a fake one in tests)."""

    def __init__(
        self,
        name: str,
        settings: BreakerSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.name = name
        self.settings = settings if settings is not None else BreakerSettings()
        self.clock = clock
        self.telemetry = telemetry if telemetry is not None else default_telemetry
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trials = 0

    @property
    def state(self) -> BreakerState:
        """The current state (an elapsed timeout shows once :meth:`allow` is asked)."""
        return self._state

    @property
    def consecutive_failures(self) -> int:
        """Failures since the last success."""
        return self._failures

    def allow(self) -> bool:
        """Would a call be admitted now? Moves OPEN to HALF_OPEN once the timeout elapsed."""
        state = self._state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.OPEN:
            if self.clock() - self._opened_at < self.settings.reset_timeout:
                return False
            self._transition(BreakerState.HALF_OPEN)
        return self._trials < self.settings.half_open_max_calls

    def admit(self) -> bool:
        """:meth:`allow`, and when half-open also take one trial slot."""
        if not self.allow():
            return False
        if self._state is BreakerState.HALF_OPEN:
            self._trials += 1
        return True

    def release(self) -> None:
        """Give back a trial slot whose call ended without a verdict (it was cancelled)."""
        if self._state is BreakerState.HALF_OPEN and self._trials:
            self._trials -= 1

    def record_success(self) -> None:
        """A call succeeded: reset the failure count; a half-open breaker closes."""
        if self._state is BreakerState.HALF_OPEN:
            self._transition(BreakerState.CLOSED)
        elif self._state is BreakerState.CLOSED:
            self._failures = 0

    def record_failure(self) -> None:
        """A call failed: count it; open at the threshold, or again after a failed trial."""
        state = self._state
        if state is BreakerState.OPEN:
            return
        self._failures += 1
        if state is BreakerState.HALF_OPEN or self._failures >= self.settings.failure_threshold:
            self._transition(BreakerState.OPEN)

    def reset(self) -> None:
        """Close the breaker now: what it guarded proved alive another way (a node's
        heartbeat after silence, its config push, a successful last-resort call)."""
        if self._state is not BreakerState.CLOSED:
            self._transition(BreakerState.CLOSED)
        self._failures = 0

    def snapshot(self) -> BreakerSnapshot:
        """The breaker's state as a frozen value."""
        retry_in = 0.0
        if self._state is BreakerState.OPEN:
            elapsed = self.clock() - self._opened_at
            retry_in = max(0.0, self.settings.reset_timeout - elapsed)
        return BreakerSnapshot(
            name=self.name,
            state=self._state,
            consecutive_failures=self._failures,
            failure_threshold=self.settings.failure_threshold,
            trials_in_flight=self._trials,
            retry_in=retry_in,
        )

    def _transition(self, to: BreakerState) -> None:
        # The one place state changes, so telemetry always matches the machine.
        self._state = to
        self._trials = 0
        if to is BreakerState.OPEN:
            self._opened_at = self.clock()
            event = BREAKER_OPEN
            meta: dict[str, object] = {
                "name": self.name,
                "consecutive_failures": self._failures,
            }
        elif to is BreakerState.CLOSED:
            self._failures = 0
            event, meta = BREAKER_CLOSE, {"name": self.name}
        else:
            event, meta = BREAKER_HALF_OPEN, {"name": self.name}
        if self.telemetry.has_handlers(event):
            self.telemetry.emit(event, {}, meta)


class BreakerSet:
    """Breakers keyed by name (one per node), created lazily with shared settings."""

    def __init__(
        self,
        settings: BreakerSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.settings = settings if settings is not None else BreakerSettings()
        self.clock = clock
        self.telemetry = telemetry if telemetry is not None else default_telemetry
        self._breakers: dict[str, CircuitBreaker] = {}

    def __len__(self) -> int:
        return len(self._breakers)

    def __contains__(self, name: object) -> bool:
        return name in self._breakers

    def __iter__(self) -> Iterator[str]:
        return iter(self._breakers)

    def get(self, name: str) -> CircuitBreaker:
        """The breaker of ``name``, created closed on first use."""
        breaker = self._breakers.get(name)
        if breaker is None:
            breaker = CircuitBreaker(
                name, self.settings, clock=self.clock, telemetry=self.telemetry
            )
            self._breakers[name] = breaker
        return breaker

    def available(self, name: str) -> bool:
        """Whether ``name`` would admit a call; unknown names are available (none created).

        Fits :meth:`genapi.selection.NodeSelector.order`'s ``available`` hook.
        """
        breaker = self._breakers.get(name)
        return breaker is None or breaker.allow()

    def reset(self, name: str) -> None:
        """Close the breaker of ``name`` if it has one (see :meth:`CircuitBreaker.reset`)."""
        breaker = self._breakers.get(name)
        if breaker is not None:
            breaker.reset()

    def remove(self, name: str) -> None:
        """Forget the breaker of ``name`` (for example a node that left)."""
        self._breakers.pop(name, None)

    def snapshot(self) -> dict[str, BreakerSnapshot]:
        """Every breaker's snapshot, by name."""
        return {name: b.snapshot() for name, b in self._breakers.items()}
