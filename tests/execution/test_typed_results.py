"""Results and stream chunks are encoded from their declared types."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any, TypedDict

import msgspec
import pydantic
import pytest

from genapi import (
    Executor,
    Registry,
    Request,
    Response,
    Service,
    StreamHelper,
    ThreadStreamHelper,
    encode_response,
)
from genapi.telemetry.events import Telemetry


class NewUser(pydantic.BaseModel):
    id: uuid.UUID
    name: str


class Out(msgspec.Struct):
    name: str
    at: dt.datetime


@dataclasses.dataclass
class Tick:
    n: int


class Summary(TypedDict):
    total: int


class Opaque:
    """Not a type msgspec can encode."""


USER_ID = uuid.UUID("123e4567-e89b-12d3-a456-426614174000")
WHEN = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)
svc = Service("out")


@svc.function()
async def pydantic_model(name: str) -> NewUser:
    return NewUser(id=USER_ID, name=name)


@svc.function()
def struct(name: str) -> Out:  # a plain function, run in a thread
    return Out(name, WHEN)


@svc.function()
async def filtered(name: str) -> Out:
    return {"name": name, "at": WHEN, "password": "hunter2"}  # type: ignore[return-value]


@svc.function()
async def dataclass_list() -> list[Tick]:
    return [Tick(1), Tick(2)]


@svc.function()
async def typed_dict() -> Summary:
    return {"total": 3}


@svc.function()
async def broken() -> Out:
    return {"name": 1}  # type: ignore[return-value]


@svc.function(response_type="async")
async def later() -> NewUser:
    return NewUser(id=USER_ID, name="later")


@svc.function(response_type="stream")
async def ticks(count: int) -> AsyncIterator[Tick]:
    for n in range(count):
        yield Tick(n)


@svc.function(response_type="stream")
def thread_ticks(count: int) -> Iterator[Tick]:
    for n in range(count):
        yield Tick(n)


@svc.function(response_type="stream")
async def helper_ticks(stream: StreamHelper[Tick]) -> None:
    await stream.send_result(Tick(1))
    await stream.send_last_result(Tick(2))


@svc.function(response_type="stream")
def thread_helper_ticks(stream: ThreadStreamHelper[Tick]) -> None:
    stream.send_result(Tick(1))
    stream.send_complete()


@pytest.fixture
def executor() -> Executor:
    registry = Registry(telemetry=Telemetry())
    registry.add_service(svc)
    return Executor(registry)


async def run(executor: Executor, request_type: str, **args: Any) -> list[Response]:
    """Every Response of a call: the first one and what reaches the sink."""
    later: list[Response] = []
    done = asyncio.Event()

    async def sink(response: Response) -> None:
        later.append(response)
        if not (response.success and response.has_more):  # a terminal Response
            done.set()

    first = await executor.execute(Request(request_id="r", service="out",
                                           request_type=request_type, args=args), sink)
    assert first is not None
    if first.async_:
        async with asyncio.timeout(5):
            await done.wait()
    return [first, *later]


@pytest.mark.parametrize(("request_type", "args", "result"), [
    ("pydantic_model", {"name": "Ann"}, {"id": str(USER_ID), "name": "Ann"}),
    ("struct", {"name": "Bo"}, {"name": "Bo", "at": "2024-05-01T12:00:00Z"}),
    ("filtered", {"name": "Cy"}, {"name": "Cy", "at": "2024-05-01T12:00:00Z"}),
    ("dataclass_list", {}, [{"n": 1}, {"n": 2}]),
    ("typed_dict", {}, {"total": 3}),
])
async def test_results_are_encoded_from_their_types(executor: Executor, request_type: str,
                                                    args: dict[str, Any],
                                                    result: Any) -> None:
    """A pydantic model, Struct, dataclass or TypedDict result reaches the client as JSON
    (a dict returned for a Struct type is converted to it: extra keys are dropped)."""
    responses = await run(executor, request_type, **args)
    assert responses == [Response.sync("r", result)]
    encode_response(responses[0])  # encodable as it is


async def test_async_results_are_encoded(executor: Executor) -> None:
    """The final Response of an async function carries the encoded result."""
    responses = await run(executor, "later")
    assert responses[1] == Response.sync("r", {"id": str(USER_ID), "name": "later"})


async def test_a_result_not_matching_its_type_is_a_logged_internal_error(
        executor: Executor, caplog: pytest.LogCaptureFixture) -> None:
    """A function breaking its own return type is a server bug: 500, logged with why."""
    with caplog.at_level(logging.ERROR, "genapi.executor"):
        responses = await run(executor, "broken")
    assert responses == [Response.fail("r", "Internal Server Error")]
    assert "does not match its declared type Out" in caplog.text


@pytest.mark.parametrize("request_type", ["ticks", "thread_ticks"])
async def test_generator_chunks_are_encoded(executor: Executor, request_type: str) -> None:
    """Chunks of an ``AsyncIterator[Tick]`` / ``Iterator[Tick]`` stream arrive as JSON."""
    responses = await run(executor, request_type, count=2)
    assert [r.result for r in responses] == ["init", {"n": 0}, {"n": 1}, None]


async def test_stream_helper_chunks_are_encoded(executor: Executor) -> None:
    """``StreamHelper[Tick]`` declares the chunk type: chunks and the last one are encoded."""
    responses = await run(executor, "helper_ticks")
    assert [r.result for r in responses] == ["init", {"n": 1}, {"n": 2}]
    threaded = await run(executor, "thread_helper_ticks")
    assert [r.result for r in threaded] == ["init", {"n": 1}, None]


def test_the_declared_types_are_on_the_route(executor: Executor) -> None:
    """Routes know their result and chunk types (the schemas export them)."""
    registry = executor.registry
    assert registry.get_route("out", "struct").result_type is Out  # type: ignore[union-attr]
    assert registry.get_route("out", "ticks").chunk_type is Tick  # type: ignore[union-attr]
    helper = registry.get_route("out", "helper_ticks")
    assert helper is not None and helper.chunk_type is Tick and helper.result_type is None


def test_unencodable_return_types_are_registration_errors() -> None:
    """A return type genapi cannot encode is refused when the function is registered."""
    bad = Service("bad")

    @bad.function()
    async def f() -> Opaque:
        return Opaque()

    with pytest.raises(ValueError, match=r"the return type .* cannot be encoded"):
        Registry(telemetry=Telemetry()).add_service(bad)
