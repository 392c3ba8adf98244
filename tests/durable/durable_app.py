"""The durable functions of the gateway tests, and a gateway factory over a store URL.

Every run of a function is recorded in :data:`RUNS` (request id, attempt, idempotency
key), so a test can count how often a call ran.
"""

from __future__ import annotations

import asyncio
from typing import Any

from genapi import (
    AdminGate,
    AdminSettings,
    ApiError,
    DurableInfo,
    DurableSettings,
    Gateway,
    GatewaySettings,
    InsecureDemoAuthenticator,
    Service,
)

ADMIN_TOKEN = "durable-admin-token-0123456789"
FAST = {"base_s": 0.05, "max_s": 0.1, "jitter": "none"}
RUNS: list[tuple[str, int, str | None]] = []
GATES: dict[str, asyncio.Event] = {}
BROKEN: set[str] = set()

signup = Service("signup", response_type="async", durable=True, timeout=20_000)


def _record(durable: DurableInfo | None, request_id: str) -> int:
    assert durable is not None
    RUNS.append((request_id, durable.attempt, durable.idempotency_key))
    return durable.attempt


@signup.function(max_attempts=3, durable_backoff=FAST)
async def welcome(email: str, fail_times: int, tag: str = "", *,
                  durable: DurableInfo) -> dict[str, Any]:
    """Fails its first ``fail_times`` attempts with an unexpected exception."""
    attempt = _record(durable, tag or email)
    if attempt <= fail_times:
        raise RuntimeError(f"smtp down (attempt {attempt})")
    return {"sent_to": email, "attempt": attempt, "key": durable.idempotency_key}


@signup.function(max_attempts=5, durable_backoff=FAST)
async def refuse(email: str, durable: DurableInfo) -> dict[str, Any]:
    """A business refusal: not retried."""
    _record(durable, email)
    raise ApiError("No such customer")


@signup.function(max_attempts=5, durable_backoff=FAST)
async def unavailable(email: str, durable: DurableInfo) -> dict[str, Any]:
    """A retryable refusal (can_retry): retried until the attempts run out."""
    _record(durable, email)
    raise ApiError("Mail server busy", can_retry=True)


@signup.function(max_attempts=3, durable_backoff=FAST)
async def gated(name: str, durable: DurableInfo) -> dict[str, Any]:
    """Waits until the test opens ``GATES[name]``."""
    attempt = _record(durable, name)
    gate = GATES.setdefault(name, asyncio.Event())
    await gate.wait()
    return {"name": name, "attempt": attempt}


@signup.function(max_attempts=3, durable_backoff=FAST)
async def until_fixed(name: str, durable: DurableInfo) -> dict[str, Any]:
    """Fails while ``name`` is in :data:`BROKEN`."""
    attempt = _record(durable, name)
    if name in BROKEN:
        raise ConnectionError(f"{name} is broken")
    return {"name": name, "attempt": attempt}


@signup.function(response_type="none", max_attempts=2, durable_backoff=FAST)
async def audit(event: str, durable: DurableInfo) -> None:
    """Fire-and-forget, durably."""
    _record(durable, event)


def durable_gateway(url: str, *, backend: str, run_workers: bool = True,
                    webhook_secret: str | None = None, **options: Any) -> Gateway:
    """A gateway of the ``signup`` functions on the store at ``url`` (fast timings)."""
    store_options: dict[str, Any] = (
        {"poll_s": 0.02} if backend == "sqlite" else {"min_connections": 1, "max_connections": 4})
    settings = DurableSettings(
        url=url, poll_interval=0.05, lease_s=options.pop("lease_s", 2.0),
        sweep_interval=0.2, stats_interval=0.5, drain_timeout=2.0, run_workers=run_workers,
        store_options=store_options, **options)
    return Gateway(
        [signup], authenticator=InsecureDemoAuthenticator(),
        settings=GatewaySettings(allow_anonymous=True),
        admin=AdminSettings(token=ADMIN_TOKEN,
                            gate=AdminGate({"view_diagnostics", "manage_durable"})),
        durable=settings)
