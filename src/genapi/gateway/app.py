"""The gateway: an ASGI application serving the Phoenix socket and the HTTP API.

::

    gateway = genapi.Gateway([users], authenticator=JWTAuthenticator(SECRET))
    # uvicorn module:gateway    |   genapi serve module:gateway   (graceful drain)

Routes: ``{socket_path}/websocket`` (Phoenix Channels v2, what phoenix.js connects to),
``POST {api_prefix}/{service}/{request_type}`` and ``GET /healthz``; a WebSocket on any
other path is answered 404 naming the right one. The gateway can be mounted inside a
Starlette or FastAPI app (``app.mount("/rt", gateway)``); its background work then starts
with the first request, or explicitly with ``async with gateway.running():`` inside the
host app's lifespan. It can be started and stopped any number of times (tests do).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import ipaddress
import json
import logging
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Mapping,
    MutableMapping,
    Sequence,
)
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request as HttpRequest
from starlette.responses import Response as HttpResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute

from ..diagnostics import Diagnostics
from ..diagnostics.errorlog import install_recent_errors
from ..diagnostics.process import ProcessHealth
from ..durable import DurableCalls, DurableSettings, DurableStore
from ..errors import AuthenticationFailed, ShuttingDown, UsageError
from ..execution.executor import Executor
from ..functions.registry import Registry
from ..functions.service import Service
from ..protocol.phoenix import TopicRouter, serializer_for_vsn
from ..ratelimit import RateLimiter
from ..security import AdminAction, AdminGate

# Modules adding /admin routes through admin.admin_routes are imported here for that
# effect, one line each, marked noqa F401 (imported for its registration).
from . import (
    admin_config,  # noqa: F401
    admin_write,  # noqa: F401
)
from .admin import AdminConsole
from .admission import Admission
from .auth import identify
from .connection import Connection, count_job
from .events import CONNECTION_CLOSE, CONNECTION_OPEN, CONNECTION_REFUSED
from .host import Admitted, Refusal
from .http import call_endpoint, health_endpoint
from .inflight import UserInflight
from .jobs import DurablePart
from .longpoll import LongPoll
from .ops import Operations
from .parts import GatewayPart, MetricsPart, TracingPart
from .settings import (
    CLOSE_GOING_AWAY,
    CLOSE_RESTART,
    AdminSettings,
    ClusterOptions,
    GatewaySettings,
    GatewayStats,
    JoinAuthorizer,
    MetricsSettings,
    TracingSettings,
)

if TYPE_CHECKING:
    from ..observability.metrics import PrometheusExporter
    from ..observability.tracing import RequestTracer
    from .cluster import GatewayCluster

__all__ = ["Gateway", "JoinAuthorizer"]

logger = logging.getLogger("genapi.gateway")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class Gateway:
    """The ASGI gateway: serves ``services`` (or a ``registry`` / ``executor``) to clients.

    Everything else is optional and grouped by concern:

    * ``authenticator`` — who is calling (:mod:`genapi.gateway.auth`); without one every
      connection is anonymous;
    * ``settings`` — :class:`GatewaySettings`: paths, topics, event, connection limits,
      admission rates, anonymous access, join authorizer, trusted proxies, detail_error;
    * ``rate_limiter`` — a :class:`genapi.ratelimit.RateLimiter` (global and per-function
      limits, in memory or in Redis);
    * ``cluster`` — a NATS URL or :class:`ClusterOptions`: reach functions on service
      nodes and receive their configs;
    * ``admin`` — :class:`AdminSettings` (or a bare :class:`~genapi.AdminGate`): the admin
      gate, and the console at ``/admin`` and ``/dashboard`` when it has a token;
    * ``metrics`` — ``True`` or :class:`MetricsSettings`: Prometheus at ``GET /metrics``
      (:attr:`metrics`); ``tracing`` — ``True`` or :class:`TracingSettings`: an
      OpenTelemetry span per call (:attr:`tracer`);
    * ``durable`` — :class:`~genapi.DurableSettings` (or a
      :class:`~genapi.durable.DurableStore`): guaranteed execution for durable functions
      (:attr:`durable`; the store is opened and migrated at start, the workers drained at
      stop; ``/admin/jobs`` with the admin console). Without it, durable functions
      answer ``Durable calls unavailable``;
    * ``routes`` — extra Starlette routes served by the same app (pages, static files).
    """

    def __init__(
        self,
        services: Iterable[Service] = (),
        *,
        registry: Registry | None = None,
        executor: Executor | None = None,
        authenticator: Callable[..., Any] | None = None,
        settings: GatewaySettings | None = None,
        rate_limiter: RateLimiter | None = None,
        cluster: ClusterOptions | str | None = None,
        admin: AdminSettings | AdminGate | None = None,
        metrics: MetricsSettings | bool = False,
        tracing: TracingSettings | bool = False,
        durable: DurableSettings | DurableStore | None = None,
        routes: Sequence[BaseRoute] = (),
    ) -> None:
        self.settings = settings = settings or GatewaySettings()
        self.executor = executor if executor is not None else Executor(
            registry if registry is not None else Registry(),
            detail_error=settings.detail_error)
        self.registry = self.executor.registry
        for service in services:
            self.registry.add_service(service)
        if rate_limiter is not None:
            self.executor.rate_limiter = rate_limiter
        self.authenticator = authenticator
        self.allow_anonymous = (authenticator is None if settings.allow_anonymous is None
                                else settings.allow_anonymous)
        self.join_authorizer = settings.join_authorizer
        self.socket_path = settings.socket_path
        self.topic_router = TopicRouter(list(settings.topics))
        self.event = settings.event
        self.limits = settings.limits
        self.trusted_proxies = settings.trusted_proxies
        self.stats = GatewayStats()
        #: Process health: memory, CPU, loop lag (a timer while running), fds, tasks, GC.
        self.process_health = ProcessHealth(settings.health)
        self.admission = Admission(settings.admission, self.executor.telemetry)
        self.connections: set[Connection] = set()
        self.user_inflight = UserInflight(settings.limits.max_inflight_per_user)
        # acked async and stream work counts against its user's cap until it ends (the
        # hook finds each connection's own gateway: an executor may serve several)
        self.executor.jobs.counted = count_job
        self.draining = False
        admin_settings = AdminSettings.of(admin)
        self.admin = admin_settings.effective_gate()
        self.longpoll = (LongPoll(self, settings.longpoll, settings.longpoll_route)
                         if settings.longpoll is not None else None)
        self.cluster: GatewayCluster | None = None
        self._on_cluster: list[Callable[[GatewayCluster], object]] = []
        #: The admin write actions (:class:`~genapi.gateway.ops.Operations`).
        self.ops = Operations(self, who=admin_settings.name)
        self._on_cluster.append(self.ops.join)
        if cluster is not None:
            self._join(ClusterOptions.of(cluster))
        self._started = False
        self._sweeper: asyncio.Task[None] | None = None
        self.metrics, self.tracer, self.admin_console, self._parts = self._build_parts(
            MetricsSettings.of(metrics), TracingSettings.of(tracing), admin_settings.token)
        if self.metrics is not None:
            self.metrics.process = self.process_health.snapshot
        if self.longpoll is not None:
            self._parts.append(self.longpoll)
        self._parts.append(self.ops)
        #: Durable calls (``durable=``), None without them.
        self.durable: DurableCalls | None = None
        self._durable_part: DurablePart | None = None
        if durable is not None:
            console = self.admin_console
            part = DurablePart(self.executor, durable,
                               check=console.check if console is not None else None,
                               gate=lambda: self.admin)
            self._durable_part, self.durable = part, part.calls
            self._parts.insert(0, part)  # its /admin/jobs routes before the console's /admin
            if self.metrics is not None:
                self.metrics.durable_queue = part.calls.queue_stats
        self.app = Starlette(
            routes=[
                WebSocketRoute(settings.socket_route, _SocketEndpoint(self)),
                Route(settings.api_prefix.rstrip("/") + "/{service}/{request_type}",
                      self._http_call, methods=["POST"]),
                Route("/healthz", self._health, methods=["GET"]),
                *(route for part in self._parts for route in part.routes()),
                *routes,
                WebSocketRoute("/{path:path}", _WrongSocketPath(settings.socket_route)),
            ],
            lifespan=self._lifespan,
        )

    def _build_parts(
        self, metrics: MetricsSettings | None, tracing: TracingSettings | None,
        admin_token: str | None,
    ) -> tuple[PrometheusExporter | None, RequestTracer | None, AdminConsole | None,
               list[GatewayPart]]:
        parts: list[GatewayPart] = []
        exporter = tracer = console = None
        if metrics is not None:
            metrics_part = MetricsPart(metrics, self.executor, self.stats)
            exporter = metrics_part.exporter
            parts.append(metrics_part)
        if tracing is not None:
            tracing_part = TracingPart(tracing, self.executor)
            tracer = tracing_part.tracer
            parts.append(tracing_part)
        if admin_token is not None:
            console = AdminConsole(self, admin_token, name=self.ops.who)
            parts.append(console)
        return exporter, tracer, console, parts

    @property
    def topics(self) -> list[str]:
        """The topic patterns clients may join."""
        return list(self.topic_router.patterns)

    # -- ASGI ---------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._started and scope["type"] in ("http", "websocket"):
            self._start()
        elif scope["type"] == "lifespan":
            self._check_server_limits(receive)
        await self.app(scope, receive, send)

    def _check_server_limits(self, receive: Receive) -> None:
        """Warn when the server buffers larger WebSocket messages than the gateway accepts.

        Plain ``uvicorn`` reads up to its ``ws_max_size`` (16 MB by default) per message
        before the gateway sees it and refuses it. uvicorn's lifespan ``receive`` is a
        method of an object holding its Config, which is a cheap look; other servers are
        not inspected.
        """
        config = getattr(getattr(receive, "__self__", None), "config", None)
        server_limit = getattr(config, "ws_max_size", None)
        limit = self.limits.max_frame_bytes
        if isinstance(server_limit, int) and server_limit > limit:
            logger.warning(
                "the server accepts WebSocket messages up to %d bytes, the gateway only %d "
                "(max_frame_bytes): every connection may buffer the difference; run "
                "`genapi serve`, or uvicorn with --ws-max-size %d", server_limit, limit, limit)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        async with self.running():
            yield

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Gateway]:
        """Run the gateway's background work; on exit drain connections and stop."""
        self._start()
        try:
            yield self
        finally:
            await self.aclose()

    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        self.draining = False  # again, after an aclose()
        self.executor.reopen()
        self.process_health.start()
        install_recent_errors()  # the debug report's recent warnings and errors
        for part in self._parts:
            part.start()  # again, after an aclose()
        self._sweeper = asyncio.get_running_loop().create_task(
            self._sweep_idle(), name="genapi-idle-sweeper"
        )
        if self.cluster is not None:
            self.cluster.start()

    async def aclose(self) -> None:
        """Drain connections and stop background work (idempotent)."""
        await self.drain()
        if self._durable_part is not None:  # before the cluster: calls may run on nodes
            await self._durable_part.aclose()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        if self.cluster is not None:
            await self.cluster.stop()
        limiter = self.executor.rate_limiter
        if limiter is not None and hasattr(limiter, "aclose"):
            await limiter.aclose()
        await self.executor.aclose()
        for part in self._parts:
            part.stop()
        self.process_health.stop()
        self._started = False

    def health(self) -> dict[str, Any]:
        """``{"status": "ok" | "degraded" | "error", "problems": [...], "process": {...}}``:
        pools, breakers, nodes, draining and the process's thresholds (what ``GET
        /admin/health`` serves; :meth:`~genapi.Diagnostics.health`)."""
        console = self.admin_console
        diagnostics = console.diagnostics if console is not None else Diagnostics(self)
        return diagnostics.health()

    def set_detail_error(self, enabled: bool) -> None:
        """Show (or hide) internal error details to clients; needs ``change_detail_error``."""
        self.admin.require(AdminAction.CHANGE_DETAIL_ERROR)
        self.executor.detail_error = enabled

    def join_cluster(self, nats: ClusterOptions | str, *, push_token: str | None = None) -> None:
        """Join a cluster after construction (before serving); allows node config pushes."""
        if self.cluster is not None:
            raise UsageError("this gateway is already in a cluster")
        options = ClusterOptions.of(nats)
        if push_token is not None:
            options = dataclasses.replace(options, push_token=push_token)
        self.admin = AdminGate({*self.admin.allowed_actions, AdminAction.PUSH_CONFIG})
        self._join(options)

    def _join(self, options: ClusterOptions) -> None:
        from .cluster import GatewayCluster  # loads nats-py: only for gateways in a cluster

        self.cluster = GatewayCluster(self.registry, self.executor, options, self.admin)
        if self.longpoll is not None:  # sessions of other gateways are reached through NATS
            self.longpoll.join_cluster(self.cluster.name, self.cluster.forward_longpoll)
            self.cluster.serve_longpoll(self.longpoll.serve, self.longpoll.settings.window)
        for callback in self._on_cluster:
            callback(self.cluster)

    def on_cluster(self, callback: Callable[[GatewayCluster], object]) -> None:
        """Call ``callback`` with the cluster side when the gateway is in a cluster: now
        if it is, else when it joins (how the relay moves its groups onto NATS)."""
        self._on_cluster.append(callback)
        if self.cluster is not None:
            callback(self.cluster)

    # -- connections --------------------------------------------------------------------

    def channel_joined(self, connection: Connection, topic: str) -> None:
        """A connection joined ``topic``: durable results waiting for its user go there."""
        if self.durable is not None:
            self.durable.channel_joined(connection.user_id, connection.sink(topic))

    def client_ip(self, peer: str | None, headers: Mapping[str, str]) -> str | None:
        """The client's address: the peer, or ``X-Forwarded-For`` from a trusted proxy."""
        if peer is not None and peer in self.trusted_proxies:
            forwarded = headers.get("x-forwarded-for", "")
            first = forwarded.split(",")[0].strip()
            with contextlib.suppress(ValueError):
                return str(ipaddress.ip_address(first))
        return peer

    async def drain(self, timeout: float | None = None) -> None:
        """Stop accepting; give every running call (sync, async, stream) ``timeout``
        seconds (``limits.drain_timeout`` by default); answer each call still running then
        with ``Server shutting down`` (``can_retry``); then close every socket with 1012 so
        clients reconnect (to another instance). No call is left without its terminal."""
        self.draining = True  # new sockets, calls and HTTP requests are refused from now on
        budget = self.limits.drain_timeout if timeout is None else timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget
        sync_calls = [task for c in self.connections for task in c.calls.tasks()]
        if sync_calls:
            await asyncio.wait(sync_calls, timeout=budget)
        # Async and stream work gets what is left of the budget, then a terminal error.
        ended = await self.executor.drain(max(0.0, deadline - loop.time()))
        late = [task for c in self.connections for task in c.calls.tasks()]
        for connection in list(self.connections):
            ended += connection.calls.end_all(ShuttingDown())
        if late:
            await asyncio.wait(late, timeout=1.0)  # each answers, then the socket closes
        if ended:
            logger.warning("drain: %d call(s) still running after %.1f s were answered "
                           "'Server shutting down'", ended, budget)
        for connection in list(self.connections):
            connection.close(CLOSE_RESTART)
        finished = [asyncio.ensure_future(c.finished.wait()) for c in self.connections]
        if finished:
            _, pending = await asyncio.wait(finished, timeout=5.0)
            for waiter in pending:
                waiter.cancel()

    async def _sweep_idle(self) -> None:
        interval = min(5.0, self.limits.heartbeat_timeout / 4)
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for connection in list(self.connections):
                if not connection.closing and now > connection.core.idle_deadline:
                    self.stats.idle_closed += 1
                    connection.close(CLOSE_GOING_AWAY, flush=False)

    async def _serve_socket(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        admitted = await self._admit_socket(scope)
        if not isinstance(admitted, Admitted):
            await _refuse(scope, send, admitted.status, {"reason": admitted.reason},
                          admitted.headers)
            return
        await send({"type": "websocket.accept", **(
            # required when phoenix.js sends authToken
            {"subprotocol": "phoenix"} if "phoenix" in scope.get("subprotocols", []) else {})})
        connection = Connection(self, admitted.identity, admitted.serializer, admitted.ip)
        direct = scope.get("extensions", {}).get("genapi.direct")
        if direct is not None and direct.can_hold:
            # genapi's driver keeps the socket open after this returns: no task (and
            # coroutine chain through the middleware) per idle connection.
            opened = self._connection_opened(connection)
            try:
                connection.start_direct(direct, functools.partial(
                    self._connection_closed, connection, opened))
            except BaseException:
                self._connection_closed(connection, opened)
                raise
            direct.hold()
            return
        runner = (connection.serve_direct(direct) if direct is not None
                  else connection.serve(receive, send))  # type: ignore[arg-type]
        await self.serve_connection(connection, runner)

    async def _admit_socket(self, scope: Scope) -> Admitted | Refusal:
        # Its own frame: the decoded parameters and headers are freed once admitted, not
        # held for the connection's life by the coroutine that serves it.
        params = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"),
                                keep_blank_values=True))
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        peer = scope.get("client")
        return await self.admit(params, headers, peer[0] if peer else None)

    async def admit(self, params: Mapping[str, str], headers: Mapping[str, str],
                    peer: str | None) -> Admitted | Refusal:
        """Check a new connection (WebSocket or long poll): the admission rate, draining,
        the protocol version, the authentication. What it is admitted as, or the refusal
        (its HTTP status and the reason a client may see; counted and reported)."""
        ip = self.client_ip(peer, headers)
        if not self.admission.connect(ip):
            self.stats.connects_throttled += 1
            return self._refused(429, ip, "connect rate")
        serializer = serializer_for_vsn(params.get("vsn"))
        if serializer is None or self.draining:
            if self.draining:
                return self._refused(403, ip, "draining")
            return self._refused(403, ip, "unsupported vsn",
                                 f"unsupported vsn: {params.get('vsn')}")
        try:
            identity = await identify(self.authenticator, params, headers,
                                      allow_anonymous=self.allow_anonymous,
                                      peer=f"a connection from {ip}")
        except AuthenticationFailed as exc:
            return self._refused(401, ip, "authentication", exc.reason,
                                 ((b"www-authenticate", _www_authenticate(exc.reason)),))
        return Admitted(identity, serializer, ip)

    async def serve_connection(self, connection: Connection,
                               runner: Coroutine[Any, Any, None]) -> None:
        """Run an admitted connection until it ends, counted and reported while it lives."""
        opened = self._connection_opened(connection)
        try:
            await runner
        finally:
            self._connection_closed(connection, opened)

    def _connection_opened(self, connection: Connection) -> float:
        self.connections.add(connection)
        self.stats.connections_open += 1
        self.stats.connections_total += 1
        telemetry = self.executor.telemetry
        if telemetry.has_handlers(CONNECTION_OPEN):
            telemetry.emit(CONNECTION_OPEN, {"count": self.stats.connections_open},
                           {"ip_address": connection.ip_address, "user_id": connection.user_id})
        return time.monotonic()

    def _connection_closed(self, connection: Connection, opened: float) -> None:
        self.connections.discard(connection)
        self.stats.connections_open -= 1
        telemetry = self.executor.telemetry
        if telemetry.has_handlers(CONNECTION_CLOSE):
            telemetry.emit(
                CONNECTION_CLOSE,
                {"duration_ms": int((time.monotonic() - opened) * 1000),
                 "count": self.stats.connections_open},
                {"ip_address": connection.ip_address, "user_id": connection.user_id,
                 "code": connection.close_code or 0,
                 "reason": "server" if connection.close_code else "client"},
            )

    def _refused(self, status: int, ip: str | None, reason: str, detail: str | None = None,
                 headers: tuple[tuple[bytes, bytes], ...] = ()) -> Refusal:
        self.stats.connections_refused += 1
        telemetry = self.executor.telemetry
        if telemetry.has_handlers(CONNECTION_REFUSED):
            telemetry.emit(CONNECTION_REFUSED, {}, {"ip_address": ip, "reason": reason})
        return Refusal(status, detail or reason, headers)

    # -- HTTP ---------------------------------------------------------------------------

    async def _http_call(self, request: HttpRequest) -> HttpResponse:
        if self.draining:
            return HttpResponse(status_code=503)
        return await call_endpoint(self, request)

    async def _health(self, request: HttpRequest) -> HttpResponse:
        return await health_endpoint(self, request)


def _www_authenticate(reason: str) -> bytes:
    """RFC 6750's challenge: ``invalid_token`` with the reason, unless none was given."""
    if reason == "missing token":
        return b"Bearer"
    return f'Bearer error="invalid_token", error_description="{reason}"'.encode()


async def _refuse(scope: Scope, send: Send, status: int, body: Mapping[str, Any],
                  headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    """Refuse a WebSocket upgrade with ``status`` and a JSON body saying why, where the
    server supports ``websocket.http.response`` (else the server answers 403, bare)."""
    if "websocket.http.response" in scope.get("extensions", {}):
        payload = json.dumps(body).encode()
        await send({"type": "websocket.http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode()), *headers]})
        await send({"type": "websocket.http.response.body", "body": payload})
        return
    await send({"type": "websocket.close", "code": 1008})  # HTTP 403 at the upgrade


class _WrongSocketPath:
    """Any other WebSocket path: 404, naming the socket's path (a wrong path must not look
    like an authentication failure)."""

    def __init__(self, socket_route: str) -> None:
        self.socket_route = socket_route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        right = scope.get("root_path", "") + self.socket_route
        asked = scope.get("path", "")
        await _refuse(scope, send, 404, {
            "reason": f"no WebSocket endpoint at {asked}; connect to {right} "
                      f"(phoenix.js: new Socket(\"{right.removesuffix('/websocket')}\"))",
            "socket_path": right})


class _SocketEndpoint:
    """A raw ASGI endpoint (Starlette passes non-function endpoints through unwrapped)."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.gateway._serve_socket(scope, receive, send)
