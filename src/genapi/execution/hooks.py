"""Before and after hooks around a function call.

``before_execute(request, fun_config, *extra_args)`` runs after permission, rate limiting
and argument validation, so it sees the trusted identity and valid arguments. It may
return

* ``None`` (or ``True``) — continue unchanged;
* a :class:`~genapi.Request` — continue with it (its arguments are validated again);
* ``(request, fun_config)`` — continue with both (the config is compiled again);
* ``False`` — reject the call.

Raising :class:`~genapi.HookRejected` (or any :class:`~genapi.ApiError`) rejects with its
message; any other exception or exceeding ``hook_timeout`` rejects too. Rejections answer
``hook rejected: <reason>``.

``after_execute(request, fun_config, result, *extra_args)`` runs on a successful result
(sync and async functions); its return value becomes the result. If it raises or times out
the original result is kept (and the failure logged and reported by telemetry).

Hooks may be ``async def`` (awaited) or plain functions (run in the worker threads).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

from ..errors import ApiError, HookRejected
from ..functions.config import FunConfig
from ..functions.routes import Hook
from ..messages import Request
from ..telemetry.events import Telemetry, register_event

__all__ = ["HookOutcome", "run_after", "run_before"]

logger = logging.getLogger("genapi.hooks")

_META = ("module", "function", "type", "request_id", "service", "request_type")
for _kind in ("before", "after"):
    register_event(f"hook.{_kind}.start", ("system_time",), _META, f"A {_kind} hook started.")
    register_event(f"hook.{_kind}.stop", ("duration_us",), _META, f"A {_kind} hook finished.")
    register_event(
        f"hook.{_kind}.exception",
        ("duration_us",),
        (*_META, "kind", "reason"),
        f"A {_kind} hook failed: kind 'error' (reason: the exception's class and message) "
        "or 'timeout'.",
    )

RunSync = Callable[..., Awaitable[Any]]
#: What a before hook decided: possibly new request and config.
HookOutcome = tuple[Request, FunConfig | None]
_REJECTED: Final = "rejected"


async def _run(
    hook: Hook, args: tuple[Any, ...], timeout: float, run_sync: RunSync, kind: str,
    request: Request, telemetry: Telemetry,
) -> Any:
    meta = None
    started = time.perf_counter_ns()
    if telemetry.has_handlers(f"hook.{kind}.start") or telemetry.has_handlers(
        f"hook.{kind}.stop"
    ) or telemetry.has_handlers(f"hook.{kind}.exception"):
        fn = hook.function
        meta = {"module": getattr(fn, "__module__", None),
                "function": getattr(fn, "__qualname__", repr(fn)), "type": kind,
                "request_id": request.request_id, "service": request.service,
                "request_type": request.request_type}
        telemetry.emit(f"hook.{kind}.start", {"system_time": time.time_ns()}, meta)
    try:
        async with asyncio.timeout(timeout):
            if hook.is_async:
                result = await hook.function(*args, *hook.extra_args)
            else:
                result = await run_sync(hook.function, *args, *hook.extra_args)
    except BaseException as exc:
        if meta is not None:
            timed_out = isinstance(exc, TimeoutError)
            telemetry.emit(
                f"hook.{kind}.exception",
                {"duration_us": (time.perf_counter_ns() - started) // 1000},
                {**meta, "kind": "timeout" if timed_out else "error",
                 "reason": f"timed out after {timeout:g}s" if timed_out
                 else f"{type(exc).__name__}: {exc}"},
            )
        raise
    if meta is not None:
        telemetry.emit(f"hook.{kind}.stop",
                       {"duration_us": (time.perf_counter_ns() - started) // 1000}, meta)
    return result


async def run_before(
    hook: Hook,
    request: Request,
    config: FunConfig,
    *,
    timeout: float,
    run_sync: RunSync,
    telemetry: Telemetry,
    detail_error: bool = False,
) -> HookOutcome:
    """Run a before hook; return the (possibly new) request and config or raise HookRejected."""
    try:
        outcome = await _run(hook, (request, config), timeout, run_sync, "before",
                             request, telemetry)
    except TimeoutError:
        raise HookRejected(f"hook timed out after {int(timeout * 1000)}ms") from None
    except HookRejected:
        raise
    except ApiError as exc:
        raise HookRejected(exc.message) from exc
    except Exception as exc:
        logger.warning("before hook %s raised", hook.name, exc_info=True)
        raise HookRejected(repr(exc) if detail_error else "hook failed") from exc
    if outcome is None or outcome is True:
        return request, None
    if outcome is False:
        raise HookRejected(_REJECTED)
    if isinstance(outcome, Request):
        return outcome, None
    if (
        isinstance(outcome, tuple)
        and len(outcome) == 2
        and isinstance(outcome[0], Request)
        and isinstance(outcome[1], FunConfig)
    ):
        return outcome[0], outcome[1]
    logger.warning("before hook %s returned %r; continuing unchanged", hook.name, type(outcome))
    return request, None


async def run_after(
    hook: Hook,
    request: Request,
    config: FunConfig,
    result: Any,
    *,
    timeout: float,
    run_sync: RunSync,
    telemetry: Telemetry,
) -> Any:
    """Run an after hook; its return value replaces ``result`` unless it fails."""
    try:
        return await _run(hook, (request, config, result), timeout, run_sync, "after",
                          request, telemetry)
    except Exception:
        logger.warning("after hook %s failed; keeping the original result", hook.name,
                       exc_info=True)
        return result
