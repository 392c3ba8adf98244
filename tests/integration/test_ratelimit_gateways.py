"""One Redis rate limit held exactly across two gateways."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import jwt
import pytest

from genapi import Gateway, JWTAuthenticator, Service
from genapi.ratelimit import RateLimit, RateLimitConfig, RateLimiter, RedisStore
from tests.support.servers import running_app

pytestmark = pytest.mark.integration
SECRET = "a-test-secret-that-is-long-enough-for-hs256"

svc = Service("svc")


@svc.function()
async def ping() -> str:
    return "pong"


async def test_one_limit_of_100_per_minute_across_two_gateways(redis_url: str) -> None:
    """Two gateways sharing Redis let exactly 100 of 150 interleaved calls through."""
    prefix = f"two-gateways:{uuid.uuid4().hex}:"
    config = RateLimitConfig(global_limits=[RateLimit("user_id", 100, 60_000)])

    def gateway() -> Gateway:
        limiter = RateLimiter(config, store=RedisStore(redis_url, prefix=prefix))
        return Gateway([svc], authenticator=JWTAuthenticator(SECRET), rate_limiter=limiter)

    token = jwt.encode({"sub": "u1", "exp": int(time.time()) + 120}, SECRET)
    headers = {"Authorization": f"Bearer {token}"}
    async with running_app(gateway()) as first, running_app(gateway()) as second, \
            httpx.AsyncClient(headers=headers) as http:
        responses = await asyncio.gather(*(
            http.post(f"{(first, second)[i % 2]}/api/svc/ping") for i in range(150)
        ))
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 100
    assert statuses.count(429) == 50
    limited = next(r for r in responses if r.status_code == 429)
    assert limited.json()["error"].startswith("Rate limit exceeded. Please retry after ")
    assert limited.json()["can_retry"] is True
    assert int(limited.headers["Retry-After"]) > 0
