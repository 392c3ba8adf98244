"""Durable calls on one executor: store them, run them, deliver them, keep the store tidy.

:class:`DurableCalls` ties the parts together; a gateway builds one from
``Gateway(durable=DurableSettings(...))`` and runs it while it runs:

* **submit** (the executor's :class:`~genapi.execution.submit.DurableSubmit`): after every
  stage, the call is stored with its idempotency key (the client's ``idempotency_key``,
  else caller + request id; anonymous callers' calls have none unless they give one —
  theirs is then shared by every anonymous caller, so it must be unguessable) and
  acknowledged once committed; a repeated key answers the stored call instead (and
  pushes its result when it already finished);
* **workers** (:class:`~genapi.durable.runner.Workers`) claim and run due calls;
* **delivery** (:class:`~genapi.durable.delivery.Delivery`) pushes terminal responses to
  callers connected here: live, when they join, by a sweep for calls finished elsewhere;
* **webhooks**: a finished call of a function with a ``webhook`` gets a webhook job;
* **upkeep**: finished calls older than ``retention_s`` are purged, the queue's counts
  are sampled (:meth:`DurableCalls.queue_stats`, the ``durable.queue`` event);
* **operators**: :meth:`~DurableCalls.retry`, :meth:`~DurableCalls.cancel`,
  :meth:`~DurableCalls.purge` (the admin API and ``genapi jobs`` use them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ..errors import (
    DurableUnavailable,
    IdempotencyConflict,
    InternalError,
    NotJsonable,
    StoreUnavailable,
    WebhookError,
)
from ..execution.executor import Executor
from ..execution.pipeline import Call
from ..functions.config import ResponseType
from ..messages import Response
from . import events
from .backoff import Backoff, Jitter
from .calls import (
    Counts,
    NewCall,
    StoredCall,
    client_idempotency_key,
    default_idempotency_key,
    new_call_id,
)
from .delivery import Delivery, is_live
from .functions import durable_service
from .results import ack
from .runner import Workers
from .settings import DurableSettings
from .states import CallState
from .store import DurableStore
from .urls import open_store
from .webhook import WEBHOOK_REQUEST_TYPE, WEBHOOK_SERVICE, WebhookSender, webhook_body

__all__ = ["DurableCalls", "backoff_of"]

logger = logging.getLogger("genapi.durable")

_DEFAULT_BACKOFF = Backoff()


def backoff_of(setting: Any) -> Backoff:
    """The :class:`Backoff` of a function config's ``durable_backoff`` (checked already)."""
    if setting is None:
        return _DEFAULT_BACKOFF
    if isinstance(setting, Backoff):
        return setting
    if isinstance(setting, Mapping):
        return Backoff(base_s=float(setting.get("base_s", 1.0)),
                       max_s=float(setting.get("max_s", 300.0)),
                       jitter=Jitter(str(setting.get("jitter", "full"))))
    return Backoff(base_s=float(setting.base_s), max_s=float(setting.max_s),
                   jitter=Jitter(str(setting.jitter)))


class DurableCalls:
    """Guaranteed execution for the functions of ``executor`` (see the module docs).

    ``store`` replaces the one ``settings.url`` names (it is opened, migrated and closed
    here). Built once per gateway; :meth:`start_soon` (or ``await`` :meth:`start`) when
    the gateway starts, :meth:`aclose` when it stops.
    """

    def __init__(self, executor: Executor, settings: DurableSettings | None = None, *,
                 store: DurableStore | None = None) -> None:
        self.settings = settings = settings or DurableSettings()
        self.store: DurableStore = (store if store is not None
                                    else open_store(settings.url, **dict(settings.store_options)))
        self.executor = executor
        self.telemetry = executor.telemetry
        self.worker_id = (settings.worker_id or
                          f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}")
        self.delivery = Delivery(self.store, self.telemetry, silent=self._silent,
                                 detail=lambda: executor.detail_error)
        self.webhooks = WebhookSender(settings.webhook)
        self.workers = Workers(self.store, executor, settings, worker_id=self.worker_id,
                               finished=self._finished, webhook=self._send_webhook)
        self._ready = asyncio.Event()
        self._boot: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._ending: set[asyncio.Task[None]] = set()  # reporting calls a claim ended
        self.store.on_claim_ended = self._claim_ended
        self._counts: Counts | None = None
        executor.durable = self
        executor.on_owner_closed(self.delivery.owner_closed)
        if settings.service is not None:
            executor.registry.add_service(durable_service(self, name=settings.service))

    def __repr__(self) -> str:
        return f"<DurableCalls {self.store!r} worker={self.worker_id}>"

    @property
    def ready(self) -> bool:
        """True once the store is open and migrated (calls are accepted)."""
        return self._ready.is_set()

    @property
    def detail(self) -> bool:
        """Whether callers see internal error details (the executor's ``detail_error``)."""
        return self.executor.detail_error

    # -- lifecycle ----------------------------------------------------------------------

    def start_soon(self) -> None:
        """Start in the background (the gateway's start is synchronous): open and migrate
        the store — again every few seconds until it answers — then run the workers."""
        if self._boot is None or self._boot.done():
            self._boot = asyncio.get_running_loop().create_task(
                self.start(), name="genapi-durable-start")

    async def start(self) -> None:
        """Open and migrate the store (retrying until it answers), then run the workers,
        the delivery and the upkeep."""
        if self._ready.is_set():
            return
        failures = 0
        while True:
            try:
                await self.store.open()
                await self.store.migrate()
                break
            except StoreUnavailable as exc:
                failures += 1
                delay = min(30.0, 0.5 * 2 ** min(failures, 6))
                logger.error("durable store unavailable (%s); trying again in %.1f s",
                             exc, delay)
                await asyncio.sleep(delay)
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self.delivery.run_marker(), name="genapi-durable-marks"),
            loop.create_task(self._every(self.settings.sweep_interval, self._sweep),
                             name="genapi-durable-sweep"),
            loop.create_task(self._every(self.settings.purge_interval, self._purge),
                             name="genapi-durable-purge"),
            loop.create_task(self._every(self.settings.stats_interval, self.refresh_stats,
                                         first=0.0), name="genapi-durable-stats"),
        ]
        if self.settings.run_workers:
            self.workers.start()
        self._ready.set()
        logger.info("durable calls ready (%r, worker %s)", self.store, self.worker_id)

    async def aclose(self, timeout: float | None = None) -> None:
        """Stop: running calls get ``timeout`` (``drain_timeout``) seconds, then go back to
        the queue; pending marks are written; the store is closed."""
        boot, self._boot = self._boot, None
        if boot is not None and not boot.done():
            boot.cancel()
            await asyncio.gather(boot, return_exceptions=True)
        await self.workers.aclose(timeout)
        if self._ending:  # short: a delivery and a webhook job each
            await asyncio.wait(self._ending, timeout=5.0)
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._ready.is_set():
            await self.delivery.aclose()
        self._ready.clear()
        await self.store.aclose()

    async def _every(self, seconds: float, work: Callable[[], Awaitable[Any]], *,
                     first: float | None = None) -> None:
        await asyncio.sleep(seconds if first is None else first)
        while True:
            try:
                await work()
            except StoreUnavailable as exc:
                logger.warning("durable upkeep (%s) failed: %s",
                               getattr(work, "__name__", work), exc)
            except Exception:
                logger.exception("durable upkeep (%s) failed", getattr(work, "__name__", work))
            await asyncio.sleep(seconds)

    async def _sweep(self) -> None:
        if self.delivery.users:
            await self.delivery.sweep()

    async def _purge(self) -> None:
        purged = await self.store.purge(finished_before=time.time() - self.settings.retention_s)
        if purged:
            logger.info("durable: purged %d finished call(s)", purged)

    async def refresh_stats(self) -> Counts:
        """Read the queue's counts now (kept for :meth:`queue_stats`; emits
        ``durable.queue``)."""
        counts = self._counts = await self.store.counts()
        by = counts.by_state
        events.emit(self.telemetry, events.QUEUE, {
            "pending": by[CallState.PENDING], "running": by[CallState.RUNNING],
            "retrying": counts.retrying, "succeeded": by[CallState.SUCCEEDED],
            "dead": by[CallState.DEAD], "cancelled": by[CallState.CANCELLED],
            "oldest_due_age_s": -1.0 if counts.oldest_due_age_s is None
            else counts.oldest_due_age_s}, {})
        return counts

    def queue_stats(self) -> dict[str, float]:
        """The queue's gauges as last sampled (every ``stats_interval``): calls by state,
        ``retrying``, ``oldest_due_age_s`` (0 when nothing is due) and ``running_here``
        (calls this gateway runs now). For a metrics exporter; no I/O."""
        counts = self._counts
        stats: dict[str, float] = {state.value: 0.0 for state in CallState}
        stats.update(retrying=0.0, oldest_due_age_s=0.0)
        if counts is not None:
            stats.update({state.value: float(n) for state, n in counts.by_state.items()})
            stats["retrying"] = float(counts.retrying)
            stats["oldest_due_age_s"] = counts.oldest_due_age_s or 0.0
        stats["running_here"] = float(self.workers.running)
        return stats

    # -- submitting (the executor's DurableSubmit) -----------------------------------------

    async def submit(self, call: Call) -> Response | None:
        """Store ``call`` and answer its ack once committed (see the module docs)."""
        if not self._ready.is_set():
            try:
                async with asyncio.timeout(self.settings.open_timeout):
                    await self._ready.wait()
            except TimeoutError:
                raise DurableUnavailable() from None
        request = call.request
        route = call.route
        config = route.config
        key: str | None
        if request.idempotency_key:
            key = client_idempotency_key(request.user_id, request.idempotency_key)
        elif request.user_id is not None:
            key = default_idempotency_key(request.user_id, request.request_id)
        else:  # anonymous: request ids are no one's, so every submission is its own call
            key = None
        sink = call.sink
        new = NewCall(
            id=new_call_id(), service=config.service, request_type=config.request_type,
            request_id=request.request_id, args=request.args, version=config.version,
            user_id=request.user_id, user_roles=request.user_roles,
            device_id=request.device_id, idempotency_key=key,
            max_attempts=config.max_attempts, backoff=backoff_of(config.durable_backoff),
            topic=sink.topic if is_live(sink) else None,
        )
        started = time.perf_counter()
        try:
            stored, created = await self.store.enqueue(new)
        except StoreUnavailable as exc:
            logger.warning("durable call %s.%s not stored: %s", config.service,
                           config.request_type, exc)
            raise DurableUnavailable() from exc
        except NotJsonable as exc:
            raise InternalError() from exc
        if not created and (stored.user_id != request.user_id
                            or stored.service != new.service
                            or stored.request_type != new.request_type):
            raise IdempotencyConflict()
        events.emit(self.telemetry, events.ENQUEUED,
                    {"duration_us": int((time.perf_counter() - started) * 1e6)},
                    {**events.call_meta(stored), "created": created})
        if not created and stored.state.terminal:
            self.delivery.spawn(self.delivery.duplicate(stored, sink, request.request_id))
        else:
            self.delivery.watch(stored.id, sink, request.request_id)
        if route.response_type is ResponseType.NONE:
            return None
        return ack(stored, request.request_id, duplicate=not created)

    # -- what the built-in functions use --------------------------------------------------

    async def find(self, key: str) -> StoredCall | None:
        """The call stored under an idempotency key."""
        return await self.store.get_by_key(key)

    async def unfinished(self, user_id: str, limit: int) -> list[StoredCall]:
        """A caller's pending and running calls."""
        return await self.store.unfinished(user_id, limit=limit)

    def fetched(self, call: StoredCall) -> None:
        """The caller fetched a finished call's result: count it as delivered."""
        if call.delivered_at is None:
            self.delivery.fetched(call.id)

    def channel_joined(self, user_id: str | None, sink: Any) -> None:
        """A connection of ``user_id`` joined a topic: deliver what waits for them."""
        if self._ready.is_set():
            self.delivery.joined(user_id, sink)
        else:
            self.delivery.remember(user_id, sink)

    # -- finished calls -----------------------------------------------------------------

    def _claim_ended(self, calls: list[StoredCall]) -> None:
        # A call whose worker was lost on its last attempt ends dead inside a claim (and a
        # cancel-requested one cancelled): no worker reports it, so this does.
        task = asyncio.get_running_loop().create_task(self._report_ended(calls))
        self._ending.add(task)
        task.add_done_callback(self._ending.discard)

    async def _report_ended(self, calls: list[StoredCall]) -> None:
        for call in calls:
            try:
                await self._finished(call)
            except Exception:
                logger.exception("durable: reporting the end of %s failed (delivered later "
                                 "by a sweep or on the caller's next join)", call.id)

    async def _finished(self, call: StoredCall) -> None:
        await self.delivery.finished(call)
        if call.service != WEBHOOK_SERVICE:
            await self._queue_webhook(call)

    def _config_of(self, call: StoredCall) -> Any:
        route = self.executor.registry.get_route(call.service, call.request_type, call.version)
        return None if route is None else route.config

    def _silent(self, call: StoredCall) -> bool:
        if call.service == WEBHOOK_SERVICE:
            return True
        config = self._config_of(call)
        return config is not None and str(config.response_type) == ResponseType.NONE

    async def _queue_webhook(self, call: StoredCall) -> None:
        config = self._config_of(call)
        url = None if config is None else config.webhook
        if url is None:
            return
        hook = self.settings.webhook
        job = NewCall(
            id=new_call_id(), service=WEBHOOK_SERVICE, request_type=WEBHOOK_REQUEST_TYPE,
            request_id=call.request_id,
            args={"url": url, "body": webhook_body(call, detail=self.detail)},
            idempotency_key=f"webhook:{call.id}:{secrets.token_hex(8)}",
            max_attempts=hook.max_attempts, backoff=hook.backoff)
        for attempt in range(3):
            try:
                await self.store.enqueue(job)
                return
            except StoreUnavailable as exc:
                if attempt == 2:
                    logger.error("durable: the webhook of %s was not stored: %s", call.id, exc)
                    return
                await asyncio.sleep(0.5 * (attempt + 1))

    async def _send_webhook(self, job: StoredCall) -> dict[str, Any]:
        url = str(job.args.get("url", ""))
        body = job.args.get("body") or {}
        call_id = str(body.get("call_id", ""))
        host = url.split("/")[2] if url.count("/") >= 2 else url
        started = time.perf_counter()
        try:
            status = await self.webhooks.send(url, body, call_id=call_id, delivery_id=job.id)
        except WebhookError as exc:
            events.emit(self.telemetry, events.WEBHOOK_FAILED,
                        {"duration_us": int((time.perf_counter() - started) * 1e6)},
                        {"call_id": call_id, "url_host": host, "error": str(exc),
                         "retryable": exc.can_retry})
            raise
        events.emit(self.telemetry, events.WEBHOOK_SENT,
                    {"duration_us": int((time.perf_counter() - started) * 1e6),
                     "status": status}, {"call_id": call_id, "url_host": host})
        return {"status": status}

    # -- operators ----------------------------------------------------------------------

    async def retry(self, call_id: str) -> StoredCall:
        """Run a dead or cancelled call again (attempts from zero).

        Raises :class:`~genapi.errors.CallNotFound` or :class:`~genapi.errors.StateConflict`.
        """
        call = await self.store.retry(call_id)
        self.delivery.forget(call_id)
        return call

    async def cancel(self, call_id: str) -> StoredCall:
        """Cancel a pending call (at once) or a running one (stopped at its next lease
        renewal, at once when it runs here)."""
        call = await self.store.cancel(call_id)
        if call.state is CallState.CANCELLED:
            events.emit(self.telemetry, events.CANCELLED, {},
                        {**events.call_meta(call), "by": "operator"})
            with contextlib.suppress(StoreUnavailable):
                await self._finished(call)
        elif call.state is CallState.RUNNING:
            self.workers.cancel_now(call_id)
        return call

    async def purge(self, older_than_s: float | None = None) -> int:
        """Delete finished calls older than ``older_than_s`` (default ``retention_s``)."""
        age = self.settings.retention_s if older_than_s is None else older_than_s
        return await self.store.purge(finished_before=time.time() - age)
