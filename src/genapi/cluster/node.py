"""The service-node runtime: serves registered functions to gateways over NATS.

::

    node = Node([data_service], nats="nats://127.0.0.1:4222", push_token="s3cret")
    await node.serve()          # until SIGTERM / SIGINT, then drains

or ``genapi node myapp:data_service --nats nats://127.0.0.1:4222``.

On start the node pushes each service's config to every gateway, answers pulls, sends
heartbeats (twice a second), and runs calls and streams; a running stream also sends a
keepalive at the pace the gateway asked for, so a gateway notices a lost chunk or a dead
node within seconds. Gateways check permissions and arguments; the node checks arguments
again and the callable deny list before every call.

A push a gateway refuses (wrong push token, its admin gate, invalid configs) means that
gateway routes no calls of the service here: the node logs an ERROR naming the gateway
and the reason, does not count the service as served, and pushes it again with backoff
(``refused_retry`` seconds, doubled each time up to ``refused_retry_max``), so fixing the
gateway's side (or its token) brings the node in without a restart. :attr:`Node.refused`
lists what is refused now.

On SIGTERM it drains: it tells gateways it leaves (they stop routing to it), stops taking
calls, lets in-flight calls and streams finish up to ``drain_timeout``, answers each one
still running then with ``Server shutting down`` (``can_retry``) so no client waits for a
timeout, and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import os
import signal
import socket
from collections.abc import Iterable
from typing import Any, TypeVar

import msgspec

from ..errors import ApiError, ConfigError, ShuttingDown, TransportError
from ..execution.context import CallContext
from ..execution.invoke import Invoker
from ..functions.callables import check_callable
from ..functions.registry import Registry
from ..functions.routes import Route
from ..functions.service import Service
from ..messages import Response
from ..transport.nats.link import Link, Msg
from ..transport.nats.subjects import Subjects
from ..transport.nats.wire import (
    AckMessage,
    CallMessage,
    CancelMessage,
    ChunkMessage,
    ConfigsMessage,
    HeartbeatMessage,
    PullMessage,
    PushMessage,
    PushResult,
    ReplyMessage,
    VerifyMessage,
    VerifyResult,
    decode,
    encode,
)
from .codec import export_route

__all__ = ["Node", "default_node_name"]

logger = logging.getLogger("genapi.node")
_Answer = TypeVar("_Answer", PushResult, VerifyResult)


def default_node_name() -> str:
    """``<host>-<pid>``: stable for the life of the process, unique on a machine."""
    host = socket.gethostname().split(".")[0] or "node"
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in host)
    return f"{safe}-{os.getpid()}"


class _Flow:
    """Stream flow control: how far the gateway has acknowledged."""

    __slots__ = ("acked", "changed", "window")

    def __init__(self, window: int) -> None:
        self.window = max(1, window)
        self.acked = 0
        self.changed = asyncio.Event()

    async def wait_for_room(self, seq: int) -> None:
        while seq - self.acked > self.window:
            self.changed.clear()
            await self.changed.wait()

    def ack(self, seq: int) -> None:
        if seq > self.acked:
            self.acked = seq
            self.changed.set()


class Node:
    """A service node. See the module docs."""

    def __init__(
        self,
        services: Iterable[Service],
        *,
        nats: str = "nats://127.0.0.1:4222",
        name: str | None = None,
        prefix: str = "genapi",
        push_token: str | None = None,
        heartbeat_interval: float = 0.5,
        drain_timeout: float = 10.0,
        push_wait: float = 0.5,
        max_threads: int = 64,
        allowlist: Iterable[str] | None = None,
        detail_error: bool = False,
        refused_retry: float = 1.0,
        refused_retry_max: float = 60.0,
        pull: bool = False,
    ) -> None:
        self.name = name or default_node_name()
        self.subjects = Subjects(prefix)
        self.registry = Registry(allowlist=allowlist)
        self.push_token = push_token
        self.heartbeat_interval = heartbeat_interval
        self.drain_timeout = drain_timeout
        self.push_wait = push_wait
        self.detail_error = detail_error
        self.refused_retry = refused_retry
        self.refused_retry_max = refused_retry_max
        self.pull = pull
        #: Services some gateway refused, with ``"<gateway>: <reason>"`` for each refusal.
        self.refused: dict[str, list[str]] = {}
        self._retrying: dict[str, asyncio.Task[None]] = {}
        self.allowlist = tuple(allowlist) if allowlist is not None else None
        self.invoker = Invoker(max_threads)
        self.link = Link(nats, name=f"node:{self.name}")
        self._services: dict[str, list[Route]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None  # set by start()
        self._flows: dict[str, _Flow] = {}
        self._giving_up: set[str] = set()  # call ids the drain ended: they answer so
        self._background: set[asyncio.Task[Any]] = set()
        self._call_subscription: Any = None
        self._stopping = asyncio.Event()
        for service in services:
            self.add_service(service, push=False)

    # -- services ---------------------------------------------------------------------

    def add_service(self, service: Service, *, push: bool = True) -> None:
        """Serve ``service`` (replacing one of the same name); pushes it when running."""
        routes = self.registry.replace_service(service.name, service.fun_configs)
        for route in routes:
            if route.function is None:
                raise ConfigError(f"service {service.name}", [
                    f"{route.request_type}: a node serves only local functions"])
        self._services[service.name] = routes
        if push and self.link.usable:
            self._spawn(self.push(service.name))

    def services(self) -> list[str]:
        """The names of the services served."""
        return sorted(self._services)

    def exported(self, service: str) -> list[dict[str, Any]]:
        """The service's configs as plain data (what gateways receive)."""
        return [export_route(route) for route in self._services.get(service, [])]

    def config_version(self, service: str) -> str:
        """A digest of the service's exported configs: equal code, equal version."""
        data = msgspec.json.encode(self.exported(service), order="sorted")
        return hashlib.sha256(data).hexdigest()[:16]

    # -- lifecycle --------------------------------------------------------------------

    async def start(self, timeout: float | None = 30.0) -> None:
        """Connect, subscribe, push every service, start heartbeats."""
        await self.link.ready(timeout)
        # Asked once: on 3.11 every get_running_loop() is a getpid() system call.
        self._loop = asyncio.get_running_loop()
        s = self.subjects
        self._call_subscription = await self.link.subscribe(s.call(self.name), self._on_call)
        await self.link.subscribe(s.cancel(self.name), self._on_cancel)
        await self.link.subscribe(s.ack(self.name), self._on_ack)
        await self.link.subscribe(s.pull(self.name), self._on_pull)
        await self.link.subscribe(s.version(self.name), self._on_version)
        await self.link.subscribe(s.config_request, self._on_config_request)
        self._spawn(self._heartbeats())
        for service in self.services():
            await self.push(service)
        served = [s for s in self.services() if s not in self.refused]
        if served:
            logger.info("node %s serving %s", self.name, ", ".join(served))
        if self.refused:
            logger.error("node %s: %s refused by gateway(s) (see above), not routed here; "
                         "pushing again with backoff", self.name, ", ".join(self.refused))

    async def serve(self) -> None:
        """Start, run until SIGTERM or SIGINT (or :meth:`stop`), then drain."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._stopping.set)
        await self.start()
        await self._stopping.wait()
        await self.drain()

    def stop(self) -> None:
        """Ask :meth:`serve` to drain and return."""
        self._stopping.set()

    async def drain(self, timeout: float | None = None) -> None:
        """Leave (gateways stop routing here), stop taking calls, let in-flight work finish
        up to ``timeout`` (``drain_timeout``), answer what still runs with ``Server shutting
        down``, disconnect."""
        try:
            await self.link.publish(self.subjects.leave, encode(
                HeartbeatMessage(node=self.name, services={})))
        except TransportError as exc:  # gateways notice by the missing heartbeats instead
            logger.warning("node %s could not announce it is leaving: %s", self.name, exc)
        if self._call_subscription is not None:
            # Drained, not dropped: calls already delivered to this client still run.
            await self.link.drain_subscription(self._call_subscription)
            self._call_subscription = None
        pending = list(self._tasks.values())
        if pending:
            await asyncio.wait(pending, timeout=self.drain_timeout if timeout is None else timeout)
        late = dict(self._tasks)
        if late:
            logger.warning("node %s gives up on %d call(s) still running after its drain "
                           "timeout; they are answered 'Server shutting down'",
                           self.name, len(late))
            self._giving_up.update(late)
            for task in late.values():
                task.cancel()
            await asyncio.gather(*late.values(), return_exceptions=True)
        retrying = list(self._retrying.values())
        for task in [*self._background, *retrying]:
            task.cancel()
        await asyncio.gather(*self._background, *retrying, return_exceptions=True)
        await self.link.close()
        self.invoker.shutdown()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _heartbeats(self) -> None:
        while True:
            beat = HeartbeatMessage(
                node=self.name, services={s: self.config_version(s) for s in self.services()})
            try:
                await self.link.publish(self.subjects.heartbeat, encode(beat))
            except TransportError as exc:  # NATS is away: the next beat tries again
                logger.debug("node %s heartbeat not sent: %s", self.name, exc)
            await asyncio.sleep(self.heartbeat_interval)

    # -- config distribution ----------------------------------------------------------

    async def push(self, service: str, *, force: bool = False) -> list[PushResult]:
        """Push ``service``'s config to every gateway; their answers (waits ``push_wait``)."""
        message = PushMessage(service=service, node=self.name,
                              config_version=self.config_version(service),
                              fun_configs=self.exported(service), push_token=self.push_token,
                              force=force, pull=self.pull)
        answers = await self._broadcast(self.subjects.push, encode(message))
        results = _decode_answers(answers, PushResult)
        refusals = [f"{r.gateway}: {'; '.join(r.reasons)}" for r in results
                    if r.status == "rejected"]
        if refusals:
            retrying = service in self._retrying
            self.refused[service] = refusals
            for refusal in refusals:
                logger.error("node %s: gateway %s refused service %s; that gateway routes "
                             "no calls of %s here", self.name, refusal, service, service)
            if not retrying and self._loop is not None:
                self._retrying[service] = self._loop.create_task(self._push_again(service))
        elif service in self.refused and results:
            del self.refused[service]
            logger.info("node %s: %s accepted now; serving it", self.name, service)
        return results

    async def _push_again(self, service: str) -> None:
        """Push a refused service again, with backoff, until no gateway refuses it."""
        delay = self.refused_retry
        try:
            while service in self.refused and service in self._services:
                logger.error("node %s: pushing %s again in %.1f s", self.name, service, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.refused_retry_max)
                try:
                    await self.push(service)
                except TransportError as exc:  # NATS away: the next round tries again
                    logger.debug("node %s: push of %s failed: %s", self.name, service, exc)
        finally:
            self._retrying.pop(service, None)

    async def verify(self, service: str) -> list[VerifyResult]:
        """Ask every gateway whether it has this node's current config of ``service``."""
        message = VerifyMessage(service=service, config_version=self.config_version(service))
        answers = await self._broadcast(self.subjects.verify, encode(message))
        return _decode_answers(answers, VerifyResult)

    async def _broadcast(self, subject: str, payload: bytes) -> list[bytes]:
        nc = self.link.client()
        inbox = nc.new_inbox()
        answers: list[bytes] = []

        async def collect(msg: Msg) -> None:
            # With no gateway listening, the server answers with an empty 503 status
            # ("no responders"): that is no answer, not a malformed one.
            if msg.data and not (msg.headers and msg.headers.get("Status")):
                answers.append(msg.data)

        subscription = await self.link.subscribe(inbox, collect)
        try:
            await self.link.publish(subject, payload, reply=inbox)
            await asyncio.sleep(self.push_wait)
        finally:
            await self.link.unsubscribe(subscription)
        return answers

    async def _on_config_request(self, msg: Msg) -> None:
        for service in self.services():
            self._spawn(self.push(service))

    async def _on_pull(self, msg: Msg) -> None:
        await self._answer_pull(msg, full=True)

    async def _on_version(self, msg: Msg) -> None:
        await self._answer_pull(msg, full=False)

    async def _answer_pull(self, msg: Msg, *, full: bool) -> None:
        try:
            service = decode(msg.data, PullMessage).service
        except (msgspec.DecodeError, msgspec.ValidationError):
            return
        if service not in self._services:
            answer = ConfigsMessage(service=service, error=f"unknown service {service}")
        else:
            answer = ConfigsMessage(service=service, config_version=self.config_version(service),
                                    fun_configs=self.exported(service) if full else [])
        await self._send_reply(msg, encode(answer))

    # -- calls ------------------------------------------------------------------------

    async def _on_call(self, msg: Msg) -> None:
        try:
            call = decode(msg.data, CallMessage)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            await self._respond(msg, ReplyMessage(ok=False, error=f"Invalid request: {exc}"))
            return
        runner = self._run_stream(msg, call) if call.stream else self._run_call(msg, call)
        task = (self._loop or asyncio.get_running_loop()).create_task(runner)
        self._tasks[call.call_id] = task
        task.add_done_callback(functools.partial(self._forget, call.call_id))

    def _forget(self, call_id: str, _task: object = None) -> None:
        self._tasks.pop(call_id, None)
        self._flows.pop(call_id, None)

    async def _on_cancel(self, msg: Msg) -> None:
        with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
            task = self._tasks.get(decode(msg.data, CancelMessage).call_id)
            if task is not None:
                task.cancel()

    async def _on_ack(self, msg: Msg) -> None:
        with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
            ack = decode(msg.data, AckMessage)
            flow = self._flows.get(ack.call_id)
            if flow is not None:
                flow.ack(ack.seq)

    def _prepare(self, call: CallMessage) -> tuple[Route, Any, dict[str, Any] | None]:
        request = call.request
        route = self.registry.resolve(request.service, request.request_type, request.version)
        if route.function is not None:
            check_callable(route.function, self.allowlist)  # again, at dispatch
        bound = route.validator.bind(request.args)
        extra = {"call": CallContext(request, node=self.name)} if route.wants_context else None
        return route, bound, extra

    def _error(self, exc: BaseException, call: CallMessage) -> ReplyMessage:
        if isinstance(exc, ApiError):
            return ReplyMessage(ok=False, error=exc.message, can_retry=exc.can_retry)
        if isinstance(exc, ConfigError):  # the deny list, at dispatch
            logger.error("node %s refused %s: %s", self.name, call.request.request_type, exc)
        else:
            logger.error("%s.%s (request %s) raised", call.request.service,
                         call.request.request_type, call.request.request_id, exc_info=exc)
        detail = f": {exc!r}" if self.detail_error else ""
        return ReplyMessage(ok=False, error=f"Internal Server Error{detail}")

    async def _run_call(self, msg: Msg, call: CallMessage) -> None:
        try:
            route, bound, extra = self._prepare(call)
            result = await self.invoker.call(route, call.request, bound, extra)
            reply = ReplyMessage(ok=True, result=result)
            try:
                payload = encode(reply)
            except (TypeError, msgspec.EncodeError) as exc:
                raise TypeError(f"the result cannot be encoded as JSON: {exc}") from exc
        except asyncio.CancelledError:
            if call.call_id not in self._giving_up:
                return  # the gateway gave up on it: nobody waits for an answer
            payload = encode(ReplyMessage(ok=False, error=ShuttingDown.default_message,
                                          can_retry=True))
        except Exception as exc:
            payload = encode(self._error(exc, call))
        await self._send_reply(msg, payload)

    async def _respond(self, msg: Msg, reply: ReplyMessage) -> None:
        await self._send_reply(msg, encode(reply))

    async def _send_reply(self, msg: Msg, payload: bytes) -> None:
        try:
            await self.link.respond(msg, payload)
        except TransportError as exc:  # the gateway's wait for the answer ends the call
            logger.warning("node %s could not answer on %s: %s", self.name, msg.subject, exc)

    async def _run_stream(self, msg: Msg, call: CallMessage) -> None:
        inbox = call.inbox
        try:
            route, bound, extra = self._prepare(call)
        except Exception as exc:
            await self._respond(msg, self._error(exc, call))
            return
        if inbox is None:
            await self._respond(msg, ReplyMessage(ok=False, error="Invalid request: no inbox"))
            return
        flow = self._flows[call.call_id] = _Flow(call.window)
        await self._respond(msg, ReplyMessage(ok=True, result="started"))
        seq = 0
        sent = 0  # the last number published: what keepalives carry

        async def send(kind: str, data: Any = None, error: str | None = None,
                       can_retry: bool = False, *, wait: bool = True) -> None:
            nonlocal seq, sent
            seq += 1
            if wait:
                await flow.wait_for_room(seq)
            chunk = ChunkMessage(seq=seq, kind=kind, data=data, error=error,
                                 can_retry=can_retry)
            try:
                payload = encode(chunk)
            except (TypeError, msgspec.EncodeError):
                payload = encode(ChunkMessage(seq=seq, kind="error",
                                              error="Internal Server Error"))
            await self.link.publish(inbox, payload)
            sent = seq

        async def keepalive() -> None:
            interval = max(0.05, call.keepalive_ms / 1000)
            while True:
                await asyncio.sleep(interval)
                try:
                    await self.link.publish(inbox, encode(ChunkMessage(seq=sent,
                                                                       kind="keepalive")))
                except TransportError as exc:  # the gateway sees the silence instead
                    logger.debug("node %s keepalive not sent: %s", self.name, exc)

        async def emit(response: Response) -> None:
            if not response.success:
                await send("error", error=response.error, can_retry=response.can_retry)
            elif response.has_more:
                await send("chunk", response.result)
            elif response.result is not None:
                await send("last", response.result)
            else:
                await send("end")

        beating = asyncio.get_running_loop().create_task(keepalive())
        try:
            if not await self.invoker.stream(route, call.request, bound, emit, extra):
                await send("end")
        except asyncio.CancelledError:
            if call.call_id in self._giving_up:
                await self._end_stream(call, send, ShuttingDown.default_message, True)
            return
        except Exception as exc:
            reply = self._error(exc, call)
            await self._end_stream(call, send, reply.error or "Internal Server Error",
                                   reply.can_retry)
        finally:
            beating.cancel()

    async def _end_stream(self, call: CallMessage, send: Any, error: str,
                          can_retry: bool) -> None:
        try:  # without waiting for acks: the gateway may have stopped reading
            await send("error", error=error, can_retry=can_retry, wait=False)
        except TransportError as exc:  # the gateway's stream idle check ends it
            logger.warning("node %s could not end stream %s: %s", self.name, call.call_id, exc)


def _decode_answers(answers: list[bytes], kind: type[_Answer]) -> list[_Answer]:
    """The gateways' answers that decode as ``kind`` (others are logged and skipped)."""
    decoded = []
    for data in answers:
        try:
            decoded.append(decode(data, kind))
        except (msgspec.DecodeError, msgspec.ValidationError):
            logger.warning("ignored a malformed %s from a gateway", kind.__name__)
    return decoded
