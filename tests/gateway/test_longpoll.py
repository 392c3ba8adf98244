"""The long-poll transport on the wire: sessions, polls, publishes, expiry, 410 and rejoin,
bounds, drain (phoenix.js's LongPoll protocol, driven with raw HTTP)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from genapi import (
    ConnectionLimits,
    Gateway,
    GatewaySettings,
    InsecureDemoAuthenticator,
    LongPollSettings,
    Service,
)
from tests.support.servers import running_app

svc = Service("svc")
RAN: list[str] = []


@svc.function()
async def echo(x: int) -> int:
    return x


@svc.function(timeout=None)
async def slow(ms: int) -> int:
    RAN.append("started")
    try:
        await asyncio.sleep(ms / 1000)
    except asyncio.CancelledError:
        RAN.append("cancelled")
        raise
    return ms


def gateway(**longpoll: Any) -> Gateway:
    settings = LongPollSettings(**{"window": 0.5, "expiry": 1.0, **longpoll})
    return Gateway([svc], authenticator=InsecureDemoAuthenticator(), settings=GatewaySettings(
        allow_anonymous=True, longpoll=settings,
        limits=ConnectionLimits(max_queue_messages=50, drain_timeout=0.5)))


@pytest.fixture
async def served() -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    gw = gateway()
    async with running_app(gw) as url, httpx.AsyncClient(base_url=url) as http:
        yield gw, http


class Client:
    """A long-poll client as phoenix.js is one: GET to open, POST ndjson, GET to poll."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.token: str | None = None

    async def open(self, **params: str) -> dict[str, Any]:
        answer = (await self.http.get("/socket/longpoll",
                                      params={"vsn": "2.0.0", **params})).json()
        self.token = answer.get("token")
        return answer

    async def post(self, *frames: list[Any], body: str | None = None,
                   content_type: str = "application/x-ndjson") -> dict[str, Any]:
        data = body if body is not None else "\n".join(json.dumps(f) for f in frames)
        response = await self.http.post("/socket/longpoll", content=data,
                                        params={"vsn": "2.0.0", "token": self.token or ""},
                                        headers={"content-type": content_type})
        assert response.status_code == 200
        return response.json()  # type: ignore[no-any-return]

    async def poll(self) -> dict[str, Any]:
        response = await self.http.get("/socket/longpoll",
                                        params={"vsn": "2.0.0", "token": self.token or ""})
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"
        return response.json()  # type: ignore[no-any-return]

    async def messages(self, count: int) -> list[list[Any]]:
        got: list[list[Any]] = []
        while len(got) < count:
            answer = await self.poll()
            assert answer["status"] in (200, 204), answer
            got.extend(json.loads(m) for m in answer["messages"])
        return got


def join(ref: str = "1") -> list[Any]:
    return [ref, ref, "api:lobby", "phx_join", {}]


def call(ref: str, request_type: str, **args: Any) -> list[Any]:
    return ["1", ref, "api:lobby", "api",
            {"request_id": f"r{ref}", "service": "svc", "request_type": request_type,
             "args": args}]


async def test_a_session_opens_with_410_joins_calls_and_polls(
        served: tuple[Gateway, httpx.AsyncClient]) -> None:
    """The first GET opens (410 + token); a POST is answered at once; replies and pushes
    come with the next polls, in order; an idle poll answers 204 after the window."""
    _, http = served
    client = Client(http)
    opened = await client.open(user_id="u1")
    assert opened["status"] == 410 and opened["token"].startswith("lp1.")
    assert opened["messages"] == []
    assert await client.post(join(), call("2", "echo", x=7)) == {"status": 200}
    frames = await client.messages(3)
    assert [f[3] for f in frames] == ["phx_reply", "api", "phx_reply"]
    assert frames[1][4]["result"] == 7
    assert (await client.poll()) == {"status": 204, "token": client.token, "messages": []}


async def test_a_refused_connect_is_403(served: tuple[Gateway, httpx.AsyncClient]) -> None:
    """A version the gateway does not speak (or failed authentication) answers 403."""
    _, http = served
    answer = (await http.get("/socket/longpoll", params={"vsn": "9.9.9"})).json()
    assert answer == {"status": 403}


async def test_an_unknown_or_forged_session_is_gone(
        served: tuple[Gateway, httpx.AsyncClient]) -> None:
    """A token of no live session, or with a bad signature, answers 410: the client opens a
    new session and rejoins; a POST without a session is 410 too."""
    _, http = served
    client = Client(http)
    await client.open(user_id="u1")
    assert client.token is not None
    forged = client.token[:-4] + ("AAAA" if not client.token.endswith("AAAA") else "BBBB")
    client.token = forged
    assert (await client.poll())["status"] == 410
    assert (await client.post(join()))["status"] == 410
    stranger = Client(http)
    stranger.token = None
    assert (await stranger.post(join()))["status"] == 410


async def test_a_client_that_stops_polling_is_dropped_and_its_calls_cancelled(
        served: tuple[Gateway, httpx.AsyncClient]) -> None:
    """Past the expiry without a poll the session ends like a closed socket: its running
    calls are cancelled, its next poll is 410, and a new session works."""
    gw, http = served
    RAN.clear()
    client = Client(http)
    await client.open(user_id="u1")
    await client.post(join(), call("2", "slow", ms=30_000))
    await client.messages(1)
    await asyncio.sleep(2.5)  # expiry 1 s, swept within a quarter of it
    assert RAN == ["started", "cancelled"]
    assert (await client.poll())["status"] == 410
    assert len(gw.connections) == 0
    await client.open(user_id="u1")
    await client.post(join(), call("3", "echo", x=1))
    assert (await client.messages(3))[1][4]["result"] == 1


async def test_oversized_bodies_and_batches_are_refused(
        served: tuple[Gateway, httpx.AsyncClient]) -> None:
    """A body past max_body_bytes or more than max_batch frames: a non-200 status (the
    client reconnects), nothing of it dispatched."""
    gw = gateway(max_body_bytes=1000, max_batch=3)
    async with running_app(gw) as url, httpx.AsyncClient(base_url=url) as http:
        client = Client(http)
        await client.open(user_id="u1")
        assert (await client.post(body="x" * 2000))["status"] == 413
        assert (await client.post(*[call(str(i), "echo", x=i) for i in range(4)]))[
            "status"] == 413
        assert (await client.post(join())) == {"status": 200}
        assert [f[3] for f in await client.messages(1)] == ["phx_reply"]


async def test_a_client_that_never_polls_cannot_grow_the_buffer(
        served: tuple[Gateway, httpx.AsyncClient]) -> None:
    """Frames wait up to the outgoing queue's bound; past it the session closes (the
    client rejoins) instead of holding more."""
    gw, http = served
    client = Client(http)
    await client.open(user_id="u1")
    await client.post(join(), *[call(str(i), "echo", x=i) for i in range(2, 90)])
    await asyncio.sleep(0.3)
    assert gw.longpoll is not None
    session = next(iter(gw.longpoll.sessions.values()), None)
    assert session is None or session.closed is not None
    answer = await client.poll()
    assert answer["status"] == 410


async def test_drain_answers_polls_410_and_refuses_new_sessions(
        served: tuple[Gateway, httpx.AsyncClient]) -> None:
    """On drain a held poll gets the calls' answers then 410 (the client moves to another
    gateway); new sessions are refused."""
    gw, http = served
    client = Client(http)
    await client.open(user_id="u1")
    await client.post(join(), call("2", "slow", ms=200))
    await client.messages(1)
    poll = asyncio.create_task(client.messages(2))
    await asyncio.sleep(0.05)
    await gw.drain()
    frames = await poll
    assert frames[0][4]["result"] == 200
    assert (await client.poll())["status"] == 410
    assert (await Client(http).open(user_id="u2")) == {"status": 403}
