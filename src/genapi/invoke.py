"""Calling a local function: coroutines are awaited on the loop, plain functions run in a
bounded thread pool so a blocking function never stalls the loop; both under a deadline."""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .errors import CallTimeout
from .messages import Request, RequestInfo
from .routes import Route
from .validation import BoundArgs

__all__ = ["Invoker", "call_arguments"]


def call_arguments(
    route: Route, request: Request, bound: BoundArgs, extra: dict[str, Any] | None = None
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The positional and keyword arguments for ``route``'s function.

    ``function_args`` come first, then the validated client arguments, then (when the
    config asks for it) the :class:`~genapi.RequestInfo`. Parameters annotated for
    injection get ``extra`` values (``request_info`` is always available).
    """
    positional, keywords = bound
    if route.function_args:
        positional = route.function_args + positional
    if route.append_request_info:
        positional = (*positional, RequestInfo.of(request))
    if route.inject:
        keywords = dict(keywords)
        for param, what in route.inject.items():
            if what == "request_info":
                keywords[param] = RequestInfo.of(request)
            elif extra is not None and what in extra:
                keywords[param] = extra[what]
    return positional, keywords


class Invoker:
    """Runs local functions. Owns the thread pool used for plain (non-async) functions."""

    def __init__(self, max_threads: int = 64) -> None:
        if max_threads < 1:
            raise ValueError("max_threads must be at least 1")
        self.max_threads = max_threads
        self._pool: ThreadPoolExecutor | None = None

    def _threads(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.max_threads, thread_name_prefix="genapi-call")
        return self._pool

    async def run_sync(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a plain function in the pool, with the caller's context variables."""
        ctx = contextvars.copy_context()
        call = functools.partial(ctx.run, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._threads(), call)

    async def call(
        self,
        route: Route,
        request: Request,
        bound: BoundArgs,
        extra: dict[str, Any] | None = None,
    ) -> Any:
        """Call the route's function under its timeout; raise CallTimeout when it expires.

        A plain function that overruns keeps running in its thread (threads cannot be
        interrupted); its result is discarded.
        """
        fn = route.function
        if fn is None:
            raise RuntimeError(f"{route.key} has no local function")
        args, kwargs = call_arguments(route, request, bound, extra)
        timeout = route.timeout_s
        if timeout is None:
            if route.is_coroutine:
                return await fn(*args, **kwargs)
            return await self.run_sync(fn, *args, **kwargs)
        try:
            async with asyncio.timeout(timeout) as scope:
                if route.is_coroutine:
                    return await fn(*args, **kwargs)
                return await self.run_sync(fn, *args, **kwargs)
        except TimeoutError:
            if scope.expired():
                raise CallTimeout(route.config.timeout or 0) from None
            raise

    def shutdown(self, wait: bool = False) -> None:
        """Stop the thread pool (running calls finish in their threads)."""
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=True)
            self._pool = None
