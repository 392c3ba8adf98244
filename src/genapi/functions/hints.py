"""Type hints as the contract: strict conversion of JSON values to Python types.

A parameter or return type that the thirteen spec types cannot say exactly — ``int``
(which refuses ``1.5``), ``msgspec.Struct``, dataclasses, ``TypedDict``, ``Literal``,
``Enum``, ``Decimal``, ``date``, ``Annotated[..., msgspec.Meta(ge=0, pattern=…)]``,
nested containers and unions of these — is converted by msgspec, strictly: ``int``
refuses ``1.5`` and ``"1"``, ``bool`` is not an ``int``, strings become ``datetime``,
``UUID`` or ``Decimal`` only where the type says so. pydantic v2 models (and hints that
contain them) are validated by pydantic in its strict JSON mode when pydantic is
installed; genapi never imports pydantic itself.

A failed conversion is explained completely: :meth:`Converter.problems` walks the value
along the type and lists *every* problem with its path, not only the first one msgspec
stops at (this walk runs only after a failure, so valid calls pay one conversion).

Results and stream chunks are encoded from their declared types
(:func:`result_encoder`): a Struct, dataclass or pydantic model (or a dict with the same
shape, or an object with those attributes) becomes JSON-ready data; plain JSON types
(``dict``, ``list[str]``, ``Any`` …) pass through untouched.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import datetime as dt
import decimal
import enum
import functools
import re
import sys
import types
import typing
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Final, Literal, Union

import msgspec

from .argspec import ArgType

__all__ = [
    "Converter",
    "Path",
    "Problem",
    "converter",
    "family",
    "is_plain",
    "is_pydantic_model",
    "jsonable",
    "label",
    "result_encoder",
    "unsupported",
]

#: Where in an argument a problem is: keys of objects and indexes of arrays.
Path = tuple[str | int, ...]
#: A problem found in a value: its path below the argument, and what is wrong.
Problem = tuple[Path, str]

_NONE = type(None)
_AT: Final = re.compile(r" - at `\$(.*)`$")
_SEGMENT: Final = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")
_IDENTIFIER: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SEQUENCES: Final = frozenset({list, set, frozenset, cabc.Sequence, cabc.MutableSequence,
                               cabc.Set, cabc.MutableSet, cabc.Collection, cabc.Iterable})
_MAPPINGS: Final = frozenset({dict, cabc.Mapping, cabc.MutableMapping})
_PLAIN_SCALARS: Final = frozenset({str, int, float, bool, _NONE, Any, object})


# -- what a hint is --------------------------------------------------------------------

def _pydantic() -> Any:
    """The pydantic module when the application imported it (genapi never does)."""
    return sys.modules.get("pydantic")


def is_pydantic_model(hint: Any) -> bool:
    """True for a pydantic v2 model class (False when pydantic was never imported)."""
    pydantic = _pydantic()
    return (pydantic is not None and isinstance(hint, type)
            and issubclass(hint, pydantic.BaseModel))


def _strip_annotated(hint: Any) -> Any:
    while typing.get_origin(hint) is typing.Annotated:
        hint = typing.get_args(hint)[0]
    return hint


def _members(hint: Any) -> Iterator[Any]:
    """``hint`` and every type inside it (arguments, fields are not visited)."""
    yield hint
    for arg in typing.get_args(hint):
        if not isinstance(arg, str | int | float | bool | bytes | enum.Enum) and arg is not None:
            yield from _members(arg)


def _uses_pydantic(hint: Any) -> bool:
    return _pydantic() is not None and any(is_pydantic_model(m) for m in _members(hint))


def is_plain(hint: Any) -> bool:
    """True when values of ``hint`` are JSON data already (nothing to convert on output)."""
    hint = _strip_annotated(hint)
    if hint in _PLAIN_SCALARS:
        return True
    origin = typing.get_origin(hint)
    if origin is None:
        return hint in (list, dict, tuple) or hint in _SEQUENCES or hint in _MAPPINGS
    if origin in (Union, types.UnionType, list, tuple) or origin in _MAPPINGS or origin in (
            cabc.Sequence, cabc.MutableSequence):
        return all(a is Ellipsis or is_plain(a) for a in typing.get_args(hint))
    return False


def _custom_types(info: Any, seen: set[int]) -> Iterator[Any]:
    """The types msgspec would not know how to decode, found in a ``type_info`` tree."""
    mi = msgspec.inspect
    if id(info) in seen:
        return
    seen.add(id(info))
    if isinstance(info, mi.CustomType):
        yield info.cls
    elif isinstance(info, mi.StructType | mi.DataclassType | mi.TypedDictType
                    | mi.NamedTupleType):
        for field in info.fields:
            yield from _custom_types(field.type, seen)
    elif isinstance(info, mi.UnionType):
        for member in info.types:
            yield from _custom_types(member, seen)
    elif isinstance(info, mi.DictType):
        yield from _custom_types(info.key_type, seen)
        yield from _custom_types(info.value_type, seen)
    elif isinstance(info, mi.TupleType):
        for item in info.item_types:
            yield from _custom_types(item, seen)
    elif isinstance(info, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType):
        yield from _custom_types(info.item_type, seen)
    elif isinstance(info, mi.Metadata):
        yield from _custom_types(info.type, seen)


def unsupported(hint: Any) -> str | None:
    """Why ``hint`` cannot be used as an argument or result type, or None when it can."""
    if _uses_pydantic(hint):
        return None
    try:
        msgspec.json.Decoder(hint)
        info = msgspec.inspect.type_info(hint)
    except (TypeError, ValueError, NameError) as exc:
        return str(exc)
    custom = next(_custom_types(info, set()), None)
    if custom is not None:
        name = getattr(custom, "__qualname__", repr(custom))
        return f"{name} is not a type genapi can convert JSON to"
    return None


def _family_of_scalar(hint: Any) -> ArgType:
    if hint is bool:
        return ArgType.BOOLEAN
    if isinstance(hint, type) and issubclass(hint, int | float) and not issubclass(hint, bool):
        return ArgType.NUM
    if hint is str or hint in (dt.date, dt.time) or (
            isinstance(hint, type) and issubclass(hint, str)):
        return ArgType.STRING
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        values = {type(m.value) for m in hint}
        if values <= {str}:
            return ArgType.STRING
        if values <= {int} or values <= {int, float}:
            return ArgType.NUM
        return ArgType.ANY
    if typing.get_origin(hint) is Literal:
        values = {type(v) for v in typing.get_args(hint)}
        if values <= {str}:
            return ArgType.STRING
        if values <= {int}:
            return ArgType.NUM
        if values <= {bool}:
            return ArgType.BOOLEAN
    return ArgType.ANY


_LIST_OF: Final = {ArgType.NUM: ArgType.LIST_NUM, ArgType.STRING: ArgType.LIST_STRING,
                   ArgType.MAP: ArgType.LIST_MAP, ArgType.UUID: ArgType.LIST_UUID,
                   ArgType.BOOLEAN: ArgType.LIST}


def family(hint: Any) -> ArgType:
    """The spec type whose (looser) check accepts every value ``hint`` accepts.

    It names the argument's kind in catalogs, decides which size options apply, and is
    what a gateway checks for a typed function that runs on a service node (the node
    converts strictly).
    """
    hint = _strip_annotated(hint)
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        kinds = {family(a) for a in typing.get_args(hint) if a is not _NONE}
        return kinds.pop() if len(kinds) == 1 else ArgType.ANY
    if hint is uuid.UUID:
        return ArgType.UUID
    if hint in _MAPPINGS or origin in _MAPPINGS or is_pydantic_model(hint):
        return ArgType.MAP
    if isinstance(hint, type) and (
            dataclasses.is_dataclass(hint) or typing.is_typeddict(hint)
            or (issubclass(hint, msgspec.Struct)
                and not hint.__struct_config__.array_like)):
        return ArgType.MAP
    if hint in _SEQUENCES or origin in _SEQUENCES or (
            origin is tuple and typing.get_args(hint)[-1:] == (Ellipsis,)):
        args = typing.get_args(hint)
        if not args:
            return ArgType.ANY
        item = family(args[0])
        return _LIST_OF.get(item, ArgType.ANY)
    return _family_of_scalar(hint)


# -- explaining a failed conversion ----------------------------------------------------

def _clean(message: str) -> tuple[Path, str]:
    """A msgspec message as (path below the value, problem in genapi's words)."""
    path: list[str | int] = []
    found = _AT.search(message)
    if found is not None:
        message = message[:found.start()]
        for name, index in _SEGMENT.findall(found.group(1)):
            if name:
                path.append(name)
            elif index == "...":
                path.append("…")
            else:
                path.append(int(index))
    text = message.replace("`", "")
    return tuple(path), text[:1].lower() + text[1:]


def _field_hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls, include_extras=True)
    except Exception:  # an unresolvable annotation: explain at the object's level only
        return {}


def _object_fields(hint: Any) -> tuple[list[tuple[str, Any, bool]], frozenset[str] | None]:
    """``(encoded name, type, required)`` of an object type's fields, and the keys it
    accepts when it refuses unknown ones (None: unknown keys are ignored)."""
    if isinstance(hint, type) and issubclass(hint, msgspec.Struct):
        config = hint.__struct_config__
        if config.array_like:
            return [], None
        fields = [(f.encode_name, f.type, f.required) for f in msgspec.structs.fields(hint)]
        known = None
        if config.forbid_unknown_fields:
            names = {f[0] for f in fields}
            if isinstance(config.tag_field, str):
                names.add(config.tag_field)
            known = frozenset(names)
        return fields, known
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        resolved = _field_hints(hint)
        return [(f.name, resolved.get(f.name, Any),
                 f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
                for f in dataclasses.fields(hint) if f.init], None
    if isinstance(hint, type) and typing.is_typeddict(hint):
        required: frozenset[str] = getattr(hint, "__required_keys__", frozenset())
        return [(name, tp, name in required) for name, tp in _field_hints(hint).items()], None
    return [], None


Child = tuple[Path, Any, Any]
_ABSENT: Final = object()  # a child standing for a missing required field
_UNKNOWN: Final = object()  # a child standing for a field the type refuses


def _children(value: Any, hint: Any) -> list[Child]:
    """The parts of ``value`` to explain one by one, with their types, in order (missing
    and refused fields stand in as ``_ABSENT`` and ``_UNKNOWN``)."""
    hint = _strip_annotated(hint)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (Union, types.UnionType):
        members = [a for a in args if a is not _NONE]
        if len(members) == 1 and value is not None:
            return [((), value, members[0])]
        return []
    if isinstance(value, list):
        if origin in _SEQUENCES and args:
            return [((i,), item, args[0]) for i, item in enumerate(value)]
        if origin is tuple and args:
            if args[-1] is Ellipsis:
                return [((i,), item, args[0]) for i, item in enumerate(value)]
            if len(args) == len(value):
                return [((i,), item, tp) for i, (item, tp) in enumerate(zip(value, args,
                                                                               strict=True))]
        return []
    if not isinstance(value, dict):
        return []
    if origin in _MAPPINGS and len(args) == 2:
        return [((key,), item, args[1]) for key, item in value.items()]
    fields, known = _object_fields(hint)
    children: list[Child] = []
    for name, tp, required in fields:
        if name in value:
            children.append(((name,), value[name], tp))
        elif required:
            children.append(((name,), _ABSENT, tp))
    if known is not None:
        children.extend(((str(key),), _UNKNOWN, None) for key in value if key not in known)
    return children


# -- converters ------------------------------------------------------------------------

class Converter:
    """Converts JSON values to one type, strictly, and explains every failure."""

    __slots__ = ("convert", "hint", "uses_pydantic")

    convert: Callable[[Any], Any]

    def __init__(self, hint: Any) -> None:
        self.hint = hint
        self.uses_pydantic = _uses_pydantic(hint)
        if self.uses_pydantic:
            self.convert = self._pydantic_converter(hint)
        else:  # a C-level partial: no Python frame per call
            self.convert = functools.partial(msgspec.convert, type=hint, strict=True)

    @staticmethod
    def _pydantic_converter(hint: Any) -> Callable[[Any], Any]:
        adapter = _pydantic().TypeAdapter(hint)
        encode = msgspec.json.Encoder(enc_hook=_dump_pydantic).encode

        def convert(value: Any) -> Any:
            # JSON mode: strings become datetimes and UUIDs as they do over the wire
            return adapter.validate_json(encode(value), strict=True)

        return convert

    def problems(self, value: Any) -> list[Problem]:
        """Every problem of ``value`` against the type, with its path (empty: it is valid)."""
        if self.uses_pydantic:
            return self._pydantic_problems(value)
        return _msgspec_problems(value, self.hint, ())

    def _pydantic_problems(self, value: Any) -> list[Problem]:
        try:
            self.convert(value)
        except Exception as exc:
            errors = getattr(exc, "errors", None)
            if errors is None:
                return [((), str(exc))]
            found: list[Problem] = []
            for error in errors(include_url=False):
                text = str(error.get("msg", "invalid value"))
                found.append((tuple(error.get("loc", ())), text[:1].lower() + text[1:]))
            return found
        return []

    @property
    def errors(self) -> tuple[type[BaseException], ...]:
        """The exceptions :attr:`convert` raises for invalid values."""
        if self.uses_pydantic:
            return (_pydantic().ValidationError, msgspec.EncodeError, TypeError, ValueError)
        return (msgspec.ValidationError,)


def _msgspec_problems(value: Any, hint: Any, path: Path) -> list[Problem]:
    try:
        msgspec.convert(value, hint, strict=True)
    except msgspec.ValidationError as exc:
        first = exc
    else:
        return []
    found: list[Problem] = []
    for sub, item, item_hint in _children(value, hint):
        if item is _ABSENT:
            found.append(((*path, *sub), "missing required field"))
        elif item is _UNKNOWN:
            found.append(((*path, *sub), "unknown field"))
        else:
            found.extend(_msgspec_problems(item, item_hint, (*path, *sub)))
    if found:
        return found
    below, problem = _clean(str(first))
    return [((*path, *below), problem)]


def jsonable(value: Any) -> Any:
    """``value`` as JSON data: Structs, dataclasses, pydantic models, datetimes, UUIDs,
    enums… (what a client sends of typed arguments)."""
    return msgspec.to_builtins(value, enc_hook=_dump_pydantic)


def _dump_pydantic(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if dump is None:
        raise NotImplementedError(f"cannot encode {type(value).__name__}")
    return dump(mode="json")


_CONVERTERS: dict[Any, Converter] = {}


def converter(hint: Any) -> Converter:
    """The (shared) converter of ``hint``."""
    try:
        found = _CONVERTERS.get(hint)
    except TypeError:  # an unhashable hint: not cached
        return Converter(hint)
    if found is None:
        found = Converter(hint)
        if len(_CONVERTERS) < 10_000:
            _CONVERTERS[hint] = found
    return found


def label(name: str, path: Path) -> str:
    """``user.address.city`` / ``tags[2]`` / ``meta["a b"]``: where a problem is."""
    out = name
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENTIFIER.match(part):
            out += f".{part}"
        else:
            out += f"[{part!r}]"
    return out


# -- results ---------------------------------------------------------------------------

def result_encoder(hint: Any) -> Callable[[Any], Any] | None:
    """How to turn results of the declared type ``hint`` into JSON-ready data; None when
    they are JSON data already (nothing to do on the hot path)."""
    if hint is None or is_plain(hint) or unsupported(hint) is not None:
        return None
    if _uses_pydantic(hint):
        adapter = _pydantic().TypeAdapter(hint)

        def encode_pydantic(result: Any) -> Any:
            if not is_pydantic_model(type(result)):
                result = adapter.validate_python(result, from_attributes=True)
            return adapter.dump_python(result, mode="json")

        return encode_pydantic
    convert, to_builtins = msgspec.convert, msgspec.to_builtins

    def encode(result: Any) -> Any:
        try:
            typed = convert(result, hint, strict=True, from_attributes=True)
        except msgspec.ValidationError as exc:
            name = getattr(hint, "__qualname__", repr(hint))
            raise TypeError(f"the result does not match its declared type {name}: "
                            f"{exc}") from exc
        return to_builtins(typed)

    return encode


#: Types whose values are immutable, so a default of them need not be copied per call.
IMMUTABLE: Final = (str, int, float, bool, bytes, tuple, frozenset, _NONE, enum.Enum,
                    uuid.UUID, dt.date, dt.time, dt.timedelta, decimal.Decimal)
