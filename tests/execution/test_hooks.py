"""Before and after hooks."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest

from genapi import (
    Executor,
    FunConfig,
    HookRejected,
    Registry,
    Request,
    RequestInfo,
    Response,
)
from genapi.telemetry.events import Telemetry

calls: list[str] = []


async def echo(x: int, *, info: RequestInfo) -> dict[str, Any]:
    calls.append("function")
    return {"x": x, "user": info.user_id}


def make(telemetry: Telemetry | None = None, **options: Any) -> Executor:
    calls.clear()
    registry = Registry(telemetry=telemetry or Telemetry())
    registry.add(FunConfig(service="svc", request_type="f", function=echo, **options))
    return Executor(registry)


def req(x: Any = 1, user: str | None = "u1") -> Request:
    return Request(request_id="r", service="svc", request_type="f", args={"x": x}, user_id=user)


async def test_before_hook_can_replace_request_and_config() -> None:
    """A before hook's new request (re-validated) and new config are used."""

    async def before(request: Request, config: FunConfig) -> Any:
        calls.append("before")
        new_request = msgspec.structs.replace(request, args={"x": request.args["x"] * 10},
                                              user_id="changed")
        return new_request, config.replace(timeout=10_000)

    executor = make(before_execute=before)
    assert await executor.execute(req(2)) == Response.sync("r", {"x": 20, "user": "changed"})
    assert calls == ["before", "function"]


@pytest.mark.parametrize(
    ("hook_result", "message"),
    [
        (HookRejected("Quota exceeded"), "hook rejected: Quota exceeded"),
        (False, "hook rejected: rejected"),
        (RuntimeError("db down"), "hook rejected: hook failed"),
    ],
)
async def test_before_hook_rejections(hook_result: Any, message: str) -> None:
    """Rejections answer 'hook rejected: …' and the function never runs."""

    def before(request: Request, config: FunConfig) -> Any:
        if isinstance(hook_result, Exception):
            raise hook_result
        return hook_result

    executor = make(before_execute=before)
    assert await executor.execute(req()) == Response.fail("r", message)
    assert calls == []


async def test_before_hook_timeout_is_honoured() -> None:
    """hook_timeout bounds a before hook (the original ignored it)."""

    async def slow(request: Request, config: FunConfig) -> None:
        await asyncio.sleep(5)

    executor = make(before_execute=slow, hook_timeout=100)
    response = await executor.execute(req())
    assert response == Response.fail("r", "hook rejected: hook timed out after 100ms")


async def test_hooks_see_trusted_identity_and_valid_args() -> None:
    """Hooks run after permission and validation: invalid or unauthorised calls skip them."""

    def before(request: Request, config: FunConfig) -> None:
        calls.append("before")

    executor = make(before_execute=before, check_permission="any_authenticated")
    assert (await executor.execute(req(user=None))).error == "Authentication required"  # type: ignore[union-attr]
    assert (await executor.execute(req(x="bad"))).error == "Invalid argument x: expected num"  # type: ignore[union-attr]
    assert calls == []


async def test_after_hook_replaces_the_result_with_extra_args() -> None:
    """An after hook's return value becomes the result; extra args are passed."""

    async def after(request: Request, config: FunConfig, result: Any, suffix: str) -> Any:
        return {**result, "tag": suffix}

    executor = make(after_execute=(after, ["extra"]))
    assert await executor.execute(req()) == Response.sync(
        "r", {"x": 1, "user": "u1", "tag": "extra"})


@pytest.mark.parametrize("kind", ["raises", "times_out"])
async def test_after_hook_failures_keep_the_result(kind: str) -> None:
    """A failing or slow after hook leaves the original result."""

    async def after(request: Request, config: FunConfig, result: Any) -> Any:
        if kind == "raises":
            raise RuntimeError("oops")
        await asyncio.sleep(5)

    executor = make(after_execute=after, hook_timeout=100)
    assert await executor.execute(req()) == Response.sync("r", {"x": 1, "user": "u1"})


async def test_sync_hooks_and_telemetry() -> None:
    """Plain-function hooks work and emit start/stop (and exception) events."""
    events: list[tuple[str, dict[str, Any]]] = []
    tel = Telemetry()
    tel.attach("t", "hook.*", lambda e, m, md: events.append((e, dict(md))))

    def before(request: Request, config: FunConfig) -> None:
        return None

    def after(request: Request, config: FunConfig, result: Any) -> Any:
        raise ValueError("nope")

    executor = make(telemetry=tel, before_execute=before, after_execute=after)
    assert (await executor.execute(req())).success  # type: ignore[union-attr]
    assert [e for e, _ in events] == [
        "hook.before.start", "hook.before.stop", "hook.after.start", "hook.after.exception"]
    assert events[0][1]["function"].endswith("before")
    assert events[3][1]["kind"] == "error"
    assert events[3][1]["reason"] == "ValueError: nope"
    assert {(md["service"], md["request_type"]) for _, md in events} == {
        (req().service, req().request_type)}


async def test_after_hook_runs_on_async_final_results() -> None:
    """For async functions the after hook sees (and may change) the final result."""
    got: list[Response] = []

    async def sink(response: Response) -> None:
        got.append(response)

    def after(request: Request, config: FunConfig, result: Any) -> Any:
        return "changed"

    executor = make(after_execute=after, response_type="async")
    assert await executor.execute(req(), sink) == Response.async_ack("r")
    for _ in range(100):
        if got:
            break
        await asyncio.sleep(0.01)
    assert got == [Response.sync("r", "changed")]


@pytest.mark.parametrize("odd", [42, "yes", {"x": 1}, (1, 2)])
async def test_an_unexpected_before_hook_result_continues_unchanged(
        odd: Any, caplog: pytest.LogCaptureFixture) -> None:
    """A before hook returning something that is neither a verdict nor a request does not
    reject the call: the original request runs, and the oddity is logged."""

    def before(request: Request, config: FunConfig) -> Any:
        calls.append("before")
        return odd

    executor = make(before_execute=before)
    with caplog.at_level("WARNING", "genapi.hooks"):
        assert await executor.execute(req(3)) == Response.sync("r", {"x": 3, "user": "u1"})
    assert calls == ["before", "function"]
    assert any("continuing unchanged" in r.getMessage() for r in caplog.records)
