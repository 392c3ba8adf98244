"""The asyncio client: one connection to a gateway's Phoenix socket, one joined topic.

See :mod:`genapi.client` for a tour. The connection loop (connect, heartbeats,
reconnect with jittered backoff, rejoin) lives here; which Response ends which call in
:mod:`.calls`; the WebSocket itself behind :mod:`.wire`'s connector.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any, ParamSpec, TypeVar, overload
from urllib.parse import urlencode

import msgspec
from websockets.exceptions import WebSocketException

from ..errors import (
    CallTimeout,
    ConnectionLost,
    NotConnected,
    UsageError,
)
from ..functions.refs import bind_arguments, decoder, function_ref
from ..messages import Response
from ..protocol.phoenix import (
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
from ..security import redact
from .calls import Calls, PendingCall, is_stream_init
from .wire import Connector, WireSocket, websockets_connector

__all__ = ["Client"]

logger = logging.getLogger("genapi.client")

_response_decoder = msgspec.json.Decoder(Response)
P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


class Client:
    """A connection to a gateway's Phoenix socket with one joined topic.

    ``url`` is the socket endpoint as phoenix.js takes it (``ws://host:4000/socket``;
    ``/websocket`` and ``vsn`` are appended). ``params`` are the connect params (the
    authenticator reads them). ``timeout`` bounds each call in seconds by default.
    ``on_push`` is called with every unsolicited Response; the last ``max_pushes`` of them
    also wait in :meth:`pushes` (older ones are dropped and counted in ``pushes_dropped``).
    ``connector`` opens the WebSocket (default: a real one; ``genapi.testing`` passes an
    in-process one).
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
        connector: Connector | None = None,
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
        self._connector = connector or websockets_connector
        self._core = ClientConnection(V2_JSON, timeout=timeout)
        self._core.join(topic, dict(join_params or {}))
        self._ws: WireSocket | None = None
        self._calls = Calls()
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
        self._calls.fail_all(ConnectionLost("client closed"))

    @property
    def connected(self) -> bool:
        """True while the socket is open and the topic joined."""
        return self._joined.is_set()

    async def wait_joined(self, timeout: float | None = None) -> None:
        """Wait until the topic is (re)joined."""
        async with asyncio.timeout(timeout):
            await self._joined.wait()

    # -- calls --------------------------------------------------------------------------

    @overload
    async def call(self, function: Callable[P, Awaitable[R]], /,
                   *args: P.args, **kwargs: P.kwargs) -> R: ...

    @overload
    async def call(self, function: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R: ...

    @overload
    async def call(self, service: str, request_type: str, /,
                   args: Mapping[str, Any] | None = None, *, version: str | None = None,
                   timeout: float | None = None, request_id: str | None = None) -> Any: ...

    async def call(self, target: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Call a function and return its result (for async functions: the final result).

        Two forms::

            user = await client.call(get_user, user_id="1")        # typed by get_user
            user = await client.call("user_service", "get_user", {"user_id": "1"})

        The first takes the function object declared with ``Service.function``: mypy checks
        the arguments against its signature, and the result is converted back to its
        declared return type (a Struct, dataclass or pydantic model comes back as one).
        Parameters genapi fills itself (``CallContext``, ``StreamHelper``, ``RequestInfo``)
        must have defaults for mypy to let callers omit them; otherwise use the second
        form. The second form takes ``version``, ``timeout`` and ``request_id``.

        Raises the typed :class:`~genapi.ApiError` of an error Response (with the
        ``details`` of its reply: every argument problem…), :class:`~genapi.CallTimeout`
        when no answer comes in time, :class:`ConnectionLost`, or
        :class:`~genapi.UsageError` for a stream function (use :meth:`stream`; the
        stream is cancelled on the server).
        """
        if isinstance(target, str):
            return await self._call(target, *args, **kwargs)
        ref = function_ref(target)
        if ref.response_type == "stream":
            raise UsageError(f"{ref.service}.{ref.request_type} is a stream function: "
                             "iterate client.stream(...) instead of awaiting client.call(...)")
        result = await self._call(ref.service, ref.request_type,
                                  bind_arguments(target, args, kwargs), version=ref.version)
        convert = decoder(target)
        return result if convert is None or result is None else convert.convert(result)

    async def _call(
        self,
        service: str,
        request_type: str,
        args: Mapping[str, Any] | None = None,
        *,
        version: str | None = None,
        timeout: float | None = None,
        request_id: str | None = None,
    ) -> Any:
        limit = self.timeout if timeout is None else timeout
        call = self._start(service, request_type, args, version, request_id, queue=False)
        await self._flush()
        try:
            async with asyncio.timeout(limit):
                return await call.done
        except TimeoutError:
            raise CallTimeout(int(limit * 1000)) from None
        except UsageError:
            if call.stream_refused:
                await self.cancel(call.request_id)
            raise
        finally:
            self._calls.forget(call)

    @overload
    def stream(self, function: Callable[P, AsyncIterator[T]], /,
               *args: P.args, **kwargs: P.kwargs) -> AsyncIterator[T]: ...

    @overload
    def stream(self, function: Callable[P, Iterator[T]], /,
               *args: P.args, **kwargs: P.kwargs) -> AsyncIterator[T]: ...

    @overload
    def stream(self, service: str, request_type: str, /,
               args: Mapping[str, Any] | None = None, *, version: str | None = None,
               timeout: float | None = None, request_id: str | None = None,
               ) -> AsyncIterator[Any]: ...

    def stream(self, target: Any, /, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        """Call a stream function and yield its chunks until the stream ends.

        Like :meth:`call`, by function object (an ``AsyncIterator[T]``/``Iterator[T]``
        generator; chunks come back as ``T``) or by name (``timeout`` bounds the wait for
        each chunk). Leaving the loop early cancels the stream on the server.
        """
        if isinstance(target, str):
            return self._stream(target, *args, **kwargs)
        ref = function_ref(target)
        convert = decoder(target, streaming=True)
        chunks = self._stream(ref.service, ref.request_type,
                              bind_arguments(target, args, kwargs), version=ref.version)
        return chunks if convert is None else _converted(chunks, convert.convert)

    async def _stream(
        self,
        service: str,
        request_type: str,
        args: Mapping[str, Any] | None = None,
        *,
        version: str | None = None,
        timeout: float | None = None,
        request_id: str | None = None,
    ) -> AsyncIterator[Any]:
        async for response in self.responses(service, request_type, args, version=version,
                                             timeout=timeout, request_id=request_id):
            if is_stream_init(response):
                continue
            if response.async_ and not response.has_more and response.result is None:
                continue  # an async function's ack, or a stream's end
            if response.result is not None or response.has_more:
                yield response.result

    async def responses(
        self,
        service: str,
        request_type: str,
        args: Mapping[str, Any] | None = None,
        *,
        version: str | None = None,
        timeout: float | None = None,
        request_id: str | None = None,
    ) -> AsyncIterator[Response]:
        """Every Response of one call as it arrives — an async ack and the result, a
        stream's init, chunks and end, a sync result — for any response type (tools use it:
        ``genapi call``). Fire-and-forget calls yield nothing. An error raises its typed
        :class:`~genapi.ApiError`. ``timeout`` bounds the wait for each Response; leaving
        the loop early cancels the call on the server.
        """
        limit = self.timeout if timeout is None else timeout
        call = self._start(service, request_type, args, version, request_id, queue=True)
        queue = call.queue
        if queue is None:
            raise UsageError("calls started for their Responses always have a queue")
        await self._flush()
        finished = False
        streaming = False
        try:
            while True:
                try:
                    async with asyncio.timeout(limit):
                        item = await queue.get()
                except TimeoutError:
                    raise CallTimeout(int(limit * 1000)) from None
                if item is None:  # fire-and-forget: acknowledged, nothing follows
                    finished = True
                    return
                if isinstance(item, BaseException):
                    finished = True
                    raise item
                streaming = streaming or is_stream_init(item)
                # an async ack (a durable call's carries a result); a stream's end is not
                ack = item.async_ and not item.has_more and not streaming
                finished = not (item.has_more or ack)
                yield item
                if finished:
                    return
        finally:
            self._calls.forget(call)
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
        queue: bool,
    ) -> PendingCall:
        if self._closed or self._runner is None or self._runner.done():
            raise NotConnected("the client is not connected")
        rid = request_id or uuid.uuid4().hex
        payload: dict[str, Any] = {
            "request_id": rid, "service": service, "request_type": request_type,
            "args": dict(args or {}),
        }
        if version is not None:
            payload["version"] = version
        call = PendingCall(rid, f"{service}.{request_type}",
                           queue=asyncio.Queue() if queue else None)
        call.ref = self._core.push(self.topic, self.event, payload)
        self._calls.add(call)
        return call

    # -- connection loop ----------------------------------------------------------------

    async def _run(self, ready: asyncio.Future[None]) -> None:
        attempt = 0
        while not self._closed:
            opened = False
            try:
                async with self._connector(self.url, self._headers) as ws:
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
                    ready.set_exception(NotConnected(
                        f"cannot connect to {redact(self.url)}: {exc}"))
                    return
                logger.info("connection to %s lost: %s", redact(self.url), exc)
            finally:
                self._ws = None
                self._joined.clear()
                if opened and not self._closed:
                    self._core.disconnected()
                    self._calls.fail_all(ConnectionLost("connection lost"))
            if not self.reconnect or self._closed:
                return
            attempt += 1
            await asyncio.sleep(self._backoff(attempt))

    def _backoff(self, attempt: int) -> float:
        delay = min(self.max_backoff, 0.05 * 2 ** (attempt - 1))
        return float(delay * self._rng.uniform(0.5, 1.5))

    async def _session(self, ws: WireSocket, ready: asyncio.Future[None]) -> None:
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

    async def _heartbeats(self, ws: WireSocket) -> None:
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
            self._calls.on_reply(str(event.ref), event.status, event.response)
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
            self._calls.fail_all(ConnectionLost(f"the server closed {self.topic}"))
        elif isinstance(event, ReplyTimedOut):
            self._handle_timeout(event)

    def _request_rejoin(self) -> None:
        if self._ws is not None and not self._closed:
            self._rejoin_due = True
            self._wakeup.set()

    def _handle_timeout(self, event: object) -> None:
        if isinstance(event, ReplyTimedOut):
            self._calls.on_timeout(str(event.ref), int(self.timeout * 1000))

    def _on_response(self, raw: bytes | None, payload: Any) -> None:
        try:
            if raw is not None:
                response = _response_decoder.decode(raw)
            else:
                response = msgspec.convert(payload, Response)
        except (msgspec.DecodeError, msgspec.ValidationError):
            logger.warning("ignoring a malformed api push: %r", payload)
            return
        if not self._calls.on_response(response):
            self._on_push(response)

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

    async def _flush(self) -> None:
        ws = self._ws
        frames = self._core.data_to_send() if ws is not None else []
        for frame in frames:
            with contextlib.suppress(WebSocketException, OSError):
                await ws.send(frame)  # type: ignore[union-attr]


async def _converted(chunks: AsyncIterator[Any], convert: Callable[[Any], Any]
                     ) -> AsyncIterator[Any]:
    """``chunks`` converted to their declared type (closing the source when left early)."""
    try:
        async for chunk in chunks:
            yield convert(chunk)
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]
