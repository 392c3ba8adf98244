"""pytest fixtures for genapi APIs. Enable them in a ``conftest.py``::

    pytest_plugins = ["genapi.testing.plugin"]

    @pytest.fixture
    def genapi_gateway() -> genapi.Gateway:
        return myapp.gateway                     # the gateway under test

Fixtures:

* ``genapi_gateway`` — yours to define (the default fails, saying so);
* ``genapi_test_client`` — a blocking :class:`~genapi.testing.TestClient`, anonymous;
* ``genapi_api`` — an async :class:`~genapi.testing.InProcessGateway`, running (needs
  pytest-asyncio, or an equivalent plugin running async fixtures);
* ``genapi_client`` — an anonymous :class:`genapi.Client` connected through ``genapi_api``.

Each test gets a fresh start and stop of the gateway (gateways can be started again), and
dependency overrides made through them end with the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar, cast

import pytest

from ..client import Client
from ..gateway import Gateway
from .harness import InProcessGateway
from .sync import TestClient

__all__ = ["genapi_api", "genapi_client", "genapi_gateway", "genapi_test_client"]

F = TypeVar("F", bound=Callable[..., Any])


def async_fixture(function: F) -> F:
    """An async fixture: pytest-asyncio's marker (it works in every asyncio mode), or a
    plain fixture for whatever other plugin runs coroutines."""
    try:
        import pytest_asyncio
    except ImportError:  # pragma: no cover - without pytest-asyncio
        return cast(F, pytest.fixture(function))
    return cast(F, pytest_asyncio.fixture(function))


@pytest.fixture
def genapi_gateway() -> Gateway:
    """The gateway under test: define a fixture of this name in your conftest.py."""
    pytest.fail("define a fixture named genapi_gateway returning the Gateway to test "
                "(the genapi.testing.plugin fixtures use it)", pytrace=False)


@pytest.fixture
def genapi_test_client(genapi_gateway: Gateway) -> Iterator[TestClient]:
    """A blocking, anonymous in-process client of ``genapi_gateway``."""
    with TestClient(genapi_gateway) as client:
        yield client


@async_fixture
async def genapi_api(genapi_gateway: Gateway) -> AsyncIterator[InProcessGateway]:
    """``genapi_gateway`` running in-process, making clients (``await
    genapi_api.connect(user_id=…)``)."""
    async with InProcessGateway(genapi_gateway) as api:
        yield api


@async_fixture
async def genapi_client(genapi_api: InProcessGateway) -> Client:
    """An anonymous client connected to ``genapi_api``."""
    return await genapi_api.connect()
