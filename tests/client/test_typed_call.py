"""Calling functions by object: addressed by their declaration, arguments checked by mypy,
results converted back to their declared types."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from genapi import UsageError
from genapi.testing import InProcessGateway
from tests.client.typed_app import JOINED, NewUser, Tick, User, create_user, gateway, get_user
from tests.client.typed_app import ticks as ticks_fn

ROOT = Path(__file__).resolve().parents[2]


async def test_call_by_function_object_converts_the_result() -> None:
    """The result comes back as the declared type (Struct, pydantic model), the
    function's version is used, and arguments may be typed objects too."""
    async with InProcessGateway(gateway) as api:
        client = await api.connect()
        user = await client.call(get_user, user_id=7)
        assert user == User(7, "user7", JOINED)
        created = await client.call(create_user, NewUser(name="ann lee", email="a@x"))
        assert created == NewUser(name="Ann Lee", email="a@x")
        chunks = [tick async for tick in client.stream(ticks_fn, count=3)]
        assert chunks == [Tick(0), Tick(1), Tick(2)]


async def test_misuse_is_refused_before_anything_is_sent() -> None:
    """A stream function awaited with call(), a function never declared, bad arguments."""

    async def undeclared() -> None:
        ...

    async with InProcessGateway(gateway) as api:
        client = await api.connect()
        with pytest.raises(UsageError, match=r"users\.ticks is a stream function"):
            await client.call(ticks_fn, count=1)  # type: ignore[arg-type]
        with pytest.raises(UsageError, match=r"was not declared with Service\.function"):
            await client.call(undeclared)
        with pytest.raises(UsageError, match="unexpected keyword argument 'nope'"):
            await client.call(get_user, nope=1)  # type: ignore[call-arg]


async def test_call_by_name_on_a_stream_points_to_stream() -> None:
    """By name the client learns it from the stream's init, says so and cancels it."""
    async with InProcessGateway(gateway) as api:
        client = await api.connect()
        with pytest.raises(UsageError, match=r"iterate client\.stream"):
            await client.call("users", "ticks", {"count": 100_000})
        for _ in range(100):
            if not gateway.executor.jobs:
                break
            await __import__("asyncio").sleep(0.01)
        assert len(gateway.executor.jobs) == 0


CALLERS = """
    from genapi import Client
    from tests.client.typed_app import create_user, get_user, ticks

    async def use(client: Client) -> None:
        user = await client.call(get_user, user_id=1)
        reveal_type(user)
        await client.call(get_user, user_id="1")
        await client.call(get_user, userid=1)
        async for tick in client.stream(ticks, count=2):
            reveal_type(tick)
        anything = await client.call("users", "get_user", {"user_id": 1})
        reveal_type(anything)
"""


@pytest.mark.skipif(os.environ.get("GENAPI_SKIP_MYPY") == "1", reason="GENAPI_SKIP_MYPY=1")
def test_mypy_checks_callers(tmp_path: Path) -> None:
    """mypy sees the argument types and the result type of a call by function object."""
    # a fresh module name: mypy's shared cache knows modules by name, not by path
    module = tmp_path / f"callers_{uuid.uuid4().hex}.py"
    module.write_text(textwrap.dedent(CALLERS))
    paths = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary",
         "--cache-dir", str(ROOT / ".mypy_cache"), str(module)],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    lines = [line.split(": ", 1)[1] for line in result.stdout.splitlines()
             if line.startswith(str(module))]
    assert 'note: Revealed type is "tests.client.typed_app.User"' in lines
    assert 'note: Revealed type is "tests.client.typed_app.Tick"' in lines
    assert 'note: Revealed type is "Any"' in lines
    errors = [line for line in lines if line.startswith("error")]
    assert len(errors) == 2, result.stdout  # a str for an int, a misspelt argument
    assert errors[0].endswith('matches argument types "Callable[[int], Coroutine[Any, Any, '
                              'User]]", "str"  [call-overload]')
    assert errors[1].endswith('"int"  [call-overload]')
