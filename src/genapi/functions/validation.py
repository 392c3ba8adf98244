"""Argument validators, compiled once per function config.

:func:`compile_args` turns a function's argument specs into one callable that checks a
request's ``args`` and returns the values to call the function with. Spec types are
checked by the checkers below; typed arguments (:mod:`genapi.functions.hints`) are
converted strictly by msgspec (or pydantic), in the same validator. Every argument is
checked and *every* problem collected: :class:`~genapi.ArgumentError`'s message is the
first one (unknown arguments first, then in the declared order), and
``details["errors"]`` lists them all, each as ``{"path": [...], "message": ...}`` (the
path starts with the argument's name and goes down into typed values). Messages a client
can act on:

* ``Missing required argument: user_id``
* ``Invalid argument age: expected num``
* ``Invalid argument title: exceeds max 200 bytes``
* ``Invalid argument tags: exceeds max 10 items``
* ``Invalid argument tags: item 2 expected string`` / ``item 0 exceeds max 50 bytes``
* ``Invalid argument metadata: missing required keys: author``
* ``Invalid argument metadata: unexpected keys: age``
* ``Invalid argument status: must not be null``
* ``Unknown argument: city`` (or ``Unknown arguments: a, b``)
* ``Invalid argument age: expected int, got float`` (typed arguments, in msgspec's words)
* ``Invalid argument user.address.zip: expected str of length <= 10`` (nested)
* ``Invalid argument user.name: missing required field``
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from ..errors import ArgumentError
from .argspec import MISSING, Arg, ArgType, Limits
from .hints import IMMUTABLE, Path, converter, label

__all__ = ["ArgsValidator", "BoundArgs", "CallMode", "compile_arg", "compile_args"]

Checker = Callable[[Any], Any]
BoundArgs = tuple[tuple[Any, ...], dict[str, Any]]

_UUID_RE: Final = re.compile(
    r"\A[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z"
)
_EMPTY: Final[BoundArgs] = ((), {})


class CallMode(StrEnum):
    """How validated values are passed to the function."""

    POSITIONAL = "positional"  # f(v1, v2, ...) in arg order
    MAP = "map"  # f({"name": v, ...})
    KEYWORDS = "keywords"  # f(name=v, ...)


def _fail(name: str, problem: str) -> ArgumentError:
    return ArgumentError(f"Invalid argument {name}: {problem}")


def _utf8_len_exceeds(value: str, limit: int) -> bool:
    # A code point takes 1 to 4 bytes, so most strings are decided without encoding.
    n = len(value)
    if n > limit:
        return True
    if n * 4 <= limit:
        return False
    return len(value.encode("utf-8", "surrogatepass")) > limit


def _is_num(value: Any) -> bool:
    return (type(value) is int or type(value) is float) or (
        isinstance(value, int | float) and not isinstance(value, bool)
    )


def _is_uuid(value: Any) -> bool:
    return isinstance(value, str) and _UUID_RE.match(value) is not None


def _parse_datetime(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def compile_arg(name: str, arg: Arg, limits: Limits) -> Checker:
    """Build the checker for one argument: returns the (converted) value or raises."""
    if arg.hint is not None:
        return _typed_checker(name, arg, limits)
    t = arg.type
    if t is ArgType.ANY:
        return _identity
    if t is ArgType.STRING:
        return _string_checker(name, arg.max_bytes if arg.max_bytes is not None
                               else limits.string_max_bytes)
    if t is ArgType.NUM:
        def check_num(value: Any) -> Any:
            if type(value) is int or type(value) is float or _is_num(value):
                return value
            raise _fail(name, "expected num")
        return check_num
    if t is ArgType.BOOLEAN:
        def check_bool(value: Any) -> Any:
            if value is True or value is False:
                return value
            raise _fail(name, "expected boolean")
        return check_bool
    if t is ArgType.UUID:
        as_object = arg.as_object

        def check_uuid(value: Any) -> Any:
            if _is_uuid(value):
                return uuid.UUID(value) if as_object else value
            raise _fail(name, "expected uuid")
        return check_uuid
    if t is ArgType.DATETIME or t is ArgType.NAIVE_DATETIME:
        return _datetime_checker(name, aware=t is ArgType.DATETIME)
    if t is ArgType.MAP:
        return _map_checker(name, arg, limits)
    return _list_checker(name, arg, limits)


def _identity(value: Any) -> Any:
    return value


def typed_error(name: str, problems: Sequence[tuple[Path, str]]) -> ArgumentError:
    """The ArgumentError of a typed argument's problems (message: the first one)."""
    errors: list[dict[str, Any]] = [
        {"path": [name, *path], "message": f"Invalid argument {label(name, path)}: {problem}"}
        for path, problem in problems]
    if not errors:
        errors = [{"path": [name], "message": f"Invalid argument {name}: invalid value"}]
    return ArgumentError(errors[0]["message"], details={"errors": errors})


def _typed_checker(name: str, arg: Arg, limits: Limits) -> Checker:
    """A typed argument: first its family's spec check (the wording clients know, and the
    global size caps), then the strict conversion to its type."""
    spec_check = compile_arg(name, Arg(arg.type, max_bytes=arg.max_bytes,
                                       max_items=arg.max_items), limits)
    hint = arg.hint
    if hint is int:  # the most common typed argument: no conversion call when valid
        def check_int(value: Any) -> Any:
            if type(value) is int:
                return value
            value = spec_check(value)  # "expected num" for what is no number at all
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            raise typed_error(name, converter(int).problems(value))
        return check_int
    conv = converter(hint)
    convert, errors = conv.convert, conv.errors
    if arg.type is ArgType.MAP:  # Structs, dataclasses, models: the map check inlined
        max_items = arg.max_items if arg.max_items is not None else limits.map_max_items

        def check_object(value: Any) -> Any:
            if type(value) is not dict or len(value) > max_items:
                spec_check(value)  # raises the spec's message
            try:
                return convert(value)
            except errors:
                raise typed_error(name, conv.problems(value)) from None
        return check_object

    def check_typed(value: Any) -> Any:
        try:
            return convert(spec_check(value))
        except errors:
            raise typed_error(name, conv.problems(value)) from None
    return check_typed


def _check_default(name: str, arg: Arg, check: Checker, default: Any) -> Any:
    """A default value, checked (and converted) as a client's value would be; a typed
    argument's default may also be an instance of its type (a Struct, an Enum member)."""
    if arg.hint is None:
        return check(default)
    conv = converter(arg.hint)
    try:
        return conv.convert(default)
    except conv.errors:
        raise typed_error(name, conv.problems(default)) from None


def _string_checker(name: str, max_bytes: int) -> Checker:
    def check_string(value: Any) -> Any:
        if not isinstance(value, str):
            raise _fail(name, "expected string")
        if _utf8_len_exceeds(value, max_bytes):
            raise _fail(name, f"exceeds max {max_bytes} bytes")
        return value
    return check_string


def _datetime_checker(name: str, *, aware: bool) -> Checker:
    expected = (
        "expected datetime (ISO 8601 with a UTC offset)" if aware
        else "expected naive_datetime (ISO 8601 without offset)"
    )

    def check_datetime(value: Any) -> Any:
        parsed = _parse_datetime(value) if isinstance(value, str) else None
        if parsed is None or (parsed.tzinfo is not None) is not aware:
            raise _fail(name, expected)
        return parsed
    return check_datetime


def _map_checker(name: str, arg: Arg, limits: Limits) -> Checker:
    max_items = arg.max_items if arg.max_items is not None else limits.map_max_items
    required = arg.required
    accept = frozenset(arg.accept)

    def check_map(value: Any) -> Any:
        if not isinstance(value, dict):
            raise _fail(name, "expected map")
        if len(value) > max_items:
            raise _fail(name, f"exceeds max {max_items} items")
        if required:
            missing = [k for k in required if k not in value]
            if missing:
                raise _fail(name, "missing required keys: " + ", ".join(missing))
        if accept:
            rejected = [str(k) for k in value if k not in accept]
            if rejected:
                raise _fail(name, "unexpected keys: " + ", ".join(rejected))
        return value
    return check_map


def _list_checker(name: str, arg: Arg, limits: Limits) -> Checker:
    max_items = arg.max_items if arg.max_items is not None else limits.list_max_items
    item_bytes = (
        arg.max_item_bytes if arg.max_item_bytes is not None else limits.string_max_bytes
    )
    t = arg.type

    def item_problem(index: int, item: Any) -> str | None:
        if t is ArgType.LIST_STRING or (t is ArgType.LIST and isinstance(item, str)):
            if not isinstance(item, str):
                return f"item {index} expected string"
            if _utf8_len_exceeds(item, item_bytes):
                return f"item {index} exceeds max {item_bytes} bytes"
            return None
        if t is ArgType.LIST_NUM:
            return None if _is_num(item) else f"item {index} expected num"
        if t is ArgType.LIST_UUID:
            return None if _is_uuid(item) else f"item {index} expected uuid"
        if t is ArgType.LIST_MAP:
            return None if isinstance(item, dict) else f"item {index} expected map"
        # plain list: scalars only (strings handled above)
        if item is True or item is False or _is_num(item):
            return None
        return f"item {index} expected boolean, num or string"

    def check_list(value: Any) -> Any:
        if not isinstance(value, list):
            raise _fail(name, "expected list")
        if len(value) > max_items:
            raise _fail(name, f"exceeds max {max_items} items")
        for index, item in enumerate(value):
            problem = item_problem(index, item)
            if problem is not None:
                raise _fail(name, problem)
        return value
    return check_list


class ArgsValidator:
    """Checks a request's ``args`` and binds them for the call.

    ``bind(args)`` returns ``(positional, keywords)`` to call the function with, or
    raises :class:`~genapi.ArgumentError`.
    """

    __slots__ = ("bind", "mode", "names", "specs")

    def __init__(
        self,
        specs: Mapping[str, Arg],
        order: Sequence[str],
        mode: CallMode,
        limits: Limits,
    ) -> None:
        self.specs = dict(specs)
        self.names = tuple(order)
        self.mode = mode
        self.bind = _build(self.specs, self.names, mode, limits)


def _problem(name: str, exc: ArgumentError) -> list[dict[str, Any]]:
    """The ``details["errors"]`` entries of one argument's error."""
    errors = exc.details.get("errors")
    if isinstance(errors, list):
        return errors
    return [{"path": [name], "message": exc.message}]


def _fails(entries: list[dict[str, Any]], first: str | None = None) -> ArgumentError:
    return ArgumentError(first if first is not None else entries[0]["message"],
                         details={"errors": entries})


def _build(
    specs: Mapping[str, Arg], order: Sequence[str], mode: CallMode, limits: Limits
) -> Callable[[Mapping[str, Any]], BoundArgs]:
    declared = frozenset(order)
    entries = []
    for name in order:
        arg = specs[name]
        check = compile_arg(name, arg, limits)
        default = arg.default_value
        if default is not MISSING and default is not None:
            default = _check_default(name, arg, check, default)  # proves it valid
        mutable = not isinstance(default, IMMUTABLE)
        entries.append((name, check, default, arg.allow_nil, mutable))
    frozen_entries = tuple(entries)

    def unknown(args: Mapping[str, Any]) -> ArgumentError:
        extra = [str(k) for k in args if k not in declared]
        label_ = "Unknown argument: " if len(extra) == 1 else "Unknown arguments: "
        return _fails([{"path": [k], "message": f"Unknown argument: {k}"} for k in extra],
                      label_ + ", ".join(extra))

    if not frozen_entries:
        def validate_none(args: Mapping[str, Any]) -> BoundArgs:
            if args:
                raise unknown(args)
            return _EMPTY
        return validate_none

    def values(args: Mapping[str, Any]) -> list[Any]:
        found: ArgumentError | None = None
        for key in args:
            if key not in declared:
                found = unknown(args)
                break
        out = []
        for name, check, default, allow_nil, mutable in frozen_entries:
            value = args.get(name, MISSING)
            try:
                if value is MISSING:
                    if default is not MISSING:
                        value = copy.deepcopy(default) if mutable else default
                    elif not allow_nil:
                        raise ArgumentError(f"Missing required argument: {name}")
                    else:
                        value = None
                elif value is None:
                    if not allow_nil:
                        raise _fail(name, "must not be null")
                else:
                    value = check(value)
            except ArgumentError as exc:  # keep going: the client hears every problem
                if found is None:
                    found = exc if "errors" in exc.details else _fails(_problem(name, exc))
                else:
                    found.details["errors"].extend(_problem(name, exc))
            out.append(value)
        if found is not None:
            raise found
        return out

    if mode is CallMode.POSITIONAL:
        def validate_positional(args: Mapping[str, Any]) -> BoundArgs:
            return tuple(values(args)), {}
        return validate_positional
    names = tuple(order)
    if mode is CallMode.MAP:
        def validate_map(args: Mapping[str, Any]) -> BoundArgs:
            return (dict(zip(names, values(args), strict=True)),), {}
        return validate_map

    def validate_keywords(args: Mapping[str, Any]) -> BoundArgs:
        return (), dict(zip(names, values(args), strict=True))
    return validate_keywords


def compile_args(
    specs: Mapping[str, Arg],
    order: Sequence[str],
    mode: CallMode = CallMode.POSITIONAL,
    limits: Limits | None = None,
) -> ArgsValidator:
    """Compile the validator for a function's arguments (``order`` = call order)."""
    return ArgsValidator(specs, order, mode, limits or Limits())
