"""Calling a local function: coroutines are awaited on the loop, plain functions run in a
bounded thread pool so a blocking function never stalls the loop; both under a deadline.

Results and stream chunks of declared types are turned into JSON data here (so service
nodes, which use this invoker too, send them as gateways do); a function with
dependencies gets them resolved before the call and cleaned up after it, within its
deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..errors import CallTimeout, ConfigError, UsageError
from ..functions.routes import Route
from ..functions.validation import BoundArgs
from ..messages import Request, RequestInfo, Response
from .deadlines import Deadlines
from .dependencies import solve
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
        elif route.depends:
            return await self._call_with_dependencies(route, request, bound, extra)
        else:
            args, kwargs = call_arguments(route, request, bound, extra)
        timeout = route.timeout_s
        encode = route.encode_result
        if timeout is None:
            if route.is_coroutine:
                result = await fn(*args, **kwargs)
            else:
                result = await self.run_sync(fn, *args, **kwargs)
            return result if encode is None else encode(result)
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
        return result if encode is None else encode(result)

    async def _call_with_dependencies(self, route: Route, request: Request, bound: BoundArgs,
                                      extra: dict[str, Any] | None) -> Any:
        fn = route.function
        if fn is None:
            raise UsageError(f"{route.key} has no local function")

        async def run() -> Any:
            async with contextlib.AsyncExitStack() as stack:
                values = await solve(route, request, extra, stack, self.run_sync)
                args, kwargs = call_arguments(route, request, bound, extra)
                kwargs = {**kwargs, **values}
                if route.is_coroutine:
                    return await fn(*args, **kwargs)
                return await self.run_sync(fn, *args, **kwargs)

        result = await self._under_deadline(route, run())
        encode = route.encode_result
        return result if encode is None else encode(result)

    async def _under_deadline(self, route: Route, work: Awaitable[Any]) -> Any:
        """Await ``work`` under the route's timeout (CallTimeout when it expires)."""
        timeout = route.timeout_s
        if timeout is None:
            return await work
        deadline = self.deadlines.arm(timeout)
        try:
            result = await work
        except asyncio.CancelledError:
            if deadline.consume():
                raise CallTimeout(route.config.timeout or 0) from None
            raise
        finally:
            self.deadlines.disarm(deadline)
        if deadline.expired and deadline.consume():
            raise CallTimeout(route.config.timeout or 0)
        return result

    async def stream(self, route: Route, request: Request, bound: BoundArgs, emit: Emit,
                     extra: dict[str, Any] | None = None) -> bool:
        """Run a local stream function, emitting its chunks; True if it sent a terminator.

        Async generators and (in a worker thread) plain generators yield chunks; other
        functions receive a stream helper. ``extra`` are injected values (the
        ``CallContext``), for every style. The caller applies the deadline. Chunks of a
        declared type are encoded; dependencies are cleaned up when the stream ends.
        """
        fn = route.function
        if fn is None:
            raise UsageError(f"{route.key} has no local function")
        encode = route.encode_chunk
        if encode is not None:
            emit = _encoding(emit, encode)
        if not route.depends:
            return await self._stream(fn, route, request, bound, emit, extra, {})
        async with contextlib.AsyncExitStack() as stack:
            values = await solve(route, request, extra, stack, self.run_sync)
            return await self._stream(fn, route, request, bound, emit, extra, values)

    async def _stream(self, fn: Callable[..., Any], route: Route, request: Request,
                      bound: BoundArgs, emit: Emit, extra: dict[str, Any] | None,
                      values: dict[str, Any]) -> bool:
        rid = request.request_id
        if route.is_async_gen or route.is_generator:
            args, kwargs = call_arguments(route, request, bound, extra)
            kwargs = {**kwargs, **values} if values else kwargs
            if route.is_async_gen:
                async for chunk in fn(*args, **kwargs):
                    await emit(Response.stream_chunk(rid, chunk))
            else:
                iterator = await self.run_sync(fn, *args, **kwargs)
                done = object()
                while (chunk := await self.run_sync(next, iterator, done)) is not done:
                    await emit(Response.stream_chunk(rid, chunk))
            return False
        helper: StreamHelper[Any] = StreamHelper(rid, emit)
        if route.is_coroutine:
            args, kwargs = call_arguments(route, request, bound, {**(extra or {}),
                                                                  "stream": helper})
            await fn(*args, **kwargs, **values)
        else:
            loop = asyncio.get_running_loop()
            threaded: ThreadStreamHelper[Any] = ThreadStreamHelper(helper, loop)
            args, kwargs = call_arguments(route, request, bound, {**(extra or {}),
                                                                  "stream": threaded})
            await self.run_sync(fn, *args, **kwargs, **values)
        return helper.finished

    def shutdown(self, wait: bool = False) -> None:
        """Stop the thread pool (running calls finish in their threads)."""
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=True)
            self._pool = None


def _encoding(emit: Emit, encode: Callable[[Any], Any]) -> Emit:
    """``emit`` with the data of every chunk encoded from its declared type."""

    async def emit_encoded(response: Response) -> None:
        if response.success and response.result is not None:
            response.result = encode(response.result)
        await emit(response)

    return emit_encoded
