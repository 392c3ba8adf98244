"""Argument specifications: what a function accepts, in every form a config may write it.

A spec may be written as

* a type name: ``"string"``;
* a type and a size: ``("string", 255)`` (``max_bytes`` for strings, ``max_items`` for
  lists and maps);
* a type and options: ``("map", {"required": ["author"]})``;
* a dict: ``{"type": "string", "max_bytes": 200, "default_value": "x"}``;
* an :class:`Arg`: ``Arg("list_string", max_items=10, max_item_bytes=50)``.

All normalise to an :class:`Arg`. Options that do not apply to the type, unknown option
names and unknown types are errors, so a typo never silently turns a limit off.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, Final

from ..errors import ConfigError

__all__ = ["MISSING", "Arg", "ArgType", "Limits", "parse_arg_spec"]


class _Missing:
    """Sentinel for "no default value" (``None`` is a legitimate default)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()


class ArgType(StrEnum):
    """The thirteen argument types."""

    STRING = "string"
    NUM = "num"
    BOOLEAN = "boolean"
    UUID = "uuid"
    DATETIME = "datetime"
    NAIVE_DATETIME = "naive_datetime"
    LIST = "list"
    LIST_STRING = "list_string"
    LIST_NUM = "list_num"
    LIST_UUID = "list_uuid"
    LIST_MAP = "list_map"
    MAP = "map"
    ANY = "any"


LIST_TYPES: Final = frozenset(
    {ArgType.LIST, ArgType.LIST_STRING, ArgType.LIST_NUM, ArgType.LIST_UUID, ArgType.LIST_MAP}
)
SIZED_TYPES: Final = LIST_TYPES | {ArgType.MAP}


@dataclasses.dataclass(frozen=True, slots=True)
class Limits:
    """Global caps used where a spec sets no explicit size.

    ``max_payload_bytes`` bounds a whole request before it is decoded.
    """

    string_max_bytes: int = 3000
    list_max_items: int = 1000
    map_max_items: int = 1000
    max_payload_bytes: int = 1_000_000

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"Limits.{field.name} must be a non-negative integer")


@dataclasses.dataclass(frozen=True, slots=True)
class Arg:
    """One argument's type and constraints.

    ``max_bytes`` limits a string's UTF-8 length; ``max_items`` a list's or map's size;
    ``max_item_bytes`` each string of a ``list_string`` (or ``list``); ``required`` and
    ``accept`` a map's keys. ``allow_nil`` accepts an explicit ``null``; ``default_value``
    is used when the argument is absent. ``as_object`` turns ``uuid`` values into
    :class:`uuid.UUID` (set when the spec is inferred from a ``UUID`` annotation).

    ``hint`` is the Python type a *typed* argument is converted to (inferred from a type
    hint the spec types cannot say exactly: ``int``, a ``msgspec.Struct``, a dataclass,
    ``Literal``…; see :mod:`genapi.functions.hints`). ``type`` is then its family — the
    looser spec type a gateway checks when the function runs on a service node — and
    the global size caps still apply at the argument's top level.
    """

    type: ArgType
    max_bytes: int | None = None
    max_items: int | None = None
    max_item_bytes: int | None = None
    allow_nil: bool = False
    default_value: Any = MISSING
    required: tuple[str, ...] = ()
    accept: tuple[str, ...] = ()
    as_object: bool = False
    hint: Any = None

    def __init__(
        self,
        type: ArgType | str,
        *,
        max_bytes: int | None = None,
        max_items: int | None = None,
        max_item_bytes: int | None = None,
        allow_nil: bool = False,
        default_value: Any = MISSING,
        required: Sequence[str] = (),
        accept: Sequence[str] = (),
        as_object: bool = False,
        hint: Any = None,
    ) -> None:
        set_ = object.__setattr__
        set_(self, "type", _arg_type(type))
        set_(self, "max_bytes", max_bytes)
        set_(self, "max_items", max_items)
        set_(self, "max_item_bytes", max_item_bytes)
        set_(self, "allow_nil", allow_nil)
        set_(self, "default_value", default_value)
        set_(self, "required", _names("required", required))
        set_(self, "accept", _names("accept", accept))
        set_(self, "as_object", as_object)
        set_(self, "hint", hint)
        problems = self.problems()
        if problems:
            raise ConfigError("; ".join(problems))

    @property
    def has_default(self) -> bool:
        """True when a default value is set (``None`` counts as a default only with allow_nil)."""
        return self.default_value is not MISSING

    def problems(self) -> list[str]:
        """Every inconsistency between the type and its options."""
        out: list[str] = []
        for name in ("max_bytes", "max_items", "max_item_bytes"):
            value = getattr(self, name)
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or value < 0
            ):
                out.append(f"{name} must be a non-negative integer")
        if not isinstance(self.allow_nil, bool):
            out.append("allow_nil must be a bool")
        if self.max_bytes is not None and self.type is not ArgType.STRING:
            out.append(f"max_bytes applies to string, not {self.type}")
        if self.max_items is not None and self.type not in SIZED_TYPES:
            out.append(f"max_items applies to lists and maps, not {self.type}")
        if self.max_item_bytes is not None and self.type not in (
            ArgType.LIST_STRING,
            ArgType.LIST,
        ):
            out.append(f"max_item_bytes applies to list_string and list, not {self.type}")
        if (self.required or self.accept) and self.type is not ArgType.MAP:
            out.append(f"required and accept apply to map, not {self.type}")
        if self.required and self.accept:
            unaccepted = [k for k in self.required if k not in self.accept]
            if unaccepted:
                out.append("required keys not in accept: " + ", ".join(unaccepted))
        if self.as_object and self.type is not ArgType.UUID:
            out.append(f"as_object applies to uuid, not {self.type}")
        if self.hint is not None and (self.max_item_bytes is not None or self.required
                                      or self.accept or self.as_object):
            out.append("max_item_bytes, required, accept and as_object apply to spec types; "
                       "constrain a typed argument with its type (msgspec.Meta, fields)")
        return out


_OPTION_ALIASES: Final = {
    "max_bytes": "max_bytes",
    "max_items": "max_items",
    "max_item_bytes": "max_item_bytes",
    "allow_nil": "allow_nil",
    "allow_nil?": "allow_nil",
    "default_value": "default_value",
    "default": "default_value",
    "required": "required",
    "accept": "accept",
}


def _arg_type(value: ArgType | str) -> ArgType:
    if isinstance(value, ArgType):
        return value
    if isinstance(value, str):
        try:
            return ArgType(value.lstrip(":"))
        except ValueError:
            pass
    names = ", ".join(t.value for t in ArgType)
    raise ConfigError(f"unknown type {value!r} (expected one of: {names})")


def _names(option: str, value: Sequence[str]) -> tuple[str, ...]:
    if isinstance(value, str) or not all(isinstance(k, str) for k in value):
        raise ConfigError(f"{option} must be a list of key names")
    return tuple(value)


def _from_options(type_: ArgType | str, options: Mapping[str, Any]) -> Arg:
    kwargs: dict[str, Any] = {}
    for key, value in options.items():
        name = _OPTION_ALIASES.get(key) if isinstance(key, str) else None
        if name is None:
            raise ConfigError(f"unknown option {key!r}")
        kwargs[name] = value
    return Arg(type_, **kwargs)


def parse_arg_spec(spec: Any) -> Arg:
    """Normalise any accepted spec form to an :class:`Arg`; raise ``ValueError`` if invalid."""
    if isinstance(spec, Arg):
        return spec
    if isinstance(spec, str | ArgType):
        return Arg(spec)
    if isinstance(spec, Mapping):
        if "type" not in spec:
            raise ConfigError("missing 'type'")
        options = {k: v for k, v in spec.items() if k != "type"}
        return _from_options(spec["type"], options)
    if isinstance(spec, tuple | list) and len(spec) == 2:
        type_, extra = spec
        arg_type = _arg_type(type_)
        if isinstance(extra, Mapping):
            return _from_options(arg_type, extra)
        if isinstance(extra, int) and not isinstance(extra, bool):
            if arg_type is ArgType.STRING:
                return Arg(arg_type, max_bytes=extra)
            if arg_type in SIZED_TYPES:
                return Arg(arg_type, max_items=extra)
            raise ConfigError(f"a size applies to string, lists and maps, not {arg_type}")
        raise ConfigError("the second element must be a size or a dict of options")
    raise ConfigError(
        "a spec must be a type name, (type, size), (type, options), a dict with 'type', or Arg"
    )
