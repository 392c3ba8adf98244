"""What both stores share: calls enqueued and completed one at a time, from many
coroutines, coalesced into multi-row writes (:class:`~genapi.durable.batching.Coalescer`).
A backend writes the rows; this class decides what is batched and how."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

from .batching import Coalescer
from .calls import Lease, NewCall, Settle, StoredCall
from .rows import EncodedCall, encode_json, new_call_columns

__all__ = ["CoalescedWrites"]


class CoalescedWrites(ABC):
    """``enqueue`` / ``complete`` through coalescers; ``*_many`` and an explicit ``now``
    (tests, replays) write at once."""

    _max_batch: int
    #: How many batches may be written at once (a connection pool can take several).
    _coalesce: int = 1
    #: Called with the calls a claim ended instead of leasing them (DurableStore).
    on_claim_ended: Callable[[list[StoredCall]], None] | None = None

    def _make_coalescers(self) -> None:
        # Items are encoded before they are queued, so a call or result that is not
        # JSON-able fails alone instead of failing the batch it would have joined.
        self._enqueuer: Coalescer[EncodedCall, tuple[StoredCall, bool]] = Coalescer(
            self._enqueue_rows, max_batch=self._max_batch, concurrency=self._coalesce
        )
        self._completer: Coalescer[tuple[Lease, str], Settle] = Coalescer(
            self._complete_rows, max_batch=self._max_batch, concurrency=self._coalesce
        )

    async def _close_coalescers(self) -> None:
        await self._enqueuer.aclose()
        await self._completer.aclose()
        self._make_coalescers()  # so that the store can be opened again

    async def enqueue(
        self, call: NewCall, *, now: float | None = None
    ) -> tuple[StoredCall, bool]:
        item = (call, new_call_columns(call))
        if now is not None:
            return (await self._enqueue_rows([item], now=now))[0]
        return await self._enqueuer.submit(item)

    async def enqueue_many(
        self, calls: Sequence[NewCall], *, now: float | None = None
    ) -> list[tuple[StoredCall, bool]]:
        return await self._enqueue_rows([(c, new_call_columns(c)) for c in calls], now=now)

    async def complete(self, lease: Lease, result: Any, *, now: float | None = None) -> Settle:
        item = (lease, encode_json(result))
        if now is not None:
            return (await self._complete_rows([item], now=now))[0]
        return await self._completer.submit(item)

    async def complete_many(
        self, outcomes: Sequence[tuple[Lease, Any]], *, now: float | None = None
    ) -> list[Settle]:
        encoded = [(lease, encode_json(result)) for lease, result in outcomes]
        return await self._complete_rows(encoded, now=now)

    @abstractmethod
    async def _enqueue_rows(
        self, items: Sequence[EncodedCall], *, now: float | None = None
    ) -> list[tuple[StoredCall, bool]]:
        """Insert the encoded calls (those whose key exists come back with ``False``)."""

    @abstractmethod
    async def _complete_rows(
        self, outcomes: Sequence[tuple[Lease, str]], *, now: float | None = None
    ) -> list[Settle]:
        """Record the results (JSON text) of the leased calls."""
