"""Durable calls on a gateway: :class:`DurablePart` and the operator API under ``/admin/jobs``.

The part runs :class:`~genapi.durable.DurableCalls` while the gateway runs (opening and
migrating the store at start, draining the workers at stop). With an admin console
(``AdminSettings(token=...)``) it serves, behind the console's Bearer check:

====================================  ==============================================
``GET /admin/jobs``                   calls, newest first: ``?state=&service=&user_id=``
                                      ``&limit=`` (1..1000, 100) ``&before=`` (the
                                      ``next`` of the previous page)
``GET /admin/jobs/counts``            calls by state, retrying, oldest due age
``GET /admin/jobs/{id}``              one call (404 when unknown)
``POST /admin/jobs/{id}/retry``       run a dead or cancelled call again (409 otherwise)
``POST /admin/jobs/{id}/cancel``      cancel a pending or running call (409 otherwise)
``POST /admin/jobs/purge``            delete finished calls older than
                                      ``?older_than_s=`` (default: the retention)
====================================  ==============================================

Reading needs what the console needs (the token, ``view_diagnostics``); the ``POST``
routes also need the gate to allow ``manage_durable``
(``AdminGate({"view_diagnostics", "manage_durable"})``), else 403.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from starlette.requests import Request as HttpRequest
from starlette.responses import Response as HttpResponse
from starlette.routing import BaseRoute, Route

from ..durable import CallState, DurableCalls, DurableSettings, DurableStore
from ..durable.results import call_view
from ..errors import CallNotFound, StateConflict, StoreUnavailable
from ..execution.executor import Executor
from ..security import AdminAction, AdminGate
from .admin_responses import bare_response as _bare
from .admin_responses import json_response as _json

__all__ = ["DurablePart", "job_routes"]

Scope = MutableMapping[str, Any]
Check = Callable[[Scope], int | None]
Endpoint = Callable[[HttpRequest], Awaitable[HttpResponse]]
def _number(raw: str | None) -> float | None:
    try:
        return None if raw is None else float(raw)
    except ValueError:
        return None


def job_routes(calls: DurableCalls, check: Check, gate: Callable[[], AdminGate]
               ) -> list[BaseRoute]:
    """The ``/admin/jobs`` routes over ``calls``; ``check(scope)`` is the console's access
    check (None, or 401/403), ``gate()`` the gateway's current admin gate."""

    def guarded(endpoint: Endpoint, *, write: bool = False) -> Endpoint:
        async def run(request: HttpRequest) -> HttpResponse:
            status = check(request.scope)
            if status is not None:
                return _bare(status)
            if write and not gate().allows(AdminAction.MANAGE_DURABLE):
                return _json({"error": "the admin gate does not allow manage_durable"}, 403)
            try:
                return await endpoint(request)
            except CallNotFound as exc:
                return _json({"error": str(exc)}, 404)
            except StateConflict as exc:
                return _json({"error": str(exc), "state": exc.state}, 409)
            except StoreUnavailable as exc:
                return _json({"error": str(exc)}, 503)

        return run

    async def listing(request: HttpRequest) -> HttpResponse:
        params = request.query_params
        state = params.get("state") or None
        if state is not None and state not in CallState._value2member_map_:
            return _json({"error": f"state must be one of {[s.value for s in CallState]}"},
                         400)
        raw_limit = params.get("limit", "")
        limit = max(1, min(int(raw_limit), 1000)) if raw_limit.isdigit() else 100
        found = await calls.store.list_calls(
            state=CallState(state) if state else None, service=params.get("service") or None,
            user_id=params.get("user_id") or None, limit=limit,
            before=params.get("before") or None)
        return _json({"calls": [call_view(c) for c in found],
                      "next": found[-1].id if len(found) == limit else None})

    async def counts(request: HttpRequest) -> HttpResponse:
        counted = await calls.refresh_stats()
        return _json({"by_state": {s.value: n for s, n in counted.by_state.items()},
                      "retrying": counted.retrying,
                      "oldest_due_age_s": counted.oldest_due_age_s,
                      "running_here": calls.workers.running,
                      "worker_id": calls.worker_id})

    async def one(request: HttpRequest) -> HttpResponse:
        call_id = request.path_params["call_id"]
        found = await calls.store.get(call_id)
        if found is None:
            raise CallNotFound(call_id)
        return _json(call_view(found))

    async def retry(request: HttpRequest) -> HttpResponse:
        return _json(call_view(await calls.retry(request.path_params["call_id"])))

    async def cancel(request: HttpRequest) -> HttpResponse:
        return _json(call_view(await calls.cancel(request.path_params["call_id"])))

    async def purge(request: HttpRequest) -> HttpResponse:
        raw = request.query_params.get("older_than_s")
        age = _number(raw)
        if raw is not None and (age is None or age < 0):
            return _json({"error": "older_than_s must be a number of seconds >= 0"}, 400)
        return _json({"purged": await calls.purge(age)})

    return [
        Route("/admin/jobs", guarded(listing), methods=["GET"]),
        Route("/admin/jobs/counts", guarded(counts), methods=["GET"]),
        Route("/admin/jobs/purge", guarded(purge, write=True), methods=["POST"]),
        Route("/admin/jobs/{call_id}", guarded(one), methods=["GET"]),
        Route("/admin/jobs/{call_id}/retry", guarded(retry, write=True), methods=["POST"]),
        Route("/admin/jobs/{call_id}/cancel", guarded(cancel, write=True), methods=["POST"]),
    ]


class DurablePart:
    """Durable calls on a gateway (module docs): built from ``Gateway(durable=...)``."""

    def __init__(self, executor: Executor, durable: DurableSettings | DurableStore, *,
                 check: Check | None, gate: Callable[[], AdminGate]) -> None:
        if isinstance(durable, DurableSettings):
            self.calls = DurableCalls(executor, durable)
        else:
            self.calls = DurableCalls(executor, DurableSettings(), store=durable)
        self._check = check
        self._gate = gate

    def routes(self) -> Sequence[BaseRoute]:
        """``/admin/jobs…`` when the gateway has an admin console."""
        if self._check is None:
            return ()
        return job_routes(self.calls, self._check, self._gate)

    def start(self) -> None:
        """Open the store and start the workers, in the background."""
        self.calls.start_soon()

    def stop(self) -> None:
        """Nothing: :meth:`aclose` (awaited by the gateway) does the stopping."""

    async def aclose(self) -> None:
        """Drain the workers and close the store."""
        await self.calls.aclose()
