"""Durable calls as the executor sees them: one method that stores a call and answers its ack.

The executor runs every stage of a durable call as for any call (validation, permission,
rate limit, before hook), then hands it to its :class:`DurableSubmit` instead of a worker
pool. The implementation (:class:`genapi.durable.DurableCalls`) lives above this layer and
is set by the gateway: the executor never imports it.
"""

from __future__ import annotations

from typing import Protocol

from ..messages import Response
from .pipeline import Call

__all__ = ["DurableSubmit"]


class DurableSubmit(Protocol):
    """Stores durable calls for the executor."""

    async def submit(self, call: Call) -> Response | None:
        """Store ``call`` (checked by every stage already) and return its ack once it is
        committed (None for fire-and-forget functions); raise an
        :class:`~genapi.ApiError` when it cannot be stored."""
        ...
