"""Compiling a :class:`~genapi.FunConfig` into a :class:`Route`: everything the hot path
needs, computed once at registration (resolved callable, argument validator, permission
rule, timeouts, result encoding, dependencies)."""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import inspect
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ArgumentError, ConfigError
from .argspec import Arg, Limits, parse_arg_spec
from .callables import resolve_callable
from .config import FunConfig, ResponseType, fun_config_problems, normalize_retry
from .depends import Depends, dependency_problems
from .hints import is_plain, result_encoder, unsupported
from .inference import Signature, inspect_function
from .permissions import PermissionRule, parse_permission
from .validation import ArgsValidator, CallMode, compile_args

__all__ = ["Hook", "Route", "RouteKey", "compile_route"]

RouteKey = tuple[str, str, str | None]


@dataclass(frozen=True, slots=True)
class Hook:
    """A resolved before/after hook with its extra arguments."""

    function: Callable[..., Any]
    extra_args: tuple[Any, ...] = ()
    is_async: bool = False

    @property
    def name(self) -> str:
        """``module.qualname`` of the hook, for telemetry."""
        fn = self.function
        return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


@dataclass(eq=False, slots=True)
class Route:
    """A registered function, compiled.

    ``disabled`` and ``config`` change when the registry enables or disables it; every
    other field is fixed at registration. ``result_type`` and ``chunk_type`` are the
    declared types of results and stream chunks (None: undeclared); ``encode_result`` and
    ``encode_chunk`` turn values of them into JSON data (None: nothing to do).
    ``depends`` are the parameters genapi resolves with dependencies, ``overrides`` the
    registry's :attr:`~genapi.Registry.dependency_overrides`.
    """

    config: FunConfig
    key: RouteKey
    response_type: ResponseType
    validator: ArgsValidator
    permission: PermissionRule
    function: Callable[..., Any] | None = None
    is_coroutine: bool = False
    is_async_gen: bool = False
    is_generator: bool = False
    function_args: tuple[Any, ...] = ()
    inject: dict[str, str] = field(default_factory=dict)
    append_request_info: bool = False
    permission_callback: Callable[..., Any] | None = None
    before_hook: Hook | None = None
    after_hook: Hook | None = None
    retry: tuple[str, int] | None = None
    timeout_s: float | None = 5.0
    hook_timeout_s: float = 5.0
    disabled: bool = False
    plain_call: bool = False  # no function_args, request info or injection: args as bound
    wants_context: bool = False  # a parameter (or a dependency) receives the CallContext
    result_type: Any = None
    chunk_type: Any = None
    encode_result: Callable[[Any], Any] | None = None
    encode_chunk: Callable[[Any], Any] | None = None
    depends: dict[str, Depends] = field(default_factory=dict)
    overrides: Mapping[Callable[..., Any], Callable[..., Any]] = field(default_factory=dict)
    doc: str | None = None

    @property
    def is_local(self) -> bool:
        """True when the function runs in this process."""
        return self.function is not None

    @property
    def service(self) -> str:
        """The route's service."""
        return self.key[0]

    @property
    def request_type(self) -> str:
        """The route's request type."""
        return self.key[1]

    @property
    def version(self) -> str | None:
        """The route's version (None = unversioned)."""
        return self.key[2]


def _is_coroutine_function(fn: Any) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - callable objects with async __call__
    )


def _resolve_hook(spec: Any, allowlist: Iterable[str] | None) -> Hook | None:
    if spec is None:
        return None
    extra: tuple[Any, ...] = ()
    if isinstance(spec, tuple | list):
        spec, extra_args = spec
        extra = tuple(extra_args)
    fn = resolve_callable(spec, allowlist)
    return Hook(fn, extra, _is_coroutine_function(fn))


def _signature(fn: Callable[..., Any], skip: int) -> Signature | None:
    try:
        sig = inspect_function(fn)
    except (TypeError, ValueError):  # builtins without a signature
        return None
    if skip:
        order = sig.order[skip:]
        specs = {k: v for k, v in sig.specs.items() if k in order}
        sig = dataclasses.replace(sig, order=order, specs=specs)
    return sig


_ITERATORS = frozenset({cabc.AsyncIterator, cabc.AsyncIterable, cabc.AsyncGenerator,
                        cabc.Iterator, cabc.Iterable, cabc.Generator})


def _declared_types(function: Callable[..., Any], response_type: ResponseType,
                    sig: Signature | None) -> tuple[Any, Any, list[str]]:
    """The declared result and chunk types of a local function, and problems with them."""
    try:
        hints = typing.get_type_hints(function, include_extras=True)
    except Exception:  # unresolvable hints were reported for the parameters already
        hints = {}
    declared = hints.get("return")
    if declared is type(None):
        declared = None
    result_type = chunk_type = None
    if response_type is ResponseType.STREAM:
        origin = typing.get_origin(declared)
        if origin in _ITERATORS and typing.get_args(declared):
            chunk_type = typing.get_args(declared)[0]
        elif sig is not None:
            chunk_type = sig.stream_item
    else:
        result_type = declared
    problems = []
    for what, hint in (("return type", result_type), ("stream chunk type", chunk_type)):
        problem = unsupported(hint) if hint is not None and not is_plain(hint) else None
        if problem is not None:
            problems.append(f"the {what} {hint!r} cannot be encoded ({problem})")
    return result_type, chunk_type, problems


def _arguments(
    config: FunConfig, sig: Signature | None, limits: Limits
) -> tuple[dict[str, Arg], tuple[str, ...], CallMode]:
    """The specs, call order and call mode; raises ValueError with a precise reason."""
    if config.arg_types is not None:
        specs = {name: parse_arg_spec(spec) for name, spec in config.arg_types.items()}
        if config.arg_orders == "map":
            return specs, tuple(specs), CallMode.MAP
        if config.arg_orders is not None:
            return specs, tuple(config.arg_orders), CallMode.POSITIONAL
        if sig is not None and set(sig.order) == set(specs):
            return specs, sig.order, sig.mode
        if sig is not None and len(specs) > 1:
            raise ConfigError(
                "arg_orders is required when the names in arg_types differ from the "
                "function's parameters"
            )
        return specs, tuple(specs), CallMode.POSITIONAL
    if config.arg_orders == "map":
        raise ConfigError('arg_orders "map" needs arg_types')
    if sig is None:
        return {}, (), CallMode.POSITIONAL
    if sig.problems:
        raise ConfigError("; ".join(sig.problems))
    if config.arg_orders is not None and tuple(config.arg_orders) != sig.order:
        raise ConfigError("arg_orders must match the function's parameters when arg_types is None")
    return dict(sig.specs), sig.order, sig.mode


def compile_route(
    config: FunConfig,
    limits: Limits | None = None,
    allowlist: Iterable[str] | None = None,
    overrides: Mapping[Callable[..., Any], Callable[..., Any]] | None = None,
) -> Route:
    """Validate ``config`` and compile it; raise :class:`~genapi.ConfigError`.

    ``overrides`` (the registry's dependency overrides) are read at each call, so tests
    may change them after registration.
    """
    subject = f"FunConfig {config.service}.{config.request_type}"
    problems = fun_config_problems(config)
    if problems:
        raise ConfigError(subject, problems)
    limits = limits or Limits()
    function: Callable[..., Any] | None = None
    if config.function is not None and config.nodes == "local":
        function = resolve_callable(config.function, allowlist)
    sig = _signature(function, len(config.function_args)) if function is not None else None
    try:
        specs, order, mode = _arguments(config, sig, limits)
        validator = compile_args(specs, order, mode, limits)
    except ValueError as exc:
        raise ConfigError(subject, [str(exc)]) from exc
    except ArgumentError as exc:  # raised while checking a default value
        raise ConfigError(subject, [f"invalid default value: {exc}"]) from exc
    inject = dict(sig.inject) if sig is not None else {}
    depends = dict(sig.depends) if sig is not None else {}
    response_type = ResponseType(config.response_type)
    result_type = chunk_type = None
    problems, depends_want_call = dependency_problems(depends)
    if function is not None:
        result_type, chunk_type, type_problems = _declared_types(function, response_type, sig)
        problems += type_problems
    if problems:
        raise ConfigError(subject, problems)
    callback = (
        resolve_callable(config.permission_callback, allowlist)
        if config.permission_callback is not None
        else None
    )
    timeout = config.timeout
    append_request_info = config.request_info and "request_info" not in inject.values()
    return Route(
        config=config,
        key=(config.service, config.request_type, config.normalized_version),
        response_type=response_type,
        validator=validator,
        permission=parse_permission(config.check_permission, map_args=mode is CallMode.MAP),
        function=function,
        is_coroutine=function is not None and _is_coroutine_function(function),
        is_async_gen=function is not None and inspect.isasyncgenfunction(function),
        is_generator=function is not None and inspect.isgeneratorfunction(function),
        function_args=tuple(config.function_args),
        inject=inject,
        append_request_info=append_request_info,
        plain_call=not (config.function_args or append_request_info or inject or depends),
        wants_context="call" in inject.values() or depends_want_call,
        permission_callback=callback,
        before_hook=_resolve_hook(config.before_execute, allowlist),
        after_hook=_resolve_hook(config.after_execute, allowlist),
        retry=normalize_retry(config.retry),
        timeout_s=None if timeout is None else timeout / 1000,
        hook_timeout_s=config.hook_timeout / 1000,
        disabled=config.disabled,
        result_type=result_type,
        chunk_type=chunk_type,
        encode_result=result_encoder(result_type),
        encode_chunk=result_encoder(chunk_type),
        depends=depends,
        overrides=overrides if overrides is not None else {},
        doc=inspect.getdoc(function) if function is not None else None,
    )


def describe_arguments(route: Route) -> Mapping[str, Arg]:
    """The argument specs of a route, in call order."""
    return {name: route.validator.specs[name] for name in route.validator.names}
