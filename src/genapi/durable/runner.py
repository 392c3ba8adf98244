"""The workers: claim due durable calls under a lease, run them, settle them.

One claim loop per gateway takes up to ``batch`` due calls at a time (never more than
``workers`` running at once), woken by :meth:`~genapi.durable.DurableStore.wait_for_work`
(LISTEN/NOTIFY on Postgres) or every ``poll_interval``. Each call runs as its own task:

* its Request is rebuilt from the stored call — the caller's identity and roles, the
  arguments the stages let through, the function's version — with a
  :class:`~genapi.DurableInfo` (attempt, idempotency key), and goes to
  ``executor.pipeline.perform`` (a local function in this process, a remote one on a
  node over the transport, with its timeout, retries and fallback);
* a renewal loop extends every held lease each third of ``lease_s``; a call whose lease
  was lost (taken over after it expired) is abandoned without writing, one an operator
  cancelled is stopped and recorded cancelled;
* success is recorded with ``complete`` (batched by the store); a failure with ``fail``:
  retried after :func:`~genapi.durable.retry_at` while attempts remain and the error is
  retryable, else dead. Retryable: errors with ``can_retry``, unexpected exceptions
  (``Internal Server Error``: a crash, a bug fixed by the next deploy) and a function not
  (yet) registered; not retryable: any other :class:`~genapi.ApiError` a function raises
  (a business refusal) and arguments that no longer validate;
* at shutdown claiming stops, running calls get ``drain_timeout``, and the rest are put
  back in the queue at once (``Server shutting down``; the interrupted attempt counts).
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from ..errors import (
    ApiError,
    ArgumentError,
    FunctionDisabled,
    FunctionNotFound,
    InternalError,
    NotJsonable,
    StoreUnavailable,
    WebhookError,
)
from ..execution.executor import Executor
from ..execution.pipeline import Call
from ..messages import DurableInfo, Request
from . import events
from .backoff import retry_at
from .calls import Settle, StoredCall
from .results import INTERNAL_PREFIX, MAX_ERROR_CHARS
from .settings import DurableSettings
from .states import CallState
from .store import DurableStore
from .webhook import WEBHOOK_SERVICE

__all__ = ["Workers", "error_text", "is_retryable"]

logger = logging.getLogger("genapi.durable")

#: Runs a webhook job (the stored call); raises :class:`WebhookError` when it fails.
WebhookRunner = Callable[[StoredCall], Awaitable[Any]]
#: Told about every call that reached its terminal state here.
Finished = Callable[[StoredCall], Awaitable[None]]


class _Stop(enum.Enum):
    """Why a running call's task was cancelled."""

    LOST = "lost"  # the lease was taken over: write nothing
    CANCEL = "cancel"  # an operator cancelled it: record cancelled
    SHUTDOWN = "shutdown"  # this gateway stops: put it back in the queue


def is_retryable(error: ApiError) -> bool:
    """Whether a failed attempt should be retried (see the module docs)."""
    if isinstance(error, ArgumentError):
        return False
    return error.can_retry or isinstance(error, InternalError | FunctionNotFound |
                                         FunctionDisabled)


def error_text(error: BaseException) -> str:
    """The error stored with a call: the client's message; for an unexpected exception
    ``Internal Server Error: <the exception>`` (callers see only the first part)."""
    if isinstance(error, InternalError):
        cause = error.__cause__
        text = f"{INTERNAL_PREFIX}: {cause!r}" if cause is not None else error.message
    elif isinstance(error, ApiError):
        text = error.message
    else:
        text = str(error)
    return text[:MAX_ERROR_CHARS]


class Workers:
    """Claims and runs this gateway's share of the due durable calls (module docs)."""

    def __init__(self, store: DurableStore, executor: Executor, settings: DurableSettings, *,
                 worker_id: str, finished: Finished, webhook: WebhookRunner,
                 rand: Callable[[], float] = random.random) -> None:
        self.store = store
        self.executor = executor
        self.settings = settings
        self.worker_id = worker_id
        self._finished = finished
        self._webhook = webhook
        self._rand = rand
        self._telemetry = executor.telemetry
        self._running: dict[str, tuple[StoredCall, asyncio.Task[None]]] = {}
        self._stops: dict[str, _Stop] = {}
        self._slot_free = asyncio.Event()
        self._claiming = False
        self._in_claim = False
        self._loops: list[asyncio.Task[None]] = []

    @property
    def running(self) -> int:
        """Calls running now."""
        return len(self._running)

    def start(self) -> None:
        """Start claiming (the store is open)."""
        if self._loops:
            return
        self._claiming = True
        loop = asyncio.get_running_loop()
        self._loops = [loop.create_task(self._claim_loop(), name="genapi-durable-claim"),
                       loop.create_task(self._renew_loop(), name="genapi-durable-renew")]

    async def aclose(self, timeout: float | None = None) -> None:
        """Stop claiming; give running calls ``timeout`` seconds (``drain_timeout``), then
        put the rest back in the queue."""
        self._claiming = False
        self._slot_free.set()
        claim = self._loops[0] if self._loops else None
        if claim is not None:
            if not self._in_claim:  # a claim in progress finishes: its calls are drained
                claim.cancel()
            await asyncio.gather(claim, return_exceptions=True)
        tasks = [task for _, task in self._running.values()]
        budget = self.settings.drain_timeout if timeout is None else timeout
        if tasks:
            await asyncio.wait(tasks, timeout=budget)
        late = [(cid, task) for cid, (_, task) in self._running.items() if not task.done()]
        for call_id, task in late:
            self._stops[call_id] = _Stop.SHUTDOWN
            task.cancel()
        if late:
            logger.warning("durable: %d call(s) still running after %.1f s were put back in "
                           "the queue", len(late), budget)
            await asyncio.wait([task for _, task in late], timeout=5.0)
        for loop_task in self._loops:
            loop_task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        self._loops = []

    # -- claiming ---------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        settings = self.settings
        failures = 0
        while self._claiming:
            free = settings.workers - len(self._running)
            if free <= 0:
                self._slot_free.clear()
                await self._slot_free.wait()
                continue
            limit = min(settings.batch, free)
            self._in_claim = True
            try:
                claimed = await self.store.claim(self.worker_id, limit=limit,
                                                 lease_s=settings.lease_s)
                failures = 0
            except StoreUnavailable as exc:
                failures += 1
                delay = min(30.0, 0.5 * 2 ** min(failures, 6))
                logger.warning("durable: claiming failed (%s); again in %.1f s", exc, delay)
                self._in_claim = False
                await asyncio.sleep(delay)
                continue
            finally:
                self._in_claim = False
            for call in claimed:
                self._launch(call)
            if len(claimed) < limit and self._claiming:
                try:
                    await self.store.wait_for_work(settings.poll_interval)
                except StoreUnavailable as exc:
                    logger.warning("durable: waiting for work failed: %s", exc)
                    await asyncio.sleep(settings.poll_interval)

    def _launch(self, call: StoredCall) -> None:
        task = asyncio.get_running_loop().create_task(
            self._run(call), name=f"genapi-durable-{call.id}")
        self._running[call.id] = (call, task)
        task.add_done_callback(functools.partial(self._done, call.id))

    def _done(self, call_id: str, _task: asyncio.Task[None]) -> None:
        self._running.pop(call_id, None)
        self._stops.pop(call_id, None)
        self._slot_free.set()

    async def _renew_loop(self) -> None:
        every = self.settings.lease_s / 3
        while True:
            await asyncio.sleep(every)
            held = [call.lease for call, _ in self._running.values()]
            if not held:
                continue
            try:
                renewal = await self.store.renew(held, lease_s=self.settings.lease_s)
            except StoreUnavailable as exc:
                logger.warning("durable: lease renewal failed: %s", exc)
                continue
            for lease in held:
                entry = self._running.get(lease.call_id)
                if entry is None or entry[0].lease != lease:
                    continue
                if lease.call_id not in renewal.held:
                    self._stop(lease.call_id, entry[1], _Stop.LOST)
                elif lease.call_id in renewal.cancel_requested:
                    self._stop(lease.call_id, entry[1], _Stop.CANCEL)

    def cancel_now(self, call_id: str) -> bool:
        """Stop ``call_id`` if it runs here (an operator cancelled it); True if it did."""
        entry = self._running.get(call_id)
        if entry is None:
            return False
        self._stop(call_id, entry[1], _Stop.CANCEL)
        return True

    def _stop(self, call_id: str, task: asyncio.Task[None], why: _Stop) -> None:
        if call_id not in self._stops and not task.done():
            self._stops[call_id] = why
            task.cancel()

    # -- one call -----------------------------------------------------------------------

    async def _run(self, call: StoredCall) -> None:
        meta = events.call_meta(call)
        events.emit(self._telemetry, events.STARTED, {"attempt": call.attempts},
                    {**meta, "worker_id": self.worker_id})
        started = time.perf_counter()
        try:
            if call.service == WEBHOOK_SERVICE:
                result = await self._webhook(call)
            else:
                result = await self._perform(call)
        except asyncio.CancelledError:
            why = self._stops.get(call.id)
            if why is None:  # not ours: something above is cancelling this task
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            await self._stopped(call, why)
            return
        except (ApiError, WebhookError) as exc:
            await self._failed(call, exc, started)
            return
        except Exception as exc:  # a bug here or in a webhook body: retried, and logged
            logger.exception("durable call %s failed unexpectedly", call.id)
            error = InternalError()
            error.__cause__ = exc
            await self._failed(call, error, started)
            return
        await self._succeeded(call, result, started)

    async def _perform(self, stored: StoredCall) -> Any:
        executor = self.executor
        route = executor.registry.resolve(stored.service, stored.request_type, stored.version)
        request = Request(
            request_id=stored.request_id, service=stored.service,
            request_type=stored.request_type, args=stored.args, version=stored.version,
            device_id=stored.device_id, user_id=stored.user_id, user_roles=stored.user_roles,
            durable=DurableInfo(call_id=stored.id, attempt=stored.attempts,
                                max_attempts=stored.max_attempts,
                                idempotency_key=stored.idempotency_key or stored.id),
        )
        call = Call(request, route, None, None, time.perf_counter_ns())
        call.bound = route.validator.bind(request.args)
        return await executor.pipeline.perform(call)

    async def _succeeded(self, call: StoredCall, result: Any, started: float) -> None:
        try:
            settle = await self.store.complete(call.lease, result)
        except NotJsonable as exc:
            error = InternalError(f"{INTERNAL_PREFIX}: the result is not JSON: {exc}")
            await self._failed(call, error, started, retryable=False)
            return
        except StoreUnavailable as exc:
            # The lease will expire and the call run again: at-least-once.
            logger.warning("durable: the result of %s was not recorded: %s", call.id, exc)
            return
        if settle is not Settle.RECORDED:
            self._lost(call)
            return
        events.emit(self._telemetry, events.SUCCEEDED,
                    {"duration_us": int((time.perf_counter() - started) * 1e6),
                     "attempt": call.attempts}, events.call_meta(call))
        done = msgspec.structs.replace(
            call, state=CallState.SUCCEEDED, result=result, finished_at=time.time(),
            lease_expires_at=None)
        await self._report(done)

    async def _report(self, call: StoredCall) -> None:
        """Tell the engine a call ended here (delivery, webhook); never fails the call."""
        try:
            await self._finished(call)
        except Exception:
            logger.exception("durable: reporting the end of %s failed (delivered later "
                             "by a sweep or on the caller's next join)", call.id)

    async def _failed(self, call: StoredCall, error: ApiError | WebhookError,
                      started: float, *, retryable: bool | None = None) -> None:
        if retryable is None:
            retryable = (error.can_retry if isinstance(error, WebhookError)
                         else is_retryable(error))
        text = error_text(error)
        meta = events.call_meta(call)
        events.emit(self._telemetry, events.FAILED,
                    {"duration_us": int((time.perf_counter() - started) * 1e6),
                     "attempt": call.attempts},
                    {**meta, "error": text, "retryable": retryable})
        now = time.time()
        when = (retry_at(call.backoff, attempts=call.attempts, max_attempts=call.max_attempts,
                         now=now, rand=self._rand) if retryable else None)
        if await self._settle_failure(call, text, when) and when is not None:
            events.emit(self._telemetry, events.RETRY,
                        {"delay_s": when - now, "attempt": call.attempts}, meta)

    async def _stopped(self, call: StoredCall, why: _Stop) -> None:
        if why is _Stop.LOST:
            self._lost(call)
        elif why is _Stop.CANCEL:
            await self._settle_failure(call, "Cancelled", None)
        else:
            await self._settle_failure(call, "Server shutting down", time.time())

    async def _settle_failure(self, call: StoredCall, text: str, when: float | None) -> bool:
        """Record a failed attempt; report the call's end when it ended. True if recorded."""
        try:
            settle = await self.store.fail(call.lease, text, retry_at=when)
        except StoreUnavailable as exc:
            logger.warning("durable: the failure of %s was not recorded: %s", call.id, exc)
            return False
        if settle is not Settle.RECORDED:
            self._lost(call)
            return False
        if when is None or call.cancel_requested or call.id in self._stops:
            try:
                final = await self.store.get(call.id)
            except StoreUnavailable:
                final = None  # the sweep will deliver it
            if final is not None and final.state.terminal:
                meta = events.call_meta(final)
                if final.state is CallState.DEAD:
                    events.emit(self._telemetry, events.DEAD, {"attempts": final.attempts},
                                {**meta, "error": final.last_error})
                else:
                    events.emit(self._telemetry, events.CANCELLED, {}, {**meta, "by": "operator"})
                await self._report(final)
        return True

    def _lost(self, call: StoredCall) -> None:
        events.emit(self._telemetry, events.LEASE_LOST, {"attempt": call.attempts},
                    events.call_meta(call))
