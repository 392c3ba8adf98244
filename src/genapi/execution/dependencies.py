"""Running a call's dependencies (:class:`~genapi.Depends`) and cleaning them up after it.

:func:`solve` resolves every dependency of a route for one call — overrides first, each
dependency once per call unless it says ``use_cache=False``, sub-dependencies before
those that need them — and registers the cleanup of generator dependencies on an
``AsyncExitStack`` the invoker closes when the call has ended (an exception of the call
is thrown into the generators at their ``yield``). Plain functions and plain generators
run in the invoker's worker threads, as plain service functions do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

from ..functions.depends import DependencyKind, Depends, describe
from ..functions.routes import Route
from ..messages import Request, RequestInfo
from .context import CallContext

__all__ = ["solve"]

RunSync = Callable[..., Awaitable[Any]]


async def solve(route: Route, request: Request, extra: dict[str, Any] | None,
                stack: contextlib.AsyncExitStack, run_sync: RunSync) -> dict[str, Any]:
    """The keyword arguments of ``route``'s dependency parameters for this call."""
    overrides = route.overrides
    cache: dict[Any, Any] = {}
    context: CallContext | None = extra.get("call") if extra is not None else None

    async def value_of(marker: Depends) -> Any:
        nonlocal context
        fn = overrides.get(marker.dependency, marker.dependency) if overrides else (
            marker.dependency)
        if marker.use_cache and fn in cache:
            return cache[fn]
        dependency = describe(fn)
        kwargs: dict[str, Any] = {}
        for name, what in dependency.inject.items():
            if what == "request_info":
                kwargs[name] = RequestInfo.of(request)
            else:
                if context is None:  # an override may ask for what the original did not
                    context = CallContext(request)
                kwargs[name] = context
        for name, sub in dependency.needs.items():
            kwargs[name] = await value_of(sub)
        kind = dependency.kind
        if kind is DependencyKind.COROUTINE:
            value = await fn(**kwargs)
        elif kind is DependencyKind.FUNCTION:
            value = await run_sync(fn, **kwargs)
        elif kind is DependencyKind.ASYNC_GENERATOR:
            value = await stack.enter_async_context(
                contextlib.asynccontextmanager(fn)(**kwargs))
        else:
            value = await _enter_in_thread(contextlib.contextmanager(fn)(**kwargs), stack,
                                           run_sync)
        if marker.use_cache:
            cache[fn] = value
        return value

    return {param: await value_of(marker) for param, marker in route.depends.items()}


async def _enter_in_thread(manager: contextlib.AbstractContextManager[Any],
                           stack: contextlib.AsyncExitStack, run_sync: RunSync) -> Any:
    value = await run_sync(manager.__enter__)

    async def exit_in_thread(kind: type[BaseException] | None, exc: BaseException | None,
                             tb: TracebackType | None) -> bool:
        return bool(await run_sync(manager.__exit__, kind, exc, tb))

    stack.push_async_exit(exit_in_thread)
    return value
