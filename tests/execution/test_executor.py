"""The sync pipeline end to end, in process."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import Any

import pytest

from genapi import (
    ApiError,
    CallContext,
    Executor,
    FunConfig,
    Limits,
    RateLimited,
    Registry,
    Request,
    RequestInfo,
    Response,
    Service,
)
from genapi.telemetry.events import Telemetry


def make(*configs: FunConfig, **options: Any) -> Executor:
    registry = Registry(telemetry=options.pop("telemetry", None) or Telemetry(),
                        limits=options.pop("limits", None))
    for c in configs:
        registry.add(c)
    return Executor(registry, **options)


def req(rt: str = "f", args: dict[str, Any] | None = None, **fields: Any) -> Request:
    return Request(request_id="r1", service="svc", request_type=rt, args=args or {}, **fields)


def fc(function: Any, rt: str = "f", **options: Any) -> FunConfig:
    return FunConfig(service="svc", request_type=rt, function=function, **options)


async def run(executor: Executor, request: Request) -> Response:
    response = await executor.execute(request)
    assert response is not None
    return response


async def test_async_function_result() -> None:
    """An async function's return value is the result of a sync Response."""

    async def add(a: int, b: int) -> int:
        return a + b

    response = await run(make(fc(add)), req(args={"a": 1, "b": 2}))
    assert response == Response.sync("r1", 3)


async def test_plain_function_runs_in_a_thread() -> None:
    """A plain function runs off the loop and its result comes back."""
    import threading

    def where() -> str:
        return threading.current_thread().name

    response = await run(make(fc(where)), req())
    assert response.success
    assert response.result.startswith("genapi-call")


async def test_blocking_function_does_not_block_other_calls() -> None:
    """A plain function blocking for 1 s leaves the loop free for other calls."""

    def slow() -> str:
        time.sleep(1.0)
        return "slow"

    async def fast() -> str:
        return "fast"

    executor = make(fc(slow, "slow"), fc(fast, "fast"))
    slow_task = asyncio.create_task(executor.execute(req("slow")))
    await asyncio.sleep(0.05)
    fast_responses = [await run(executor, req("fast")) for _ in range(20)]
    assert all(r.result == "fast" for r in fast_responses)
    assert not slow_task.done()  # the fast calls finished while the slow one still runs
    assert (await slow_task) == Response.sync("r1", "slow")  # type: ignore[comparison-overlap]


async def test_api_error_message_reaches_client() -> None:
    """Raising ApiError answers success false with exactly that message."""

    async def fail() -> None:
        raise ApiError("User not found")

    assert await run(make(fc(fail)), req()) == Response.fail("r1", "User not found")


async def test_api_error_can_retry() -> None:
    """ApiError's can_retry flag is carried to the Response."""

    async def busy() -> None:
        raise ApiError("Busy", can_retry=True)

    assert (await run(make(fc(busy)), req())).can_retry


async def test_exceptions_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    """Other exceptions become 'Internal Server Error' and the traceback is logged."""

    async def boom() -> None:
        raise ValueError("secret internals")

    with caplog.at_level(logging.ERROR, "genapi.executor"):
        response = await run(make(fc(boom)), req())
    assert response == Response.fail("r1", "Internal Server Error")
    assert "secret internals" in caplog.text
    assert "Traceback" in caplog.text


async def test_detail_error_shows_the_reason() -> None:
    """With detail_error on, the internal reason is appended."""

    def boom() -> None:
        raise ValueError("boom")

    response = await run(make(fc(boom), detail_error=True), req())
    assert response.error == "Internal Server Error: ValueError('boom')"


@pytest.mark.parametrize("kind", ["async", "plain"])
async def test_timeout(kind: str) -> None:
    """A function exceeding its timeout answers 'Request timed out after <n>ms', retryable."""

    async def slow_async() -> None:
        await asyncio.sleep(5)

    def slow_plain() -> None:
        time.sleep(0.4)

    function = slow_async if kind == "async" else slow_plain
    response = await run(make(fc(function, timeout=100)), req())
    assert response == Response.fail("r1", "Request timed out after 100ms", can_retry=True)


async def test_function_raising_timeout_error_is_not_a_call_timeout() -> None:
    """A TimeoutError raised by the function itself is an internal error, not our timeout."""

    async def own_timeout() -> None:
        raise TimeoutError("upstream")

    response = await run(make(fc(own_timeout, timeout=1000)), req())
    assert response.error == "Internal Server Error"


async def test_no_timeout() -> None:
    """timeout=None imposes no deadline."""

    async def quick() -> int:
        await asyncio.sleep(0.01)
        return 1

    assert (await run(make(fc(quick, timeout=None)), req())).result == 1


async def test_lookup_errors() -> None:
    """Disabled functions answer with the reference wording; unknown ones say what
    exists."""

    async def f() -> int:
        return 1

    executor = make(fc(f, version="1.0.0"))
    executor.registry.disable("svc", "f", "1.0.0")
    assert (await run(executor, req(version="1.0.0"))).error == "disabled function: f version 1.0.0"
    assert (await run(executor, req(version="2.0.0"))).error == (
        "Unknown function f version 2.0.0 in service svc (known versions: 1.0.0)"
    )
    assert (await run(executor, req("g"))).error == (
        "Unknown function g in service svc (known: f)")


async def test_validation_errors_are_responses() -> None:
    """Argument problems answer success false with the precise message."""

    async def get_user(user_id: str) -> str:
        return user_id

    executor = make(fc(get_user))
    assert (await run(executor, req())).error == "Missing required argument: user_id"
    assert (await run(executor, req(args={"user_id": 5}))).error == (
        "Invalid argument user_id: expected string"
    )


async def test_permission_then_validation_order() -> None:
    """Permission is checked before arguments: an unauthorised caller learns nothing."""

    async def f(x: int) -> int:
        return x

    executor = make(fc(f, check_permission=("role", ["admin"])))
    assert (await run(executor, req(args={"x": "bad"}, user_id="u"))).error == "Permission denied"
    assert (await run(executor, req(args={"x": "bad"}))).error == "Authentication required"


@pytest.mark.parametrize("kind", ["async", "plain"])
async def test_permission_callback(kind: str) -> None:
    """A callback replaces the built-in check; only True allows."""

    async def allow_async(request: Request, config: FunConfig) -> Any:
        return request.args.get("ok")

    def allow_plain(request: Request, config: FunConfig) -> Any:
        return request.args.get("ok")

    async def f(ok: Any) -> str:
        return "done"

    callback = allow_async if kind == "async" else allow_plain
    executor = make(fc(f, permission_callback=callback, check_permission=("role", ["x"])))
    assert (await run(executor, req(args={"ok": True}, user_id="u"))).result == "done"
    assert (await run(executor, req(args={"ok": "yes"}, user_id="u"))).error == "Permission denied"
    assert (await run(executor, req(args={"ok": True}))).error == "Authentication required"


async def test_permission_callback_failures_deny() -> None:
    """A callback that raises or times out denies (fail closed)."""

    async def raises(request: Request, config: FunConfig) -> bool:
        raise RuntimeError("db down")

    async def hangs(request: Request, config: FunConfig) -> bool:
        await asyncio.sleep(10)
        return True

    async def f() -> str:
        return "done"

    executor = make(fc(f, "a", permission_callback=raises),
                    fc(f, "b", permission_callback=hangs, hook_timeout=100))
    assert (await run(executor, req("a", user_id="u"))).error == "Permission denied"
    assert (await run(executor, req("b", user_id="u"))).error == "Permission denied"


async def test_rate_limit_stage_is_used() -> None:
    """A configured rate limiter runs after permission and can reject."""

    class Limiter:
        def __init__(self) -> None:
            self.seen: list[str] = []

        def check(self, request: Request) -> Awaitable[None] | None:
            self.seen.append(request.request_id)
            if len(self.seen) > 1:
                raise RateLimited(2500)
            return None

    async def f() -> int:
        return 1

    limiter = Limiter()
    executor = make(fc(f), rate_limiter=limiter)
    assert (await run(executor, req())).success
    response = await run(executor, req())
    assert response == Response.fail(
        "r1", "Rate limit exceeded. Please retry after 3 seconds.", can_retry=True
    )


async def test_request_info_and_function_args() -> None:
    """function_args come first; RequestInfo is injected or appended when asked."""

    async def appended(prefix: str, name: str, info: Any) -> list[Any]:
        return [prefix, name, info.user_id]

    async def injected(name: str, *, who: RequestInfo) -> list[Any]:
        return [name, who.request_id, who.device_id]

    executor = make(
        fc(appended, "a", function_args=("hi",), request_info=True,
           arg_types={"name": "string"}),
        fc(injected, "b"),
    )
    assert (await run(executor, req("a", {"name": "x"}, user_id="u"))).result == ["hi", "x", "u"]
    assert (await run(executor, req("b", {"name": "x"}, device_id="d"))).result == ["x", "r1", "d"]


async def test_handle_payload_decodes_and_checks_size() -> None:
    """Raw payloads are size-checked first, then decoded; problems answer 'Invalid request'."""

    async def echo(x: str) -> str:
        return x

    executor = make(fc(echo), limits=Limits(max_payload_bytes=120))
    ok = b'{"request_id":"1","service":"svc","request_type":"f","args":{"x":"hi"}}'
    assert await executor.handle_payload(ok) == Response.sync("1", "hi")
    big = (b'{"request_id":"2","service":"svc","request_type":"f","args":{"x":"'
           + b"y" * 200 + b'"}}')
    response = await executor.handle_payload(big)
    assert response is not None
    assert response.error is not None
    assert response.error.startswith("Invalid request: Request payload exceeds maximum size of 120")
    missing = await executor.handle_payload(b'{"request_id":"3"}')
    assert missing == Response.fail(
        "3", "Invalid request: Missing required fields: request_type, service"
    )
    garbage = await executor.handle_payload(b"{not json")
    assert garbage is not None
    assert garbage.request_id == "unknown"
    assert garbage.error is not None
    assert garbage.error.startswith("Invalid request: Malformed")


async def test_identity_comes_from_the_caller_not_the_payload() -> None:
    """user_id and roles in a payload are ignored; the caller's identity is used."""

    async def whoami(*, info: RequestInfo) -> list[Any]:
        return [info.user_id, list(info.user_roles)]

    executor = make(fc(whoami))
    payload = (b'{"request_id":"1","service":"svc","request_type":"f",'
               b'"user_id":"admin","user_roles":["admin"]}')
    assert (await executor.handle_payload(payload)).result == [None, []]  # type: ignore[union-attr]
    trusted = await executor.handle_payload(payload, user_id="u7", user_roles=["viewer"])
    assert trusted.result == ["u7", ["viewer"]]  # type: ignore[union-attr]


async def test_telemetry_start_stop_exception() -> None:
    """The executor emits start, stop (with duration and success) and exception events."""
    events: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    tel = Telemetry()
    tel.attach("t", "executor.*", lambda e, m, md: events.append((e, dict(m), dict(md))))

    async def ok() -> int:
        await asyncio.sleep(0.001)
        return 1

    async def boom() -> None:
        raise KeyError("x")

    executor = make(fc(ok, "ok"), fc(boom, "boom"), telemetry=tel)
    await executor.execute(req("ok", user_id="u"))
    await executor.execute(req("boom"))
    names = [e[0] for e in events]
    assert names == [
        "executor.request.start", "executor.request.stop",
        "executor.request.start", "executor.request.exception", "executor.request.stop",
    ]
    start, stop = events[0], events[1]
    assert isinstance(start[1]["system_time"], int)
    assert start[2]["user_id"] == "u"
    assert start[2]["service"] == "svc"
    assert stop[1]["duration_us"] > 0
    assert stop[2]["success"] is True
    assert stop[2]["request_type"] == "ok"
    assert events[3][2]["kind"] == "KeyError"
    assert events[4][2]["success"] is False


async def test_raising_handler_is_detached_and_request_unharmed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A telemetry handler that raises is detached and logged; the call still succeeds."""
    tel = Telemetry()

    def bad(event: str, m: Any, md: Any) -> None:
        raise RuntimeError("handler bug")

    tel.attach("bad", "executor.*", bad)

    async def ok() -> int:
        return 1

    executor = make(fc(ok), telemetry=tel)
    with caplog.at_level(logging.ERROR, "genapi.telemetry"):
        assert (await run(executor, req())).result == 1
    assert "bad" not in tel.handler_ids()
    assert "handler bug" in caplog.text
    assert (await run(executor, req())).result == 1


async def test_call_context_injection() -> None:
    """A CallContext parameter receives the request, the sink and the owner."""
    seen: list[CallContext] = []

    async def whoami(call: CallContext) -> str:
        seen.append(call)
        return call.request.request_id

    async def sink(response: Response) -> None:
        return None

    executor, owner = make(fc(whoami)), object()
    response, _ = await executor.run(req(), sink, owner)
    assert response == Response.sync("r1", "r1")
    assert seen[0].sink is sink
    assert seen[0].owner is owner


async def test_owner_closed_callbacks() -> None:
    """owner_closed tells registered callbacks; a failing callback is logged, not raised."""
    executor = make()
    closed: list[object] = []
    executor.on_owner_closed(closed.append)
    executor.on_owner_closed(lambda owner: 1 / 0)  # type: ignore[func-returns-value]
    owner = object()
    executor.owner_closed(owner)
    assert closed == [owner]


async def test_request_observers_see_every_request_end() -> None:
    """Observers get (request, response, known, duration_us); removing one stops it."""
    svc = Service("obs")

    @svc.function()
    async def ok() -> str:
        return "ok"

    registry = Registry(telemetry=Telemetry())
    registry.add_service(svc)
    executor = Executor(registry)
    seen: list[tuple[str, bool, bool]] = []

    def observe(request: Request, response: Response | None, known: bool,
                duration_us: int) -> None:
        assert duration_us >= 0 and response is not None
        assert response.request_id == request.request_id
        seen.append((request.request_type, known, response.success))

    def broken(request: Request, response: Response | None, known: bool,
               duration_us: int) -> None:
        raise RuntimeError("observer bug")

    executor.add_request_observer(observe)
    executor.add_request_observer(broken)  # logged, never breaks the call
    assert (await executor.execute(Request(request_id="1", service="obs",
                                           request_type="ok"))).success  # type: ignore[union-attr]
    await executor.execute(Request(request_id="2", service="obs", request_type="nope"))
    executor.remove_request_observer(observe)
    await executor.execute(Request(request_id="3", service="obs", request_type="ok"))
    assert seen == [("ok", True, True), ("nope", False, False)]
    await executor.aclose()
