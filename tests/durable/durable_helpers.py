"""Small helpers shared by the durable-store tests."""

from __future__ import annotations

from typing import Any

from genapi.durable import Backoff, Jitter, NewCall, new_call_id

T0 = 1_700_000_000.0


class FakeClock:
    """Unix seconds that move only when a test says so."""

    def __init__(self, start: float = T0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def new_call(
    request_id: str = "r1",
    *,
    user_id: str | None = "alice",
    key: str | None = None,
    max_attempts: int = 3,
    run_after: float | None = None,
    args: dict[str, Any] | None = None,
    service: str = "signup",
) -> NewCall:
    """A call as the gateway would store it (fixed backoff: 2 s, 4 s, … capped at 60 s)."""
    return NewCall(
        id=new_call_id(),
        service=service,
        request_type="welcome",
        request_id=request_id,
        args={"email": "a@example.com"} if args is None else args,
        version="1.0.0",
        user_id=user_id,
        user_roles=("user",),
        device_id="d1",
        idempotency_key=key,
        max_attempts=max_attempts,
        backoff=Backoff(base_s=2.0, max_s=60.0, jitter=Jitter.NONE),
        run_after=run_after,
    )
