"""Small helpers shared by the rate-limiter tests."""

from __future__ import annotations

from typing import Any

from genapi.errors import RateLimited
from genapi.messages import Request
from genapi.ratelimit import RateLimiter


class FakeClock:
    """Integer milliseconds that move only when a test says so."""

    def __init__(self, start: int = 1_000_000) -> None:
        self.now = start

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


def req(
    user_id: str | None = "alice",
    *,
    service: str = "svc",
    request_type: str = "op",
    device_id: str | None = None,
    ip_address: str | None = None,
    args: dict[str, Any] | None = None,
    request_id: str = "r1",
) -> Request:
    """A trusted Request as the gateway would build it."""
    return Request(
        request_id=request_id,
        service=service,
        request_type=request_type,
        user_id=user_id,
        device_id=device_id,
        ip_address=ip_address,
        args=args or {},
    )


async def check(limiter: RateLimiter, request: Request) -> None:
    """Run a check the way the executor does."""
    pending = limiter.check(request)
    if pending is not None:
        await pending


async def passes(limiter: RateLimiter, request: Request) -> bool:
    """True when the request is allowed, False when it is rate limited."""
    try:
        await check(limiter, request)
    except RateLimited:
        return False
    return True


async def count_passing(limiter: RateLimiter, request: Request, times: int) -> int:
    """How many of ``times`` sequential checks are allowed."""
    return sum([await passes(limiter, request) for _ in range(times)])
