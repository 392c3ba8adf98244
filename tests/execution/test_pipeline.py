"""The pipeline's stages and the call itself: what each stage passes on, what a failure
reports (found unchecked by mutation testing of genapi.execution.pipeline)."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
import pytest

from genapi import CallContext, Executor, FunConfig, Registry, Request, Response, Service
from genapi.telemetry.events import Telemetry


def req(rt: str = "f", user: str | None = "u1", **args: Any) -> Request:
    return Request(request_id="r1", service="svc", request_type=rt, args=args, user_id=user,
                   version=None)


def executor_for(*configs: FunConfig, telemetry: Telemetry | None = None,
                 **options: Any) -> Executor:
    registry = Registry(telemetry=telemetry or Telemetry())
    for config in configs:
        registry.add(config)
    return Executor(registry, **options)


async def test_an_unexpected_exception_is_logged_and_reported_with_its_timing(
        caplog: pytest.LogCaptureFixture) -> None:
    """The log names the function and request; the exception event carries the request's
    identity, the exception's kind and reason, and a duration in whole microseconds."""
    events: list[tuple[dict[str, Any], dict[str, Any]]] = []
    tel = Telemetry()
    tel.attach("t", "executor.request.exception",
               lambda e, m, md: events.append((dict(m), dict(md))))

    async def f() -> None:
        raise LookupError("gone")

    executor = executor_for(FunConfig(service="svc", request_type="f", function=f),
                            telemetry=tel)
    with caplog.at_level(logging.ERROR, "genapi.executor"):
        assert await executor.execute(req()) == Response.fail("r1", "Internal Server Error")
    assert [r.getMessage() for r in caplog.records] == ["svc.f (request r1) raised"]
    assert caplog.records[0].exc_info and caplog.records[0].exc_info[0] is LookupError
    [(measurements, meta)] = events
    assert isinstance(measurements["duration_us"], int)
    assert 0 <= measurements["duration_us"] < 10_000_000  # this call, not the clock's origin
    assert meta == {"request_id": "r1", "service": "svc", "request_type": "f",
                    "version": None, "user_id": "u1", "kind": "LookupError",
                    "reason": "gone"}


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_a_permission_callback_sees_the_request_and_the_config(kind: str) -> None:
    """The callback decides from the request and the function's config."""
    seen: list[tuple[str, str | None]] = []

    async def async_cb(request: Request, config: FunConfig) -> bool:
        seen.append((config.request_type, request.user_id))
        return True

    def sync_cb(request: Request, config: FunConfig) -> bool:
        seen.append((config.request_type, request.user_id))
        return True

    async def f() -> str:
        return "ok"

    callback = async_cb if kind == "async" else sync_cb
    executor = executor_for(FunConfig(service="svc", request_type="f", function=f,
                                      permission_callback=callback))
    assert await executor.execute(req()) == Response.sync("r1", "ok")
    assert seen == [("f", "u1")]


async def test_a_failing_permission_callback_denies_and_says_why(
        caplog: pytest.LogCaptureFixture) -> None:
    """A callback that raises denies the call; the warning names the function."""

    def cb(request: Request, config: FunConfig) -> bool:
        raise RuntimeError("db down")

    async def f() -> str:
        return "ok"

    executor = executor_for(FunConfig(service="svc", request_type="f", function=f,
                                      permission_callback=cb))
    with caplog.at_level(logging.WARNING, "genapi.executor"):
        assert await executor.execute(req()) == Response.fail("r1", "Permission denied")
    [record] = caplog.records
    assert record.getMessage() == "permission callback for svc.f failed; denying"
    assert record.exc_info and record.exc_info[0] is RuntimeError


async def test_a_before_hook_failure_shows_its_reason_with_detail_error() -> None:
    """With detail_error the hook's exception is in the rejection; without, it is not."""

    def hook(request: Request, config: FunConfig) -> Any:
        raise RuntimeError("db down")

    async def f() -> str:
        return "ok"

    config = FunConfig(service="svc", request_type="f", function=f, before_execute=hook)
    detailed = executor_for(config, detail_error=True)
    assert await detailed.execute(req()) == Response.fail(
        "r1", "hook rejected: RuntimeError('db down')")
    assert await executor_for(config).execute(req()) == Response.fail(
        "r1", "hook rejected: hook failed")


async def test_a_before_hook_request_alone_is_validated_and_used() -> None:
    """A hook returning only a new request (no config): its arguments are checked and passed."""

    def hook(request: Request, config: FunConfig) -> Request:
        return msgspec.structs.replace(request, args={"x": request.args["x"] + 1})

    async def f(x: int) -> int:
        return x

    config = FunConfig(service="svc", request_type="f", function=f, before_execute=hook)
    assert await executor_for(config).execute(req(x=1)) == Response.sync("r1", 2)

    def bad_hook(request: Request, config: FunConfig) -> Request:
        return msgspec.structs.replace(request, args={"x": "not a number"})

    bad = FunConfig(service="svc", request_type="f", function=f, before_execute=bad_hook)
    assert await executor_for(bad).execute(req(x=1)) == Response.fail(
        "r1", "Invalid argument x: expected num")


async def test_an_after_hook_sees_the_config() -> None:
    """The after hook is given the request, the config and the result."""

    def after(request: Request, config: FunConfig, result: Any) -> Any:
        return {"result": result, "function": config.request_type}

    async def f() -> int:
        return 1

    config = FunConfig(service="svc", request_type="f", function=f, after_execute=after)
    assert await executor_for(config).execute(req()) == Response.sync(
        "r1", {"result": 1, "function": "f"})


async def test_a_local_function_with_retries_still_gets_its_call_context() -> None:
    """The retry path passes the injected CallContext on, like the direct path."""
    svc = Service("svc")

    @svc.function(retry=2)
    async def f(call: CallContext) -> str:
        return call.request.request_id

    registry = Registry(telemetry=Telemetry())
    registry.add_service(svc)
    assert await Executor(registry).execute(req()) == Response.sync("r1", "r1")


async def test_a_re_registered_function_gets_a_new_plan() -> None:
    """Replacing a function with one that has a before hook runs the hook from then on."""
    ran: list[str] = []

    async def f() -> str:
        return "ok"

    def hook(request: Request, config: FunConfig) -> None:
        ran.append("hook")

    registry = Registry(telemetry=Telemetry())
    registry.add(FunConfig(service="svc", request_type="f", function=f))
    executor = Executor(registry)
    assert await executor.execute(req()) == Response.sync("r1", "ok")
    registry.add(FunConfig(service="svc", request_type="f", function=f, before_execute=hook))
    assert await executor.execute(req()) == Response.sync("r1", "ok")
    assert ran == ["hook"]


async def test_a_before_hook_config_replaces_the_function_and_its_argument_shape() -> None:
    """A config returned by the hook is compiled and used: its function runs, with its own
    argument binding (here one map instead of positional arguments)."""

    async def f(x: int) -> Any:
        return ("f", x)

    async def g(args: dict[str, Any]) -> Any:
        return ("g", args)

    def hook(request: Request, config: FunConfig) -> Any:
        return request, config.replace(function=g, arg_types={"x": "num"}, arg_orders="map")

    config = FunConfig(service="svc", request_type="f", function=f, before_execute=hook)
    assert await executor_for(config).execute(req(x=1)) == Response.sync("r1", ("g", {"x": 1}))
