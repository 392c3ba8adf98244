"""Performing a call: local or on nodes, with fallback, retries and circuit breakers.

For a remote function the nodes are ordered by the function's selection mode (nodes whose
breaker is open go last). Within one attempt the nodes are tried in order, moving on when
a node cannot be reached (the call was not delivered); nodes whose breaker is open are
tried last, as a last resort, rather than never — one that answers is in use again at
once. An attempt that fails with a retryable error (transport failure or timeout) is
retried after a growing backoff when the config asks for retries; the client then gets
``All retry attempts exhausted`` (``can_retry``). Business, validation and permission
errors are never retried.

Two failures are not a node's fault and are treated apart: this process's own lost
connection (:class:`~genapi.TransportUnavailable`: no breaker counts it, no other node is
tried) and a node lost with the call in flight (:class:`~genapi.NodeLost`: the call may
have run, so it moves to another node only when the function allows retries).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Sequence
from typing import Any

from ..errors import (
    CallTimeout,
    NodeLost,
    NoResponders,
    NoTransport,
    RetryExhausted,
    ServiceUnavailable,
    StreamInterrupted,
    TransportError,
    TransportUnavailable,
)
from ..functions.routes import Route
from ..functions.validation import BoundArgs
from ..messages import Request
from ..telemetry.events import Telemetry
from ..transport.base import Transport
from .breaker import BreakerSet, CircuitBreaker
from .invoke import Invoker
from .retry import (
    EXECUTOR_RETRY,
    EXECUTOR_RETRY_EXHAUSTED,
    Backoff,
    RetryPolicy,
    is_retryable,
)
from .selection import NodeSelectionError, NodeSelector

__all__ = ["Caller", "NoTransport"]


class Caller:
    """Runs a route's function once (with fallback and retries), wherever it lives."""

    def __init__(
        self,
        invoker: Invoker,
        *,
        transport: Transport | None,
        selector: NodeSelector,
        breakers: BreakerSet,
        backoff: Backoff,
        rng: random.Random,
        telemetry: Telemetry,
    ) -> None:
        self.invoker = invoker
        self.transport = transport
        self.selector = selector
        self.breakers = breakers
        self.backoff = backoff
        self.rng = rng
        self.telemetry = telemetry
        self._policies: dict[Any, RetryPolicy] = {}

    def _policy(self, route: Route) -> RetryPolicy:
        retry = route.retry
        policy = self._policies.get(retry)
        if policy is None:
            policy = self._policies[retry] = RetryPolicy.from_config(retry, backoff=self.backoff)
        return policy

    async def perform(self, route: Route, request: Request, bound: BoundArgs,
                      extra: dict[str, Any] | None = None) -> Any:
        """The function's result; raises its ApiError or the retry outcome.

        ``extra`` are injected values for local functions (``{"call": CallContext}``).
        """
        if route.is_local and route.retry is None:
            return await self.invoker.call(route, request, bound, extra)
        policy = self._policy(route)
        nodes = self._order(route, request)
        last: BaseException | None = None

        def resolve() -> Sequence[str]:
            return self._order(route, request)

        for attempt in policy.plan(nodes, rng=self.rng, resolve=resolve):
            if attempt.number:
                self._emit_retry(request, policy, attempt.number, attempt.delay_ms, attempt.nodes)
                await asyncio.sleep(attempt.delay_ms / 1000)
            try:
                return await self._attempt(route, request, bound, attempt.nodes, extra)
            except Exception as exc:
                if not is_retryable(exc):
                    raise
                last = exc
        if policy.retries:
            self._emit_exhausted(request, policy, last)
            raise RetryExhausted() from last
        raise self._final(last)

    def _order(self, route: Route, request: Request) -> list[str]:
        if route.is_local:
            return ["local"]
        try:
            return self.selector.order(route.config, None, request,
                                       available=self.breakers.available)
        except NodeSelectionError as exc:
            raise ServiceUnavailable(details={"reason": str(exc)}) from exc

    async def _attempt(
        self, route: Route, request: Request, bound: BoundArgs, nodes: Sequence[str],
        extra: dict[str, Any] | None,
    ) -> Any:
        if route.is_local:
            return await self.invoker.call(route, request, bound, extra)
        transport = self._transport()
        last: TransportError = NoResponders("no nodes")
        shunned: list[str] = []  # open breakers: tried last, not never
        for node in nodes:
            breaker = self.breakers.get(node)
            if not breaker.admit():
                shunned.append(node)
                continue
            answered, outcome = await self._call_node(transport, node, route, request, breaker)
            if answered:
                return outcome
            last = outcome
        for node in shunned:  # every other node failed: an open breaker is not a verdict
            answered, outcome = await self._call_node(transport, node, route, request, None)
            if answered:
                self.breakers.get(node).reset()  # it answered: in use again at once
                return outcome
            last = outcome
        raise last

    async def _call_node(self, transport: Transport, node: str, route: Route,
                         request: Request, breaker: CircuitBreaker | None) -> tuple[bool, Any]:
        """One try on one node: ``(True, result)``, or ``(False, error)`` when another node
        may take the call; anything else is raised."""
        try:
            result = await transport.call(node, request, timeout=route.timeout_s)
        except TransportUnavailable:
            if breaker is not None:
                breaker.release()  # our connection, not the node: no other node is reachable
            raise
        except NodeLost as exc:
            if breaker is not None:
                breaker.record_failure()
            if route.retry is None:
                raise  # it may have run: only a function that allows retries runs again
            return False, exc
        except TransportError as exc:
            if breaker is not None:
                breaker.record_failure()
            return False, exc  # not delivered: the next node may take it
        except CallTimeout:
            if breaker is not None:
                breaker.record_failure()
            raise
        except asyncio.CancelledError:
            if breaker is not None:
                breaker.release()
            raise
        except Exception:
            if breaker is not None:
                breaker.record_success()  # the node answered; the function failed
            raise
        if breaker is not None:
            breaker.record_success()
        return True, result

    async def stream(self, route: Route, request: Request) -> AsyncIterator[Any]:
        """Open a remote stream on the first node that answers; yield its chunks.

        Nodes that cannot be reached are skipped before the first chunk; once chunks were
        delivered a failure ends the stream with ``Stream interrupted`` (``can_retry``):
        a retry would repeat what the client already has.
        """
        transport = self._transport()
        last: BaseException = NoResponders("no nodes")
        for node in self._order(route, request):
            breaker = self.breakers.get(node)
            if not breaker.admit():
                continue
            chunks = transport.stream(node, request, timeout=route.timeout_s)
            started = False
            try:
                async for chunk in chunks:
                    started = True
                    yield chunk
            except TransportUnavailable as exc:
                breaker.release()  # our connection, not the node's fault
                if started:
                    raise StreamInterrupted(details={"reason": str(exc)}) from exc
                raise self._final(exc) from exc
            except TransportError as exc:
                breaker.record_failure()
                if started:
                    raise StreamInterrupted(details={"node": node,
                                                     "reason": str(exc)}) from exc
                last = exc
                continue
            except StreamInterrupted:
                breaker.record_failure()
                raise
            breaker.record_success()
            return
        raise self._final(last)

    def _transport(self) -> Transport:
        if self.transport is None:
            raise NoTransport("this executor has no transport for remote functions")
        return self.transport

    @staticmethod
    def _final(last: BaseException | None) -> BaseException:
        if isinstance(last, TransportError) or last is None:
            return ServiceUnavailable(details={"reason": str(last)})
        return last

    def _emit_retry(self, request: Request, policy: RetryPolicy, number: int,
                    delay_ms: float, nodes: Sequence[str]) -> None:
        if self.telemetry.has_handlers(EXECUTOR_RETRY):
            self.telemetry.emit(
                EXECUTOR_RETRY,
                {"attempt": number, "backoff_ms": delay_ms},
                {"request_id": request.request_id, "mode": str(policy.mode),
                 "nodes": list(nodes)},
            )

    def _emit_exhausted(self, request: Request, policy: RetryPolicy,
                        last: BaseException | None) -> None:
        if self.telemetry.has_handlers(EXECUTOR_RETRY_EXHAUSTED):
            self.telemetry.emit(
                EXECUTOR_RETRY_EXHAUSTED,
                {},
                {"request_id": request.request_id, "mode": str(policy.mode),
                 "last_error": repr(last)},
            )
