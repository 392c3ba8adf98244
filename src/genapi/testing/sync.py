"""A blocking test client, for tests that are not ``async``::

    def test_get_user() -> None:
        with TestClient(gateway, user_id="1") as client:
            assert client.call("user_service", "get_user", {"user_id": "1"})["name"]
            assert list(client.stream("event_service", "ticker", {"count": 2})) == [...]
            bob = client.connect(user_id="2")          # another user, same gateway
            with client.override(database, fake_database):
                ...

It runs an :class:`~genapi.testing.InProcessGateway` on an event loop in a background
thread (as Starlette's ``TestClient`` does) and forwards each method to a real, in-process
:class:`genapi.Client`, waiting for the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Mapping,
)
from typing import Any, TypeVar

from ..client import Client
from ..errors import UsageError
from ..gateway import Gateway
from ..messages import Response
from .harness import InProcessGateway

__all__ = ["SyncClient", "TestClient"]

T = TypeVar("T")


class _Loop:
    """An event loop running in its own thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever,
                                        name="genapi-testclient", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


class SyncClient:
    """One in-process client (one identity), with blocking methods."""

    __test__ = False  # not a pytest test class

    def __init__(self, client: Client, loop: _Loop) -> None:
        self.client = client
        self._loop = loop

    def call(self, *args: Any, **kwargs: Any) -> Any:
        """:meth:`genapi.Client.call`, blocking (by name or by function object)."""
        return self._loop.run(self.client.call(*args, **kwargs))

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        """:meth:`genapi.Client.stream`, as a plain iterator (leaving it early cancels)."""
        return self._iterate(self.client.stream(*args, **kwargs))

    def responses(self, *args: Any, **kwargs: Any) -> Iterator[Response]:
        """:meth:`genapi.Client.responses`, as a plain iterator."""
        return self._iterate(self.client.responses(*args, **kwargs))

    def _iterate(self, source: AsyncIterator[T]) -> Iterator[T]:
        step = source.__anext__
        try:
            while True:
                try:
                    yield self._loop.run(_next(step))
                except StopAsyncIteration:
                    return
        finally:
            closer = getattr(source, "aclose", None)
            if closer is not None:
                self._loop.run(closer())

    def next_push(self, timeout: float | None = 5.0) -> Response:
        """The oldest unsolicited Response (relay messages…), waiting up to ``timeout``."""
        return self._loop.run(self.client.next_push(timeout))

    def cancel(self, request_id: str) -> None:
        """Cancel an in-flight call of this client."""
        self._loop.run(self.client.cancel(request_id))


async def _next(step: Callable[[], Awaitable[T]]) -> T:
    return await step()


class TestClient(SyncClient):
    """A blocking in-process client of ``gateway``; use it with ``with``.

    ``user_id``, ``roles`` and ``device_id`` are its identity (none: anonymous, or what
    the gateway's authenticator makes of ``params``); ``overrides`` replace dependencies
    while it runs. :meth:`connect` makes more clients on the same gateway.
    """

    __test__ = False

    def __init__(self, gateway: Gateway, *, user_id: str | None = None,
                 roles: Iterable[str] = (), device_id: str | None = None,
                 params: Mapping[str, str] | None = None,
                 overrides: Mapping[Callable[..., Any], Callable[..., Any]] | None = None,
                 timeout: float = 10.0) -> None:
        self.gateway = gateway
        self._identity: dict[str, Any] = {"user_id": user_id, "roles": tuple(roles),
                                          "device_id": device_id, "params": params,
                                          "timeout": timeout}
        self._harness = InProcessGateway(gateway, overrides=overrides)
        self._loop_: _Loop | None = None

    def __enter__(self) -> TestClient:
        loop = _Loop()
        try:
            loop.run(self._harness.__aenter__())
            client = loop.run(self._harness.connect(**self._identity))
        except BaseException:
            with contextlib.suppress(Exception):
                loop.run(self._harness.__aexit__(None, None, None))
            loop.stop()
            raise
        self._loop_ = loop
        super().__init__(client, loop)
        return self

    def __exit__(self, *exc_info: object) -> None:
        loop, self._loop_ = self._loop_, None
        if loop is None:
            return
        try:
            loop.run(self._harness.__aexit__(None, None, None))
        finally:
            loop.stop()

    def _running(self) -> _Loop:
        if self._loop_ is None:
            raise UsageError("use the TestClient in a with block: with TestClient(gw) as c")
        return self._loop_

    def connect(self, **options: Any) -> SyncClient:
        """Another client of the same gateway (``user_id=``, ``roles=``, ``params=``…)."""
        loop = self._running()
        return SyncClient(loop.run(self._harness.connect(**options)), loop)

    @contextlib.contextmanager
    def override(self, dependency: Callable[..., Any], replacement: Callable[..., Any]
                 ) -> Iterator[None]:
        """Use ``replacement`` for ``dependency`` inside the ``with`` block."""
        with self._harness.override(dependency, replacement):
            yield

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """An HTTP request to the gateway's routes (an ``httpx.Response``), as this client's
        user."""
        loop = self._running()
        identity = {k: self._identity[k] for k in ("user_id", "roles", "device_id")}

        async def send() -> Any:
            async with self._harness.http(**identity) as http:
                response = await http.request(method, path, **kwargs)
                await response.aread()
                return response

        return loop.run(send())
