"""Infer argument specs from a function's signature and type hints.

Hints the spec types say exactly keep their spec type: ``str`` → string, ``float`` →
num, ``bool`` → boolean, ``UUID`` → uuid (passed as :class:`uuid.UUID`), ``datetime`` →
datetime, ``list[str]`` → list_string, ``list[float]`` → list_num, ``list[UUID]`` →
list_uuid, ``list[dict]`` → list_map, ``list`` → list, ``dict`` → map, ``Any`` or no hint →
any. Every other hint is a *typed* argument, converted strictly by
:mod:`genapi.functions.hints`: ``int`` (refuses ``1.5`` and ``True``), ``list[int]``,
``msgspec.Struct``, dataclasses, ``TypedDict``, ``Literal``, ``Enum``, ``Decimal``,
``date``, nested containers, pydantic models, and ``Annotated[..., msgspec.Meta(...)]``
constraints. ``X | None`` allows null; a parameter default becomes ``default_value``.
Sizes come from ``Annotated``::

    async def create_post(title: Annotated[str, MaxBytes(200)],
                          tags: Annotated[list[str], MaxItems(10), MaxItemBytes(50)] = []):
        ...

An :class:`~genapi.Arg` inside ``Annotated`` replaces the inferred spec entirely.
Parameters annotated with :class:`~genapi.RequestInfo`, :class:`~genapi.CallContext` or
:class:`~genapi.StreamHelper` are not client arguments: genapi passes them by keyword;
nor are parameters given by :class:`~genapi.Depends` (a default or an ``Annotated``
marker), which genapi resolves for each call.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final, Union

import msgspec

from .argspec import MISSING, Arg, ArgType
from .depends import Depends, depends_marker
from .hints import family, unsupported
from .validation import CallMode

__all__ = ["MaxBytes", "MaxItemBytes", "MaxItems", "Signature", "inspect_function"]


@dataclasses.dataclass(frozen=True, slots=True)
class MaxBytes:
    """``Annotated`` marker: maximum UTF-8 bytes of a string."""

    value: int


@dataclasses.dataclass(frozen=True, slots=True)
class MaxItems:
    """``Annotated`` marker: maximum number of items of a list or map."""

    value: int


@dataclasses.dataclass(frozen=True, slots=True)
class MaxItemBytes:
    """``Annotated`` marker: maximum UTF-8 bytes of each string in a list."""

    value: int


@dataclasses.dataclass(frozen=True, slots=True)
class Signature:
    """What genapi learned from a function's signature.

    ``order`` are the client-facing parameters in call order; ``specs`` their inferred
    specs (a parameter whose hint cannot be mapped is listed in ``problems``);
    ``inject`` maps parameter names to what genapi passes itself (``"request_info"``,
    ``"call"`` or ``"stream"``); ``depends`` those genapi resolves with a dependency;
    ``stream_item`` is the chunk type of a ``StreamHelper[T]`` parameter.
    """

    order: tuple[str, ...]
    specs: dict[str, Arg]
    mode: CallMode
    inject: dict[str, str]
    problems: tuple[str, ...] = ()
    depends: dict[str, Depends] = dataclasses.field(default_factory=dict)
    stream_item: Any = None


_SCALARS: Final[dict[Any, ArgType]] = {
    str: ArgType.STRING,
    float: ArgType.NUM,
    bool: ArgType.BOOLEAN,
    uuid.UUID: ArgType.UUID,
    datetime: ArgType.DATETIME,
    dict: ArgType.MAP,
    Mapping: ArgType.MAP,
    list: ArgType.LIST,
    Sequence: ArgType.LIST,
    Any: ArgType.ANY,
    object: ArgType.ANY,
}
_LIST_ITEMS: Final[dict[Any, ArgType]] = {
    str: ArgType.LIST_STRING,
    float: ArgType.LIST_NUM,
    uuid.UUID: ArgType.LIST_UUID,
    dict: ArgType.LIST_MAP,
    Mapping: ArgType.LIST_MAP,
    Any: ArgType.LIST,
    object: ArgType.LIST,
}


def _strip_optional(hint: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(hint)
    if origin is Union or origin is types.UnionType:
        members = [a for a in typing.get_args(hint) if a is not type(None)]
        nullable = len(members) < len(typing.get_args(hint))
        if len(members) == 1:
            return members[0], nullable
        if nullable and set(members) <= {int, float}:
            return float, True
        if set(members) <= {int, float}:
            return float, False
    return hint, False


def _open_map(hint: Any) -> bool:
    """``dict``, ``Mapping`` or one whose values are ``Any`` (the map spec checks no values)."""
    if hint in (dict, Mapping):
        return True
    args = typing.get_args(hint)
    return typing.get_origin(hint) in (dict, Mapping) and (not args or args[1] in (Any, object))


def _arg_type(hint: Any) -> ArgType | None:
    """The spec type that says exactly what ``hint`` accepts, or None (a typed argument)."""
    try:
        if hint in _SCALARS:
            return _SCALARS[hint]
    except TypeError:  # an unhashable hint is not one of ours
        return None
    origin = typing.get_origin(hint)
    if origin in (list, Sequence):
        params = typing.get_args(hint)
        if not params:
            return ArgType.LIST
        item = params[0]
        if set(typing.get_args(item)) == {int, float}:
            return ArgType.LIST_NUM
        if _open_map(item):
            return ArgType.LIST_MAP
        try:
            return _LIST_ITEMS.get(item)
        except TypeError:
            return None
    if _open_map(hint):
        return ArgType.MAP
    return None


def _infer_param(param: inspect.Parameter, hint: Any) -> Arg | str:
    """An Arg for the parameter, or a problem sentence."""
    metadata: tuple[Any, ...] = ()
    if typing.get_origin(hint) is typing.Annotated:
        hint, *rest = typing.get_args(hint)
        metadata = tuple(rest)
    for item in metadata:
        if isinstance(item, Arg):
            return item
    base, nullable = _strip_optional(hint)
    constraints = tuple(item for item in metadata if isinstance(item, msgspec.Meta))
    arg_type = None if constraints else _arg_type(base)
    typed: Any = None
    if arg_type is None:
        typed = typing.Annotated[(base, *constraints)] if constraints else base
        problem = unsupported(typed)
        if problem is not None:
            return (
                f"cannot infer an argument type for parameter {param.name!r} from {hint!r} "
                f"({problem}); use a supported hint or give arg_types"
            )
        arg_type = family(typed)
    options: dict[str, Any] = {}
    for item in metadata:
        if isinstance(item, MaxBytes):
            options["max_bytes"] = item.value
        elif isinstance(item, MaxItems):
            options["max_items"] = item.value
        elif isinstance(item, MaxItemBytes):
            options["max_item_bytes"] = item.value
    default: Any = MISSING if param.default is inspect.Parameter.empty else param.default
    if default is None:
        nullable = True
    try:
        return Arg(
            arg_type,
            allow_nil=nullable,
            default_value=default,
            as_object=arg_type is ArgType.UUID and typed is None,
            hint=typed,
            **options,
        )
    except ValueError as exc:
        return f"parameter {param.name!r}: {exc}"


def injected_as(hint: Any) -> str | None:
    """What genapi passes a parameter of this hint itself (``StreamHelper[T]`` included)."""
    target = typing.get_origin(hint) or hint
    value = getattr(target, "__genapi_inject__", None)
    return value if isinstance(value, str) else None


def _hints(fn: Callable[..., Any]) -> tuple[dict[str, Any], set[str]]:
    """Resolved type hints, and the names whose hint could not be resolved."""
    try:
        return typing.get_type_hints(fn, include_extras=True), set()
    except Exception:
        pass
    # Resolve one by one so a single unresolvable hint (e.g. a class local to a function)
    # is reported for that parameter instead of silently losing every hint.
    hints: dict[str, Any] = {}
    unresolved: set[str] = set()
    namespace = getattr(fn, "__globals__", {})
    for name, annotation in getattr(fn, "__annotations__", {}).items():
        if not isinstance(annotation, str):
            hints[name] = annotation
            continue
        try:
            hints[name] = eval(annotation, namespace)  # same resolution as get_type_hints
        except Exception:
            unresolved.add(name)
    return hints, unresolved


def inspect_function(fn: Callable[..., Any]) -> Signature:
    """Read the parameters of ``fn`` (skipping bound ``self``)."""
    sig = inspect.signature(fn)
    hints, unresolved = _hints(fn)
    order: list[str] = []
    specs: dict[str, Arg] = {}
    inject: dict[str, str] = {}
    depends: dict[str, Depends] = {}
    stream_item: Any = None
    problems: list[str] = []
    kinds: set[inspect._ParameterKind] = set()
    for param in sig.parameters.values():
        hint = hints.get(param.name, Any)
        inject_as = injected_as(hint)
        if inject_as is not None:
            inject[param.name] = inject_as
            if inject_as == "stream" and typing.get_args(hint):
                stream_item = typing.get_args(hint)[0]
            continue
        dependency = depends_marker(param, hint)
        if dependency is not None:
            depends[param.name] = dependency
            continue
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        kinds.add(param.kind)
        order.append(param.name)
        if param.name in unresolved:
            problems.append(f"cannot resolve the type hint of parameter {param.name!r}")
            continue
        spec = _infer_param(param, hint)
        if isinstance(spec, str):
            problems.append(spec)
        else:
            specs[param.name] = spec
    mode = CallMode.POSITIONAL
    # keywords when any parameter is keyword-only, or when an injected parameter comes
    # before any client argument (positions would then shift: ``f(a, call, b)`` too)
    last_client = max((i for i, n in enumerate(sig.parameters) if n in order), default=None)
    first_injected = next((i for i, n in enumerate(sig.parameters)
                           if n in inject or n in depends), None)
    injected_first = (first_injected is not None and last_client is not None
                      and first_injected < last_client)
    if inspect.Parameter.KEYWORD_ONLY in kinds or injected_first:
        mode = CallMode.KEYWORDS
        if inspect.Parameter.POSITIONAL_ONLY in kinds:
            problems.append("cannot mix positional-only and keyword-only parameters")
    return Signature(tuple(order), specs, mode, inject, tuple(problems), depends, stream_item)
