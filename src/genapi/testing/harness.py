"""Testing a gateway in-process: the real protocol and pipeline, no port, no server.

::

    async with InProcessGateway(gateway) as api:
        alice = await api.connect(user_id="alice", roles=["admin"])
        assert await alice.call("user_service", "delete_user", {"user_id": "2"})
        async for tick in alice.stream("event_service", "ticker", {"count": 3}):
            ...
        with api.override(database, fake_database):
            ...
        http = api.http(user_id="alice")          # httpx.AsyncClient on the HTTP API
        await http.post("/api/user_service/list_users", json={})

:class:`InProcessGateway` runs the gateway's lifespan (``gateway.running()``), and every
client it makes is a real :class:`genapi.Client` speaking Phoenix Channels v2 to the
gateway's ASGI app through :func:`~genapi.testing.asgi.asgi_connector`: authentication,
admission, topics, the executor, pushes, cancellation — all as in production.

Identities: a client made with ``user_id``/``roles`` is that user without a token (the
harness puts an authenticator in front of the gateway's own that recognises its clients
by a random per-harness key, and hands everything else to the gateway's authenticator);
give ``params`` instead to go through the real authenticator (a JWT, say).
"""

from __future__ import annotations

import contextlib
import inspect
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..client import Client
from ..errors import UsageError
from ..gateway import Gateway
from ..gateway.auth import ANONYMOUS, Identity
from .asgi import asgi_connector

if TYPE_CHECKING:
    import httpx

__all__ = ["IDENTITY_HEADER", "InProcessGateway"]

#: The header a harness's clients present their identity key in.
IDENTITY_HEADER = "x-genapi-test-identity"


class _Identities:
    """The authenticator in front of the gateway's own while a harness runs."""

    def __init__(self, original: Callable[..., Any] | None) -> None:
        self.original = original
        self._secret = secrets.token_hex(16)
        self._known: dict[str, Identity] = {}

    def key_for(self, identity: Identity) -> str:
        key = f"{self._secret}-{len(self._known)}"
        self._known[key] = identity
        return key

    async def identify(self, params: Mapping[str, str], headers: Mapping[str, str]
                       ) -> Identity | None:
        identity = self._known.get(headers.get(IDENTITY_HEADER, ""))
        if identity is not None:
            return identity
        original = self.original
        if original is None:
            return ANONYMOUS
        check = getattr(original, "identify", None) or original
        result = check(params, headers)
        if inspect.isawaitable(result):
            result = await result
        return result  # type: ignore[no-any-return]

    def __call__(self, params: Mapping[str, str], headers: Mapping[str, str]) -> Any:
        return self.identify(params, headers)


class InProcessGateway:
    """Runs ``gateway`` in this event loop and makes in-process clients of it.

    ``overrides`` replace dependencies (:class:`~genapi.Depends`) while it runs. On exit
    its clients are closed, the overrides undone and the gateway stopped (it can be
    started again). ``client_ip`` is the address the clients come from.
    """

    def __init__(self, gateway: Gateway, *,
                 overrides: Mapping[Callable[..., Any], Callable[..., Any]] | None = None,
                 client_ip: str = "127.0.0.1") -> None:
        self.gateway = gateway
        self.client_ip = client_ip
        self._overrides = dict(overrides or {})
        self._stack: contextlib.AsyncExitStack | None = None
        self._identities: _Identities | None = None
        self._clients: list[Client] = []

    async def __aenter__(self) -> InProcessGateway:
        if self._stack is not None:
            raise UsageError("this InProcessGateway is already running")
        stack = contextlib.AsyncExitStack()
        try:
            await stack.enter_async_context(self.gateway.running())
            identities = _Identities(self.gateway.authenticator)
            self.gateway.authenticator = identities
            stack.callback(setattr, self.gateway, "authenticator", identities.original)
            stack.enter_context(self.override_all(self._overrides))
            stack.push_async_callback(self._close_clients)
        except BaseException:
            await stack.aclose()
            raise
        self._identities = identities
        self._stack = stack
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        stack, self._stack = self._stack, None
        self._identities = None
        if stack is not None:
            await stack.aclose()

    async def _close_clients(self) -> None:
        clients, self._clients = self._clients, []
        for client in clients:
            await client.close()

    # -- clients --------------------------------------------------------------------------

    def _headers(self, user_id: str | None, roles: Iterable[str], device_id: str | None,
                 headers: Mapping[str, str] | None) -> dict[str, str]:
        identities = self._identities
        if identities is None:
            raise UsageError("start the InProcessGateway first: async with "
                             "InProcessGateway(gateway) as api")
        out = dict(headers or {})
        if user_id is not None:
            identity = Identity(user_id=user_id, roles=tuple(roles), device_id=device_id)
            out[IDENTITY_HEADER] = identities.key_for(identity)
        return out

    def client(self, *, user_id: str | None = None, roles: Iterable[str] = (),
               device_id: str | None = None, params: Mapping[str, str] | None = None,
               headers: Mapping[str, str] | None = None, topic: str = "api:lobby",
               timeout: float = 10.0, reconnect: bool = False, **options: Any) -> Client:
        """A :class:`genapi.Client` of this gateway, not yet connected (``async with`` it).

        With ``user_id`` (and ``roles``, ``device_id``) it is that user; otherwise the
        gateway's authenticator decides from ``params`` and ``headers``.
        """
        client = Client(
            f"ws://testserver{self.gateway.socket_path}", params=params, topic=topic,
            timeout=timeout, reconnect=reconnect,
            headers=self._headers(user_id, roles, device_id, headers),
            connector=asgi_connector(self.gateway, client_ip=self.client_ip), **options)
        self._clients.append(client)
        return client

    async def connect(self, **options: Any) -> Client:
        """A connected client (see :meth:`client`); closed when the harness stops."""
        client = self.client(**options)
        await client.connect()
        return client

    def http(self, *, user_id: str | None = None, roles: Iterable[str] = (),
             device_id: str | None = None, headers: Mapping[str, str] | None = None
             ) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` on the gateway's HTTP routes, in-process (close it,
        or use it with ``async with``)."""
        import httpx

        transport = httpx.ASGITransport(app=self.gateway,
                                        client=(self.client_ip, 50_000))
        return httpx.AsyncClient(transport=transport, base_url="http://testserver",
                                 headers=self._headers(user_id, roles, device_id, headers))

    # -- dependencies -----------------------------------------------------------------------

    @contextlib.contextmanager
    def override(self, dependency: Callable[..., Any], replacement: Callable[..., Any]
                 ) -> Iterator[None]:
        """Use ``replacement`` for ``dependency`` inside the ``with`` block."""
        with self.override_all({dependency: replacement}):
            yield

    @contextlib.contextmanager
    def override_all(self, overrides: Mapping[Callable[..., Any], Callable[..., Any]]
                     ) -> Iterator[None]:
        """Several overrides at once, undone (previous ones restored) on exit."""
        table = self.gateway.registry.dependency_overrides
        missing = object()
        before = {dep: table.get(dep, missing) for dep in overrides}
        table.update(overrides)
        try:
            yield
        finally:
            for dep, previous in before.items():
                if previous is missing:
                    table.pop(dep, None)
                else:
                    table[dep] = previous  # type: ignore[assignment]

