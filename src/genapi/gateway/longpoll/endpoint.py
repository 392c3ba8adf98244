"""The long-poll endpoint at ``{socket_path}/longpoll``: Phoenix's LongPoll, server side.

What phoenix.js (1.8) does, and this answers (``docs/longpoll.md`` has the details):

* the first ``GET`` (no session token) runs the same admission, version and authentication
  checks as a WebSocket upgrade and answers ``{"status": 410, "token": T}``: the session
  is open (refused: ``{"status": 403}``);
* ``GET ?token=T`` polls: the frames waiting (``200``, ``messages`` a list of frame texts),
  or after the window nothing (``204``); a session that is gone answers ``410`` and the
  client starts a new one and rejoins its channels;
* ``POST ?token=T`` with ``application/x-ndjson`` (one frame per line, at most
  ``max_batch``) or one frame: handed to the connection in order, answered ``200`` at once
  (replies come with the next poll);
* every answer is HTTP 200 with the status in the JSON body, as Phoenix does.

Several gateways need no sticky sessions: a token names the gateway owning its session, and
a gateway that does not own it forwards the request there over NATS (a gone owner: 410).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, MutableMapping
from typing import Any, Protocol
from urllib.parse import parse_qsl

import msgspec

from ..connection import Connection
from ..host import Admitted, GatewayHost, Refusal
from ..settings import ConnectionLimits, LongPollSettings
from .session import LongPollSession
from .tokens import SessionTokens

__all__ = ["Forward", "LongPoll", "LongPollHost"]

logger = logging.getLogger("genapi.gateway.longpoll")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
#: ``forward(owner, request) -> answer``: a request to the gateway owning a session.
Forward = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]

_HEADERS = [(b"content-type", b"application/json; charset=utf-8"),
            (b"cache-control", b"no-store")]
_GONE: dict[str, Any] = {"status": 410}


class LongPollHost(GatewayHost, Protocol):
    """What the endpoint needs of its gateway beyond what a connection needs."""

    @property
    def limits(self) -> ConnectionLimits:
        """Per-connection bounds (a session's waiting frames use the outgoing queue's)."""

    async def admit(self, params: Mapping[str, str], headers: Mapping[str, str],
                    peer: str | None) -> Admitted | Refusal:
        """Admission, version and authentication of a new connection."""

    async def serve_connection(self, connection: Connection,
                               runner: Coroutine[Any, Any, None]) -> None:
        """Run a connection, counted while it lives."""


class LongPoll:
    """The sessions of one gateway and the endpoint that serves them (a gateway part)."""

    def __init__(self, host: LongPollHost, settings: LongPollSettings, route: str) -> None:
        self.host = host
        self.settings = settings
        self.route = route
        self.tokens = SessionTokens(settings.secret)
        self.name = "local"  # the gateway's name in its cluster, once it joins one
        self.forward: Forward | None = None
        self.sessions: dict[str, LongPollSession] = {}
        self._connections: dict[str, Connection] = {}
        self._runners: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    # -- a gateway part ------------------------------------------------------------------

    def routes(self) -> list[Any]:
        """The endpoint's route."""
        from starlette.routing import Route

        return [Route(self.route, _Endpoint(self), methods=["GET", "POST", "OPTIONS"])]

    def start(self) -> None:
        """Start expiring sessions whose client stopped polling."""
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(
                self._sweep(), name="genapi-longpoll-sweeper")

    def stop(self) -> None:
        """Stop the sweeper; sessions still open end like closed sockets."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for session in list(self.sessions.values()):
            session.expire()
        self.sessions.clear()

    def join_cluster(self, name: str, forward: Forward) -> None:
        """Sessions are named after ``name``; others' sessions are reached by ``forward``."""
        self.name = name
        self.forward = forward

    # -- requests ------------------------------------------------------------------------

    async def answer(self, method: str, params: Mapping[str, str], headers: Mapping[str, str],
                     body: bytes, peer: str | None) -> dict[str, Any]:
        """The JSON answer to one request (the HTTP layer is :class:`_Endpoint`)."""
        token = headers.get("x-phoenix-longpoll-token") or params.get("token")
        claim = self.tokens.claim(token)
        if claim is None:
            if method == "GET":
                return await self._open(params, headers, peer)
            return _GONE
        request = {"op": method, "token": token, "body": body.decode("utf-8", "replace"),
                   "type": headers.get("content-type", "")}
        if claim.gateway != self.name:
            if self.forward is None:
                return _GONE
            return await self.forward(claim.gateway, request)
        return await self.serve(request)

    async def serve(self, request: dict[str, Any]) -> dict[str, Any]:
        """Answer a poll or a publish for a session of this gateway (from a client, or
        forwarded by another gateway)."""
        sid = self.tokens.verify(str(request.get("token", "")), self.name)
        session = self.sessions.get(sid) if sid is not None else None
        if session is None:
            return _GONE
        if request.get("op") == "GET":
            connection = self._connections.get(session.session)
            if connection is not None:
                connection.core.touch()  # polls are this transport's heartbeats
            frames = await session.poll(self.settings.window)
            if frames is None:
                self._forget(session)
                return {"status": 410, "token": session.token, "messages": []}
            return {"status": 200 if frames else 204, "token": session.token,
                    "messages": frames}
        lines = _frames(str(request.get("body", "")), str(request.get("type", "")))
        if len(lines) > self.settings.max_batch:
            return {"status": 413}
        if session.closed is not None:
            return _GONE
        session.publish(lines)
        return {"status": 200}

    async def _open(self, params: Mapping[str, str], headers: Mapping[str, str],
                    peer: str | None) -> dict[str, Any]:
        auth_token = headers.get("x-phoenix-authtoken")
        if auth_token and "authorization" not in headers:  # phoenix.js's authToken option
            headers = {**headers, "authorization": f"Bearer {auth_token}"}
        admitted = await self.host.admit(params, headers, peer)
        if not isinstance(admitted, Admitted):
            return {"status": 403}  # the client knows no other refusal
        sid, token = self.tokens.issue(self.name)
        limits = self.host.limits
        session = LongPollSession(sid, token, max_messages=limits.max_queue_messages,
                                  max_bytes=limits.max_queue_bytes)
        connection = Connection(self.host, admitted.identity, admitted.serializer, admitted.ip)
        self.sessions[sid] = session
        self._connections[sid] = connection
        runner = asyncio.get_running_loop().create_task(
            self.host.serve_connection(connection, connection.serve_direct(session)),
            name="genapi-longpoll-session")
        self._runners.add(runner)
        runner.add_done_callback(self._runners.discard)
        await asyncio.sleep(0)  # the connection attaches before the client's first message
        return {"status": 410, "token": token, "messages": []}

    def _forget(self, session: LongPollSession) -> None:
        self.sessions.pop(session.session, None)
        self._connections.pop(session.session, None)

    async def _sweep(self) -> None:
        interval = min(1.0, self.settings.expiry / 4)
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for session in list(self.sessions.values()):
                if session.polling:
                    continue
                if session.closed is not None or now - session.last_poll > self.settings.expiry:
                    session.expire()  # its connection ends: calls cancelled, channels left
                    self._forget(session)


def _frames(body: str, content_type: str) -> list[str]:
    """The frames of a POST: ndjson lines, or the whole body as one frame."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/x-ndjson":
        return [line.rstrip("\r") for line in body.split("\n") if line.strip()]
    return [body] if body.strip() else []


class _Endpoint:
    """The ASGI side: reads the request (bounded), writes the JSON answer."""

    def __init__(self, longpoll: LongPoll) -> None:
        self.longpoll = longpoll

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        if method == "OPTIONS":
            await _reply(send, b"", extra=(
                (b"access-control-allow-methods", b"get, post, options"),
                (b"access-control-max-age", b"3600")))
            return
        params = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"),
                                keep_blank_values=True))
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        body = b""
        if method == "POST":
            read = await _read_body(receive, self.longpoll.settings.max_body_bytes)
            if read is None:
                await _reply(send, msgspec.json.encode({"status": 413}))
                return
            body = read
        peer = scope.get("client")
        answer = await self.longpoll.answer(method, params, headers, body,
                                            peer[0] if peer else None)
        await _reply(send, msgspec.json.encode(answer))


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The request body, or None past ``limit`` bytes (or when the client left)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _reply(send: Send, body: bytes, *,
                 extra: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [*_HEADERS, (b"content-length", str(len(body)).encode()), *extra]})
    await send({"type": "http.response.body", "body": body})
