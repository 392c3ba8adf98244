"""An asyncio Python client for genapi gateways (any Phoenix-protocol gateway, really).

::

    async with genapi.Client("ws://localhost:4000/socket", params={"user_id": "1"}) as c:
        user = await c.call("user_service", "get_user", {"user_id": "1"})

``call`` returns the result or raises the typed error behind the Response (for example
:class:`~genapi.PermissionDenied`), carrying its message and ``can_retry``. The client
sends heartbeats, reconnects with jittered exponential backoff and rejoins its topic; calls
in flight when the connection drops fail with :class:`ConnectionLost` (``can_retry``), since
the client cannot know whether they ran.

Responses that answer none of this client's calls — relay messages and presence notices,
pushed by the server — go to ``on_push`` and to :meth:`Client.pushes`::

    async for response in client.pushes():
        print(response.result["from_user_id"], response.result["message"])
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import msgspec
from websockets.asyncio.client import ClientConnection as WebSocket
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from .errors import (
    CallTimeout,
    ConnectionLost,
    NotConnected,
    TransportError,
    UsageError,
    error_from_wire,
)
from .messages import Response
from .protocol.phoenix import (
    V2_JSON,
    ChannelClosed,
    ChannelErrored,
    ChannelJoined,
    ClientConnection,
    ProtocolError,
    PushReceived,
    ReplyReceived,
    ReplyTimedOut,
)

__all__ = ["Client", "ConnectionLost", "NotConnected"]

logger = logging.getLogger("genapi.client")

_response_decoder = msgspec.json.Decoder(Response)


def _future() -> asyncio.Future[Any]:
    return asyncio.get_running_loop().create_future()


@dataclass(eq=False)
class _Call:
    """A call waiting for its Responses."""

    request_id: str
    ref: str | None = None
    done: asyncio.Future[Any] = field(default_factory=_future)
    chunks: asyncio.Queue[Response | BaseException] | None = None
    acked: bool = False


class Client:
    """A connection to a gateway's Phoenix socket with one joined topic.

    ``url`` is the socket endpoint as phoenix.js takes it (``ws://host:4000/socket``;
    ``/websocket`` and ``vsn`` are appended). ``params`` are the connect params (the
    authenticator reads them). ``timeout`` bounds each call in seconds by default.
    ``on_push`` is called with every unsolicited Response; the last ``max_pushes`` of them
    also wait in :meth:`pushes` (older ones are dropped and counted in ``pushes_dropped``).
    """

    def __init__(
        self,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        topic: str = "api:lobby",
        event: str = "api",
        join_params: Mapping[str, Any] | None = None,
        timeout: float = 10.0,
        heartbeat_interval: float = 30.0,
        reconnect: bool = True,
        max_backoff: float = 5.0,
        headers: Mapping[str, str] | None = None,
        rng: random.Random | None = None,
        on_push: Callable[[Response], object] | None = None,
        max_pushes: int = 1000,
    ) -> None:
        base = url.rstrip("/")
        if not base.endswith("/websocket"):
            base += "/websocket"
        query = urlencode({**(params or {}), "vsn": "2.0.0"})
        self.url = f"{base}?{query}"
        self.topic = topic
        self.event = event
        self.timeout = timeout
        self.heartbeat_interval = heartbeat_interval
        self.reconnect = reconnect
        self.max_backoff = max_backoff
        self._headers = dict(headers or {})
        self._rng = rng or random.Random()
        self._core = ClientConnection(V2_JSON, timeout=timeout)
        self._core.join(topic, dict(join_params or {}))
        self._ws: WebSocket | None = None
        self._calls: dict[str, _Call] = {}
        self._by_ref: dict[str, _Call] = {}
        self._runner: asyncio.Task[None] | None = None
        self._joined = asyncio.Event()
        self._wakeup = asyncio.Event()
        self._rejoin_due = False
        self._closed = False
        self.on_push = on_push
        self._pushes: asyncio.Queue[Response] = asyncio.Queue(max(1, max_pushes))
        self.pushes_dropped = 0

    # -- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> Client:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def connect(self) -> None:
        """Connect and join the topic; raise :class:`NotConnected` if the first attempt fails."""
        if self._runner is not None:
            return
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._runner = asyncio.create_task(self._run(ready), name="genapi-client")
        try:
            await ready
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Leave and disconnect for good; pending calls fail with ConnectionLost."""
        self._closed = True
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
            self._runner = None
        self._fail_all(ConnectionLost("client closed"))

    @property
    def connected(self) -> bool:
        """True while the socket is open and the topic joined."""
        return self._joined.is_set()

    async def wait_joined(self, timeout: float | None = None) -> None:
        """Wait until the topic is (re)joined."""
        async with asyncio.timeout(timeout):
            await self._joined.wait()

    # -- calls --------------------------------------------------------------------------

    async def call(
        self,
        service: str,
        request_type: str,
        args: Mapping[str, Any] | None = None,
        *,
        version: str | None = None,
        timeout: float | None = None,
        request_id: str | None = None,
    ) -> Any:
        """Call a function and return its result (for async functions: the final result).

        Raises the typed :class:`~genapi.ApiError` of an error Response,
        :class:`~genapi.CallTimeout` when no answer comes in time, or
        :class:`ConnectionLost`.
        """
        limit = self.timeout if timeout is None else timeout
        call = self._start(service, request_type, args, version, request_id, stream=False)
        await self._flush()
        try:
            async with asyncio.timeout(limit):
                return await call.done
        except TimeoutError:
            raise CallTimeout(int(limit * 1000)) from None
        finally:
            self._forget(call)

    async def stream(
        self,
        service: str,
        request_type: str,
        args: Mapping[str, Any] | None = None,
        *,
        version: str | None = None,
        timeout: float | None = None,
        request_id: str | None = None,
    ) -> AsyncIterator[Any]:
        """Call a stream function and yield its chunks until the stream ends.

        ``timeout`` bounds the wait for each chunk. Leaving the loop early cancels the
        stream on the server.
        """
        limit = self.timeout if timeout is None else timeout
        call = self._start(service, request_type, args, version, request_id, stream=True)
        chunks = call.chunks
        if chunks is None:
            raise UsageError("stream calls always have a chunk queue")
        await self._flush()
        finished = False
        try:
            while True:
                try:
                    async with asyncio.timeout(limit):
                        response = await chunks.get()
                except TimeoutError:
                    raise CallTimeout(int(limit * 1000)) from None
                if isinstance(response, BaseException):
                    finished = True
                    raise response
                if not response.success:
                    finished = True
                    raise error_from_wire(response.error or "", can_retry=response.can_retry)
                if response.result == "init" and response.has_more and not call.acked:
                    call.acked = True
                    continue
                if response.has_more:
                    yield response.result
                    continue
                finished = True
                if response.result is not None:
                    yield response.result
                return
        finally:
            self._forget(call)
            if not finished:
                await self.cancel(call.request_id)

    async def cancel(self, request_id: str) -> None:
        """Ask the gateway to cancel an in-flight call (no-op if unsupported or gone)."""
        if self._ws is None or not self._joined.is_set():
            return
        self._core.push(self.topic, "cancel", {"request_id": request_id})
        await self._flush()

    def _start(
        self,
        service: str,
        request_type: str,
        args: Mapping[str, Any] | None,
        version: str | None,
        request_id: str | None,
        *,
        stream: bool,
    ) -> _Call:
        if self._closed or self._runner is None or self._runner.done():
            raise NotConnected("the client is not connected")
        rid = request_id or uuid.uuid4().hex
        payload: dict[str, Any] = {
            "request_id": rid, "service": service, "request_type": request_type,
            "args": dict(args or {}),
        }
        if version is not None:
            payload["version"] = version
        call = _Call(rid, chunks=asyncio.Queue() if stream else None)
        self._calls[rid] = call
        call.ref = self._core.push(self.topic, self.event, payload)
        self._by_ref[call.ref] = call
        return call

    def _forget(self, call: _Call) -> None:
        self._calls.pop(call.request_id, None)
        if call.ref is not None:
            self._by_ref.pop(call.ref, None)

    # -- connection loop ----------------------------------------------------------------

    async def _run(self, ready: asyncio.Future[None]) -> None:
        attempt = 0
        while not self._closed:
            opened = False
            try:
                async with connect(self.url, additional_headers=self._headers,
                                   max_size=None) as ws:
                    attempt = 0
                    opened = True
                    self._ws = ws
                    self._core.connected()
                    await self._flush()
                    await self._session(ws, ready)
            except asyncio.CancelledError:
                raise
            except (OSError, WebSocketException, ProtocolError, TimeoutError) as exc:
                if not ready.done():
                    ready.set_exception(NotConnected(f"cannot connect to {self.url}: {exc}"))
                    return
                logger.info("connection to %s lost: %s", self.url, exc)
            finally:
                self._ws = None
                self._joined.clear()
                if opened and not self._closed:
                    self._core.disconnected()
                    self._fail_all(ConnectionLost("connection lost"))
            if not self.reconnect or self._closed:
                return
            attempt += 1
            await asyncio.sleep(self._backoff(attempt))

    def _backoff(self, attempt: int) -> float:
        delay = min(self.max_backoff, 0.05 * 2 ** (attempt - 1))
        return float(delay * self._rng.uniform(0.5, 1.5))

    async def _session(self, ws: WebSocket, ready: asyncio.Future[None]) -> None:
        heartbeat = asyncio.create_task(self._heartbeats(ws), name="genapi-client-heartbeat")
        writer = asyncio.create_task(self._writer(), name="genapi-client-writer")
        try:
            async for data in ws:
                for event in self._core.receive(data):
                    self._handle(event, ready)
                await self._flush()
        finally:
            heartbeat.cancel()
            writer.cancel()

    async def _writer(self) -> None:
        """Send what timers queued (rejoins); calls flush by themselves."""
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            if self._rejoin_due:
                self._rejoin_due = False
                self._core.rejoin(self.topic)
            await self._flush()

    async def _heartbeats(self, ws: WebSocket) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            if self._core.pending_heartbeat_ref is not None:
                await ws.close(1001, "heartbeat timeout")  # the server stopped answering
                return
            self._core.heartbeat()
            for event in self._core.check_timeouts():
                self._handle_timeout(event)
            await self._flush()

    def _handle(self, event: object, ready: asyncio.Future[None]) -> None:
        if isinstance(event, PushReceived):
            if event.event == self.event and event.topic == self.topic:
                self._on_response(event.message.payload_raw, event.payload)
        elif isinstance(event, ReplyReceived):
            self._on_reply(event)
        elif isinstance(event, ChannelJoined):
            self._joined.set()
            if not ready.done():
                ready.set_result(None)
        elif isinstance(event, ChannelErrored):
            self._joined.clear()
            if not ready.done():
                ready.set_exception(NotConnected(f"join of {self.topic} refused: {event.reason}"))
                return
            if event.reason != "connection_closed":
                asyncio.get_running_loop().call_later(1.0, self._request_rejoin)
        elif isinstance(event, ChannelClosed):
            self._joined.clear()
            self._fail_all(ConnectionLost(f"the server closed {self.topic}"))
        elif isinstance(event, ReplyTimedOut):
            self._handle_timeout(event)

    def _request_rejoin(self) -> None:
        if self._ws is not None and not self._closed:
            self._rejoin_due = True
            self._wakeup.set()

    def _handle_timeout(self, event: object) -> None:
        if isinstance(event, ReplyTimedOut):
            call = self._by_ref.pop(str(event.ref), None)
            if call is not None and not call.done.done() and call.chunks is None:
                call.done.set_exception(CallTimeout(int(self.timeout * 1000)))

    def _on_response(self, raw: bytes | None, payload: Any) -> None:
        try:
            if raw is not None:
                response = _response_decoder.decode(raw)
            else:
                response = msgspec.convert(payload, Response)
        except (msgspec.DecodeError, msgspec.ValidationError):
            logger.warning("ignoring a malformed api push: %r", payload)
            return
        call = self._calls.get(response.request_id)
        if call is None:
            self._on_push(response)
            return
        if call.chunks is not None:
            call.chunks.put_nowait(response)
            return
        if call.done.done():
            return
        if not response.success:
            call.done.set_exception(
                error_from_wire(response.error or "", can_retry=response.can_retry)
            )
        elif response.async_ and not response.has_more:
            # An async ack (a durable call's carries {"durable": "stored", …}): the final
            # Response, which has async false, comes later.
            call.acked = True
        else:
            call.done.set_result(response.result)

    def _on_push(self, response: Response) -> None:
        if self.on_push is not None:
            try:
                self.on_push(response)
            except Exception:  # the application's callback must not stop the client
                logger.exception("on_push raised")
        if self._pushes.full():
            self._pushes.get_nowait()
            self.pushes_dropped += 1
        self._pushes.put_nowait(response)

    async def next_push(self, timeout: float | None = None) -> Response:
        """The oldest unsolicited Response not yet taken (waits up to ``timeout`` s)."""
        async with asyncio.timeout(timeout):
            return await self._pushes.get()

    async def pushes(self) -> AsyncIterator[Response]:
        """Unsolicited Responses as they arrive (relay messages, presence notices)."""
        while True:
            yield await self._pushes.get()

    def _on_reply(self, event: ReplyReceived) -> None:
        call = self._by_ref.pop(str(event.ref), None)
        if call is None or call.done.done():
            return
        response = event.response if isinstance(event.response, Mapping) else {}
        if event.status != "ok":
            details = {k: v for k, v in response.items() if k != "reason"}
            error = error_from_wire(str(response.get("reason", "error")),
                                    can_retry=bool(details.get("can_retry", False)),
                                    details=details)
            if call.chunks is not None:
                call.chunks.put_nowait(error)
            else:
                call.done.set_exception(error)
        elif call.chunks is None and not call.acked:
            call.done.set_result(None)  # fire-and-forget: the reply is all there is

    def _fail_all(self, error: TransportError) -> None:
        for call in list(self._calls.values()):
            if call.chunks is not None:
                call.chunks.put_nowait(error)
            elif not call.done.done():
                call.done.set_exception(error)
        self._calls.clear()
        self._by_ref.clear()

    async def _flush(self) -> None:
        ws = self._ws
        frames = self._core.data_to_send() if ws is not None else []
        for frame in frames:
            with contextlib.suppress(WebSocketException, OSError):
                await ws.send(frame)  # type: ignore[union-attr]
