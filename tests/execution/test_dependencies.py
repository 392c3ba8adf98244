"""Per-call dependencies: resolved before the call, cleaned up after it, overridable."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import pytest

from genapi import (
    ApiError,
    CallContext,
    ConfigError,
    Depends,
    Executor,
    Registry,
    Request,
    RequestInfo,
    Response,
    Service,
)
from genapi.telemetry.events import Telemetry

log: list[str] = []


class Session:
    def __init__(self, name: str) -> None:
        self.name = name
        self.closed = False


async def database() -> AsyncIterator[Session]:
    session = Session("db")
    log.append("open db")
    try:
        yield session
    except ValueError:
        log.append("rollback db")
        raise
    finally:
        session.closed = True
        log.append("close db")


def settings() -> Iterator[dict[str, str]]:
    log.append(f"open settings in {threading.current_thread().name.split('_')[0]}")
    yield {"env": "test"}
    log.append("close settings")


async def who(info: RequestInfo) -> str:
    return info.user_id or "anonymous"


def counter() -> list[int]:  # a plain function: runs in a worker thread
    log.append("counter")
    return [1]


async def repository(db: Annotated[Session, Depends(database)],
                     current: str = Depends(who)) -> dict[str, Any]:
    return {"db": db, "user": current}


svc = Service("deps")


@svc.function()
async def get(key: str, db: Session = Depends(database),
              repo: dict[str, Any] = Depends(repository)) -> dict[str, Any]:
    log.append(f"call {key}")
    return {"key": key, "same_session": repo["db"] is db, "closed": db.closed,
            "user": repo["user"]}


@svc.function()
def plain(config: Annotated[dict[str, str], Depends(settings)],
          a: list[int] = Depends(counter), b: list[int] = Depends(counter, use_cache=False)
          ) -> dict[str, Any]:
    log.append("call plain")
    return {"env": config["env"], "fresh": a is not b}


@svc.function()
async def fails(kind: str, db: Session = Depends(database)) -> None:
    if kind == "api":
        raise ApiError("not today")
    raise ValueError("boom")


async def refusing() -> str:
    raise ApiError("no database for you")


@svc.function()
async def refused(value: str = Depends(refusing)) -> str:
    return value


async def context_name(call: CallContext) -> str:
    return call.request.request_id


@svc.function()
async def context(rid: str = Depends(context_name)) -> str:
    return rid


@svc.function(response_type="stream")
async def rows(count: int, db: Session = Depends(database)) -> AsyncIterator[dict[str, Any]]:
    for n in range(count):
        log.append(f"row {n}")
        yield {"n": n, "closed": db.closed}


@svc.function(timeout=100)
async def slow(db: Session = Depends(database)) -> None:
    await asyncio.sleep(5)


@pytest.fixture
def executor() -> Executor:
    log.clear()
    registry = Registry(telemetry=Telemetry())
    registry.add_service(svc)
    return Executor(registry)


def req(request_type: str, **args: Any) -> Request:
    return Request(request_id="r", service="deps", request_type=request_type, args=args,
                   user_id="u7")


async def test_generator_dependencies_are_cleaned_up_after_the_call(executor: Executor) -> None:
    """Setup before the call, cleanup after it; a dependency asked for twice (directly and
    through another dependency) runs once per call; RequestInfo reaches dependencies."""
    response = await executor.execute(req("get", key="k"))
    assert response == Response.sync("r", {"key": "k", "same_session": True, "closed": False,
                                           "user": "u7"})
    assert log == ["open db", "call k", "close db"]


async def test_plain_dependencies_run_in_threads_and_can_opt_out_of_the_cache(
        executor: Executor) -> None:
    """Plain functions and plain generators run in worker threads; ``use_cache=False``
    gives a fresh value."""
    response = await executor.execute(req("plain"))
    assert response == Response.sync("r", {"env": "test", "fresh": True})
    assert log[0] == "open settings in genapi-call"
    assert log.count("counter") == 2
    assert log[-2:] == ["call plain", "close settings"]


async def test_the_call_s_exception_reaches_the_dependency(executor: Executor) -> None:
    """An exception of the function is raised inside the generator at its yield (so it can
    roll back); the client gets the usual answer."""
    response = await executor.execute(req("fails", kind="boom"))
    assert response == Response.fail("r", "Internal Server Error")
    assert log == ["open db", "rollback db", "close db"]
    log.clear()
    business = await executor.execute(req("fails", kind="api"))
    assert business == Response.fail("r", "not today")
    assert log == ["open db", "close db"]


async def test_a_dependency_may_refuse_the_call(executor: Executor) -> None:
    """An ApiError raised by a dependency is the call's answer."""
    assert await executor.execute(req("refused")) == Response.fail("r", "no database for you")


async def test_call_context_reaches_dependencies(executor: Executor) -> None:
    """A dependency taking a CallContext receives the call's."""
    assert await executor.execute(req("context")) == Response.sync("r", "r")


async def test_stream_dependencies_live_until_the_stream_ends(executor: Executor) -> None:
    """A stream's dependency stays open for every chunk and closes after the last."""
    chunks: list[Response] = []
    ended = asyncio.Event()

    async def sink(response: Response) -> None:
        chunks.append(response)
        if not response.has_more:
            ended.set()

    await executor.execute(req("rows", count=2), sink)
    await asyncio.wait_for(ended.wait(), 5)
    assert [c.result for c in chunks] == [{"n": 0, "closed": False},
                                          {"n": 1, "closed": False}, None]
    assert log == ["open db", "row 0", "row 1", "close db"]


async def test_dependencies_are_cleaned_up_when_the_call_times_out(executor: Executor) -> None:
    """The timeout covers the dependencies; cleanup still runs."""
    response = await executor.execute(req("slow"))
    assert response == Response.fail("r", "Request timed out after 100ms", can_retry=True)
    assert log == ["open db", "close db"]


async def test_overrides_replace_a_dependency_for_the_whole_registry(
        executor: Executor) -> None:
    """``registry.dependency_overrides`` swaps a dependency at any time (also for those
    asked for by other dependencies), and clearing it restores the original."""

    async def fake_database() -> AsyncIterator[Session]:
        log.append("open fake")
        yield Session("fake")
        log.append("close fake")

    def fake_who(info: RequestInfo, call: CallContext) -> str:  # may ask for more
        return f"fake:{info.user_id}:{call.request.request_id}"

    executor.registry.dependency_overrides[database] = fake_database
    executor.registry.dependency_overrides[who] = fake_who
    response = await executor.execute(req("get", key="k"))
    assert response is not None and response.result["user"] == "fake:u7:r"
    assert log == ["open fake", "call k", "close fake"]
    executor.registry.dependency_overrides.clear()
    log.clear()
    await executor.execute(req("get", key="k"))
    assert log == ["open db", "call k", "close db"]


def test_dependencies_are_not_client_arguments() -> None:
    """Dependency parameters are left out of the arguments (and of the catalog)."""
    registry = Registry(telemetry=Telemetry())
    registry.add_service(svc)
    route = registry.get_route("deps", "get")
    assert route is not None
    assert route.validator.names == ("key",)
    assert set(route.depends) == {"db", "repo"}


def test_bad_dependencies_are_registration_errors() -> None:
    """A dependency taking a client argument, or a cycle, is refused at registration."""

    def needs_arg(user_id: str) -> str:
        return user_id

    bad = Service("bad")

    @bad.function()
    async def f(x: str = Depends(needs_arg)) -> str:
        return x

    with pytest.raises(ConfigError, match="parameter 'user_id' is not a dependency"):
        Registry(telemetry=Telemetry()).add_service(bad)

    def first(value: str = Depends(lambda: "x")) -> str:
        return value

    def second(value: str = Depends(first)) -> str:
        return value

    first.__defaults__ = (Depends(second),)
    cyclic = Service("cyclic")

    @cyclic.function()
    async def g(x: str = Depends(first)) -> str:
        return x

    with pytest.raises(ConfigError, match="dependency cycle"):
        Registry(telemetry=Telemetry()).add_service(cyclic)
    with pytest.raises(ConfigError, match="Depends needs a callable"):
        Depends("not callable")  # type: ignore[arg-type]
