"""JSON Schema (draft 2020-12) of each function's ``args`` object, result and stream chunks.

The argument schemas describe what the gateway's validator accepts, with two documented
approximations: a string's limit is in UTF-8 *bytes* while ``maxLength`` counts
characters, so ``maxLength`` is set to the byte limit (a necessary condition; the exact
limit is in ``x-genapi-max-bytes``); and ``naive_datetime`` is only described (ISO 8601
without an offset), not pattern-checked. A typed argument's schema is its Python type's
(msgspec's or pydantic's generator). Only draft-07-compatible keywords are used by genapi
itself, so the same schemas can sit inside an AsyncAPI document.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from .catalog import function_key
from .types import relocate

__all__ = ["SCHEMA_DIALECT", "UUID_PATTERN", "args_schema", "json_schemas"]

SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
#: The shape the validator accepts for ``uuid`` arguments.
UUID_PATTERN: Final = (
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)


def _string(max_bytes: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "string"}
    if max_bytes is not None:
        out.update({"maxLength": max_bytes, "x-genapi-max-bytes": max_bytes})
    return out


def _uuid() -> dict[str, Any]:
    return {"type": "string", "format": "uuid", "pattern": UUID_PATTERN}


def _value_schema(arg: dict[str, Any]) -> dict[str, Any]:
    """The schema of a present, non-null value of the described argument."""
    t = arg["type"]
    items = arg.get("max_items")
    if t == "string":
        out = _string(arg.get("max_bytes"))
        if "max_bytes" in arg:
            out["description"] = f"At most {arg['max_bytes']} UTF-8 bytes."
        return out
    if t == "num":
        return {"type": "number"}
    if t == "boolean":
        return {"type": "boolean"}
    if t == "uuid":
        return _uuid()
    if t == "datetime":
        return {"type": "string", "format": "date-time",
                "description": "ISO 8601 date-time with a UTC offset."}
    if t == "naive_datetime":
        return {"type": "string", "description": "ISO 8601 date-time without a UTC offset."}
    if t == "map":
        out = {"type": "object"}
        if items is not None:
            out["maxProperties"] = items
        if arg.get("required_keys"):
            out["required"] = list(arg["required_keys"])
        if arg.get("accept"):
            out["properties"] = {key: {} for key in arg["accept"]}
            out["additionalProperties"] = False
        return out
    if t == "any":
        return {}
    item: dict[str, Any] = {
        "list": {"anyOf": [_string(arg.get("max_item_bytes")), {"type": "number"},
                           {"type": "boolean"}]},
        "list_string": _string(arg.get("max_item_bytes")),
        "list_num": {"type": "number"},
        "list_uuid": _uuid(),
        "list_map": {"type": "object"},
    }.get(t, {})
    out = {"type": "array", "items": item}
    if items is not None:
        out["maxItems"] = items
    return out


def arg_schema(arg: dict[str, Any], refs: str = "#/$defs/") -> dict[str, Any]:
    """The schema of one described argument (``null`` allowed with ``allow_nil``); a typed
    argument's named types are referred to under ``refs``."""
    if "schema" in arg:
        out = dict(relocate(arg["schema"], refs))
        if arg.get("allow_nil"):
            out = {"anyOf": [out, {"type": "null"}]}
        if "default" in arg:
            out["default"] = arg["default"]
        return out
    out = _value_schema(arg)
    if arg["type"] == "any" and not arg.get("allow_nil"):
        out = {"not": {"type": "null"}}  # any value, but null only with allow_nil
    elif arg.get("allow_nil") and "type" in out:
        out["type"] = [out["type"], "null"]
    elif arg.get("allow_nil") and out:
        out = {"anyOf": [out, {"type": "null"}]}
    if "default" in arg:
        out["default"] = arg["default"]
    return out


def args_schema(arguments: Iterable[dict[str, Any]], *, title: str | None = None,
                dialect: bool = True, description: str | None = None,
                refs: str = "#/$defs/") -> dict[str, Any]:
    """The schema of a function's ``args`` object: unknown arguments are refused."""
    arguments = list(arguments)
    out: dict[str, Any] = {"$schema": SCHEMA_DIALECT} if dialect else {}
    if title is not None:
        out["title"] = title
    if description:
        out["description"] = description
    out.update({
        "type": "object",
        "properties": {a["name"]: arg_schema(a, refs) for a in arguments},
        "required": [a["name"] for a in arguments if a["required"]],
        "additionalProperties": False,
    })
    return out


def json_schemas(catalog: dict[str, Any]) -> dict[str, Any]:
    """One document holding every function's schemas and the named types under ``$defs``.

    A function's args schema is keyed ``service.request_type`` (``@version`` added for
    versioned configs), its result's ``….result`` and a stream's chunks' ``….chunk`` (when
    declared); refer to one as ``{"$ref": "#/$defs/user_service.get_user"}``. Named types
    (``User``…) sit beside them.
    """
    defs: dict[str, Any] = {name: relocate(schema, "#/$defs/")
                            for name, schema in catalog.get("definitions", {}).items()}
    for function in catalog["functions"]:
        key = function_key(function)
        defs[key] = args_schema(function["arguments"], title=key, dialect=False,
                                description=function.get("description"))
        for part in ("result", "chunk"):
            if function.get(part) is not None:
                defs[f"{key}.{part}"] = relocate(function[part], "#/$defs/")
    return {
        "$schema": SCHEMA_DIALECT,
        "title": "genapi function arguments, results and stream chunks",
        "$defs": defs,
    }
