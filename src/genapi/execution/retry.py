"""Retry and node fallback, as pure decisions.

A call is a sequence of *attempts*. Within one attempt the ordered nodes are tried in turn,
moving on only when a node could not be reached (:func:`should_fall_back`); when the whole
attempt fails with a retryable error (:func:`is_retryable`) the next attempt starts after a
backoff that grows: 100, 200, 400 … ms, capped, with jitter. The executor drives the plan;
this module only computes it::

    policy = RetryPolicy.from_config(config.retry)
    for attempt in policy.plan(nodes, rng=rng, resolve=lambda: selector.order(...)):
        await asyncio.sleep(attempt.delay_ms / 1000)
        ...  # try attempt.nodes in order; stop on success or a non-retryable error

``FunConfig.retry`` forms: ``None`` (one attempt, but every node is still a fallback),
``n`` ≡ ``("all_nodes", n)``, ``("same_node", n)`` (repeat the same ordered list) and
``("all_nodes", n)`` (re-resolve the list before each retry). ``n`` is truncated to int.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Iterator, Sequence
from enum import StrEnum
from typing import Final

from ..errors import CallTimeout, ConfigError, TransportError
from ..functions.config import Retry, normalize_retry
from ..telemetry.events import register_event

__all__ = [
    "EXECUTOR_RETRY",
    "EXECUTOR_RETRY_EXHAUSTED",
    "Attempt",
    "Backoff",
    "RetryMode",
    "RetryPolicy",
    "backoff_ms",
    "is_retryable",
    "should_fall_back",
]

EXECUTOR_RETRY: Final = register_event(
    "executor.retry",
    ("attempt", "backoff_ms"),
    ("request_id", "mode", "nodes"),
    "A failed call is about to be retried after backoff_ms (attempt counts retries from 1).",
)
EXECUTOR_RETRY_EXHAUSTED: Final = register_event(
    "executor.retry.exhausted",
    (),
    ("request_id", "mode", "last_error"),
    "Every configured attempt failed with a retryable error.",
)

# 2**60 * base is far beyond any cap; bounding the exponent keeps the float finite.
_MAX_EXPONENT = 60


class RetryMode(StrEnum):
    """Which nodes a retry uses."""

    SAME_NODE = "same_node"
    ALL_NODES = "all_nodes"


def backoff_ms(
    attempt: int,
    rng: random.Random | None = None,
    *,
    base_ms: float = 100.0,
    cap_ms: float = 5000.0,
    jitter: float = 0.5,
) -> float:
    """The delay before retry number ``attempt`` (1-based): ``min(base·2^(attempt-1), cap)``.

    With ``rng`` and a non-zero ``jitter`` the delay is multiplied by ``U(1-jitter, 1+jitter)``
    so that clients failing together do not retry together; the cap bounds the delay before
    jitter. Without ``rng`` (or with ``jitter=0``) the delay is exact::

        >>> [backoff_ms(n) for n in (1, 2, 3, 7)]
        [100.0, 200.0, 400.0, 5000.0]
    """
    if attempt < 1:
        raise ConfigError("attempt must be >= 1")
    delay = min(base_ms * 2.0 ** min(attempt - 1, _MAX_EXPONENT), cap_ms)
    if rng is None or not jitter:
        return delay
    return delay * rng.uniform(1.0 - jitter, 1.0 + jitter)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """Backoff settings: base and cap in ms, jitter as a fraction (0 disables it)."""

    base_ms: float = 100.0
    cap_ms: float = 5000.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        problems = []
        if not self.base_ms >= 0:
            problems.append("base_ms must be >= 0")
        if not self.cap_ms >= self.base_ms:
            problems.append("cap_ms must be >= base_ms")
        if not 0.0 <= self.jitter <= 1.0:
            problems.append("jitter must be between 0 and 1")
        if problems:
            raise ConfigError("Backoff", problems)

    def delay_ms(self, attempt: int, rng: random.Random | None) -> float:
        """:func:`backoff_ms` with these settings."""
        return backoff_ms(
            attempt, rng, base_ms=self.base_ms, cap_ms=self.cap_ms, jitter=self.jitter
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt of a call: the nodes to try in order and the delay before it.

    ``number`` is 0 for the first call and k for the k-th retry (the ``attempt`` reported
    by ``executor.retry``); ``delay_ms`` is 0 for the first call.
    """

    number: int
    nodes: tuple[str, ...]
    delay_ms: float


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How often and where a failed call is retried. ``mode`` None means never."""

    mode: RetryMode | None = None
    retries: int = 0
    backoff: Backoff = dataclasses.field(default_factory=Backoff)

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ConfigError("RetryPolicy", ["retries must be >= 0"])
        if self.mode is None and self.retries:
            raise ConfigError("RetryPolicy", ["retries need a mode"])

    @classmethod
    def from_config(cls, retry: Retry, *, backoff: Backoff | None = None) -> RetryPolicy:
        """The policy of a ``FunConfig.retry`` value (``3``, ``("same_node", 2)``, None …)."""
        backoff = backoff if backoff is not None else Backoff()
        if isinstance(retry, bool):
            raise ConfigError("RetryPolicy", [f"invalid retry: {retry!r}"])
        try:
            normalized = normalize_retry(retry)
        except (TypeError, ValueError, IndexError) as exc:
            raise ConfigError("RetryPolicy", [f"invalid retry: {retry!r}"]) from exc
        if normalized is None:
            return cls(backoff=backoff)
        mode, retries = normalized
        if mode not in RetryMode._value2member_map_:
            raise ConfigError("RetryPolicy", [f"unknown retry mode: {mode!r}"])
        return cls(mode=RetryMode(mode), retries=retries, backoff=backoff)

    @property
    def attempts(self) -> int:
        """The total number of attempts: the first call plus the retries."""
        return 1 + self.retries

    def plan(
        self,
        nodes: Sequence[str],
        *,
        rng: random.Random | None = None,
        resolve: Callable[[], Sequence[str]] | None = None,
    ) -> Iterator[Attempt]:
        """The attempts of one call, lazily: stop iterating as soon as one succeeds.

        ``nodes`` is the ordered list of the first attempt. ``same_node`` retries repeat
        it; ``all_nodes`` retries call ``resolve`` for a fresh ordered list (only when the
        retry is reached; without ``resolve`` the first list is reused).
        """
        current = tuple(nodes)
        yield Attempt(0, current, 0.0)
        for number in range(1, self.retries + 1):
            if self.mode is RetryMode.ALL_NODES and resolve is not None:
                current = tuple(resolve())
            yield Attempt(number, current, self.backoff.delay_ms(number, rng))


def is_retryable(exc: BaseException) -> bool:
    """True for failures another attempt may cure: transport errors and call timeouts.

    Business, validation and permission errors (:class:`~genapi.ApiError`) are final —
    except :class:`~genapi.CallTimeout`, which is an ApiError but retryable.
    """
    return isinstance(exc, TransportError | CallTimeout)


def should_fall_back(exc: BaseException) -> bool:
    """True when the next node of the same attempt should be tried: the node was unreachable."""
    return isinstance(exc, TransportError)
