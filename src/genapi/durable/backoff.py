"""Retry delays: capped exponential backoff with jitter, as pure functions.

Attempt ``n`` (1 for the first retry) has the *ceiling* ``min(max_s, base_s * 2 ** (n - 1))``.

* ``Jitter.NONE``: the delay is the ceiling (predictable; for tests and tiny fleets).
* ``Jitter.FULL``: the delay is uniform in ``[0, ceiling)``; spreads a thundering herd
  best and is the usual default.
* ``Jitter.DECORRELATED``: each delay is uniform in ``[base_s, 3 * previous)`` capped at
  ``max_s``, the previous delay starting at ``base_s``. It grows like the exponential but
  never drops to near zero. The sequence is replayed from attempt 1, so it needs no stored
  state: pass a random source seeded by the call id (:func:`seeded_random`) and every
  worker computes the same delay for the same attempt.

Randomness is injected as ``rand``, a function returning floats in ``[0, 1)``; nothing
here reads a clock or a global random state.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable

import msgspec

__all__ = ["Backoff", "Jitter", "RandomSource", "delay_s", "retry_at", "seeded_random"]

#: A source of floats uniform in ``[0, 1)``, such as ``random.random``.
RandomSource = Callable[[], float]


class Jitter(enum.StrEnum):
    """How a retry delay is randomised below its ceiling."""

    NONE = "none"
    FULL = "full"
    DECORRELATED = "decorrelated"


class Backoff(msgspec.Struct, frozen=True, kw_only=True):
    """A retry-delay policy; stored with each call so its retries follow it after a restart.

    ``base_s`` is the first ceiling, ``max_s`` caps every delay.
    """

    base_s: float = 1.0
    max_s: float = 300.0
    jitter: Jitter = Jitter.FULL

    def __post_init__(self) -> None:
        # msgspec builds Structs from stored rows too: the checks must hold there as well.
        if not (self.base_s > 0 and self.max_s >= self.base_s):
            raise ValueError(
                f"backoff needs 0 < base_s <= max_s (got base_s={self.base_s}, "
                f"max_s={self.max_s})"
            )


def _ceiling(policy: Backoff, attempt: int) -> float:
    # 2 ** 1023 is the largest power a float holds; past the cap the exponent is moot.
    exponent = min(attempt - 1, 1023)
    return min(policy.max_s, policy.base_s * 2.0**exponent)


def delay_s(policy: Backoff, attempt: int, rand: RandomSource) -> float:
    """Seconds to wait before retry number ``attempt`` (``attempt >= 1``).

    Always within ``[0, policy.max_s]``; with ``Jitter.NONE`` and ``Jitter.DECORRELATED``
    also at least ``min(base_s, max_s)``.
    """
    if attempt < 1:
        raise ValueError(f"attempt must be at least 1 (got {attempt})")
    if policy.jitter is Jitter.NONE:
        return _ceiling(policy, attempt)
    if policy.jitter is Jitter.FULL:
        return rand() * _ceiling(policy, attempt)
    previous = policy.base_s
    for _ in range(attempt):
        previous = min(policy.max_s, policy.base_s + rand() * (3.0 * previous - policy.base_s))
    return previous


def retry_at(
    policy: Backoff, *, attempts: int, max_attempts: int, now: float, rand: RandomSource
) -> float | None:
    """When a call that failed its attempt number ``attempts`` runs again, or None (dead).

    ``attempts`` counts the attempts made so far, the failed one included, as
    :attr:`~genapi.durable.StoredCall.attempts` does. A call gets ``max_attempts``
    attempts in all: after the last one it is dead, so ``attempts >= max_attempts``
    gives None.
    """
    if attempts >= max_attempts:
        return None
    return now + delay_s(policy, attempts, rand)


def seeded_random(seed: str) -> RandomSource:
    """A random source that gives the same sequence for the same ``seed`` (a call id)."""
    return random.Random(seed).random
