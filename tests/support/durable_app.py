"""The gateway and nodes of the durable-call fault tests (real processes).

``genapi serve tests.support.durable_app:gateway`` with the environment:

* ``GENAPI_DURABLE_URL`` — the store (required);
* ``GENAPI_DURABLE_RUNS`` — a file where every run appends a JSON line (required);
* ``GENAPI_DURABLE_WORKERS`` — ``0`` to store calls without running them (default 1);
* ``GENAPI_DURABLE_LEASE`` — the lease in seconds (default 2).

``genapi node tests.support.durable_app:remote_services`` serves ``rjobs`` (the same
durable function, run on nodes) to gateways started with ``--nats``.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from genapi import (
    AdminGate,
    AdminSettings,
    CallContext,
    DurableInfo,
    DurableSettings,
    Gateway,
    InsecureDemoAuthenticator,
    Service,
)

ADMIN_TOKEN = "durable-fault-admin-token-0123456789"
FAST = {"base_s": 0.1, "max_s": 0.5, "jitter": "none"}


def _record(event: str, durable: DurableInfo, call: CallContext, **extra: Any) -> None:
    line = json.dumps({"event": event, "request_id": call.request.request_id,
                       "user_id": call.request.user_id, "call_id": durable.call_id,
                       "attempt": durable.attempt, "key": durable.idempotency_key,
                       "pid": os.getpid(), "node": call.node, **extra})
    with open(os.environ["GENAPI_DURABLE_RUNS"], "a") as runs:
        runs.write(line + "\n")
        runs.flush()


async def _work(first_ms: int, call: CallContext, durable: DurableInfo) -> dict[str, Any]:
    _record("start", durable, call)
    await asyncio.sleep((first_ms if durable.attempt == 1 else 50) / 1000)
    _record("end", durable, call)
    return {"attempt": durable.attempt, "pid": os.getpid(), "node": call.node,
            "key": durable.idempotency_key}


jobs = Service("jobs", response_type="async", durable=True, max_attempts=5,
               durable_backoff=FAST, timeout=60_000)


@jobs.function()
async def send(first_ms: int, call: CallContext, *, durable: DurableInfo) -> dict[str, Any]:
    """Sleeps ``first_ms`` on its first attempt (50 ms later); records each run."""
    return await _work(first_ms, call, durable)


rjobs = Service("rjobs", response_type="async", durable=True, max_attempts=5,
                durable_backoff=FAST, timeout=60_000)


@rjobs.function()
async def work(first_ms: int, call: CallContext, *, durable: DurableInfo) -> dict[str, Any]:
    """The same, on a service node."""
    return await _work(first_ms, call, durable)


remote_services = [rjobs]


def _gateway() -> Gateway:
    settings = DurableSettings(
        url=os.environ["GENAPI_DURABLE_URL"],
        run_workers=os.environ.get("GENAPI_DURABLE_WORKERS", "1") == "1",
        lease_s=float(os.environ.get("GENAPI_DURABLE_LEASE", "2")),
        poll_interval=0.1, sweep_interval=0.3, drain_timeout=2.0)
    return Gateway([jobs], authenticator=InsecureDemoAuthenticator(),
                   admin=AdminSettings(token=ADMIN_TOKEN,
                                       gate=AdminGate({"view_diagnostics", "manage_durable"})),
                   durable=settings)


gateway = _gateway() if "GENAPI_DURABLE_URL" in os.environ else None
