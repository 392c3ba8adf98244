"""Calling a local function: coroutines are awaited on the loop, plain functions run in a
bounded thread pool so a blocking function never stalls the loop; both under a deadline."""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..errors import CallTimeout, ConfigError, UsageError
from ..functions.routes import Route
from ..functions.validation import BoundArgs
from ..messages import Request, RequestInfo, Response
from .deadlines import Deadlines
from .streams import Emit, StreamHelper, ThreadStreamHelper

__all__ = ["Invoker", "call_arguments"]


def call_arguments(
    route: Route, request: Request, bound: BoundArgs, extra: dict[str, Any] | None = None
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The positional and keyword arguments for ``route``'s function.

    ``function_args`` come first, then the validated client arguments, then (when the
    config asks for it) the :class:`~genapi.RequestInfo`. Parameters annotated for
    injection get ``extra`` values (``request_info`` is always available, and so is
    ``durable``: the request's :class:`~genapi.DurableInfo`, None outside durable runs).
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
            elif what == "durable":
                keywords[param] = request.durable
            elif extra is not None and what in extra:
                keywords[param] = extra[what]
    return positional, keywords


class Invoker:
    """Runs local functions. Owns the thread pool used for plain (non-async) functions."""

    def __init__(self, max_threads: int = 64) -> None:
        if max_threads < 1:
            raise ConfigError("max_threads must be at least 1")
        self.max_threads = max_threads
        self.deadlines = Deadlines()
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
            raise UsageError(f"{route.key} has no local function")
        if route.plain_call:
            args, kwargs = bound
        else:
            args, kwargs = call_arguments(route, request, bound, extra)
        timeout = route.timeout_s
        if timeout is None:
            if route.is_coroutine:
                return await fn(*args, **kwargs)
            return await self.run_sync(fn, *args, **kwargs)
        deadline = self.deadlines.arm(timeout)
        try:
            if route.is_coroutine:
                result = await fn(*args, **kwargs)
            else:
                result = await self.run_sync(fn, *args, **kwargs)
        except asyncio.CancelledError:
            if deadline.consume():
                raise CallTimeout(route.config.timeout or 0) from None
            raise
        finally:
            self.deadlines.disarm(deadline)
        if deadline.expired and deadline.consume():  # the function swallowed the cancellation
            raise CallTimeout(route.config.timeout or 0)
        return result

    async def stream(self, route: Route, request: Request, bound: BoundArgs, emit: Emit,
                     extra: dict[str, Any] | None = None) -> bool:
        """Run a local stream function, emitting its chunks; True if it sent a terminator.

        Async generators and (in a worker thread) plain generators yield chunks; other
        functions receive a stream helper. ``extra`` are injected values (the
        ``CallContext``), for every style. The caller applies the deadline.
        """
        fn = route.function
        if fn is None:
            raise UsageError(f"{route.key} has no local function")
        rid = request.request_id
        if route.is_async_gen or route.is_generator:
            args, kwargs = call_arguments(route, request, bound, extra)
            if route.is_async_gen:
                async for chunk in fn(*args, **kwargs):
                    await emit(Response.stream_chunk(rid, chunk))
            else:
                iterator = await self.run_sync(fn, *args, **kwargs)
                done = object()
                while (chunk := await self.run_sync(next, iterator, done)) is not done:
                    await emit(Response.stream_chunk(rid, chunk))
            return False
        helper = StreamHelper(rid, emit)
        if route.is_coroutine:
            args, kwargs = call_arguments(route, request, bound, {**(extra or {}),
                                                                  "stream": helper})
            await fn(*args, **kwargs)
        else:
            threaded = ThreadStreamHelper(helper, asyncio.get_running_loop())
            args, kwargs = call_arguments(route, request, bound, {**(extra or {}),
                                                                  "stream": threaded})
            await self.run_sync(fn, *args, **kwargs)
        return helper.finished

    def shutdown(self, wait: bool = False) -> None:
        """Stop the thread pool (running calls finish in their threads)."""
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=True)
            self._pool = None
