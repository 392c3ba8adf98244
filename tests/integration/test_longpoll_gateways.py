"""Long poll behind a load balancer without sticky sessions: two gateways over one
nats-server; each request lands on either; the owner of a session answers through NATS."""

from __future__ import annotations

import contextlib
import itertools
import json
import uuid
from typing import Any

import httpx
import pytest

from genapi import ClusterOptions, Gateway, GatewaySettings, LongPollSettings, Service
from tests.support.servers import running_app

pytestmark = pytest.mark.integration

svc = Service("svc")


@svc.function()
async def where(x: int) -> int:
    return x


def gateway(nats_url: str, prefix: str, name: str) -> Gateway:
    # one process here: each gateway needs its own name, as separate processes have
    return Gateway([svc], cluster=ClusterOptions(nats=nats_url, prefix=prefix, name=name),
                   settings=GatewaySettings(longpoll=LongPollSettings(window=0.5, expiry=5)))


async def test_a_session_works_whichever_gateway_each_request_reaches(nats_url: str) -> None:
    """Open on one gateway, then alternate: publishes and polls reach the owner; when the
    owner is gone, the other gateway answers 410 at once (the client rejoins)."""
    prefix = f"lp{uuid.uuid4().hex[:8]}"
    a, b = gateway(nats_url, prefix, "gw-a"), gateway(nats_url, prefix, "gw-b")
    stack = contextlib.AsyncExitStack()
    async with stack:
        url_a = await stack.enter_async_context(running_app(a))
        url_b = await stack.enter_async_context(running_app(b))
        assert a.cluster is not None and b.cluster is not None
        await a.cluster.ready(15)
        await b.cluster.ready(15)
        http = await stack.enter_async_context(httpx.AsyncClient())
        urls = itertools.cycle([url_b, url_a])
        opened = (await http.get(url_a + "/socket/longpoll", params={"vsn": "2.0.0"})).json()
        token = opened["token"]
        params = {"vsn": "2.0.0", "token": token}

        async def post(*frames: list[Any]) -> dict[str, Any]:
            body = "\n".join(json.dumps(f) for f in frames)
            return (await http.post(next(urls) + "/socket/longpoll", params=params,
                                    content=body,
                                    headers={"content-type": "application/x-ndjson"})).json()

        async def messages(count: int) -> list[list[Any]]:
            got: list[list[Any]] = []
            while len(got) < count:
                answer = (await http.get(next(urls) + "/socket/longpoll",
                                         params=params)).json()
                assert answer["status"] in (200, 204), answer
                got.extend(json.loads(m) for m in answer["messages"])
            return got

        assert await post(["1", "1", "api:lobby", "phx_join", {}]) == {"status": 200}
        for i in range(6):
            assert await post(["1", str(i + 2), "api:lobby", "api", {
                "request_id": f"r{i}", "service": "svc", "request_type": "where",
                "args": {"x": i}}]) == {"status": 200}
        frames = await messages(1 + 12)
        results = [f[4]["result"] for f in frames if f[3] == "api"]
        assert results == list(range(6))
        await stack.aclose()  # both gone: a third gateway cannot find the owner
    c = gateway(nats_url, prefix, "gw-c")
    async with running_app(c) as url_c, httpx.AsyncClient() as http:
        assert c.cluster is not None
        await c.cluster.ready(15)
        answer = (await http.get(url_c + "/socket/longpoll", params=params)).json()
        assert answer == {"status": 410}
