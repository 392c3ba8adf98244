"""TypeScript types from JSON Schema: the named types and typed values of a catalog.

Covers what msgspec's and pydantic's generators emit: objects (properties, required,
additional properties), arrays and tuples (``prefixItems``), scalars, ``enum``, ``const``,
``anyOf``/``oneOf`` (unions), ``allOf`` (intersections) and ``$ref`` to a catalog
definition. Anything else is ``unknown`` — a safe approximation, never a wrong type.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from .types import DEFINITIONS

__all__ = ["TypeNames", "declarations", "ts_type"]

_IDENT: Final = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
_SCALAR: Final = {"string": "string", "integer": "number", "number": "number",
                  "boolean": "boolean", "null": "null"}


def _prop(name: str) -> str:
    return name if _IDENT.match(name) else json.dumps(name)


def _comment(text: str) -> str:
    return text.replace("*/", "*\\/").replace("\n", " ")


class TypeNames:
    """TypeScript names for the catalog's definitions, clear of names already taken."""

    def __init__(self, definitions: Iterable[str], taken: Iterable[str]) -> None:
        used = set(taken)
        self.names: dict[str, str] = {}
        for name in definitions:
            base = re.sub(r"[^A-Za-z0-9_$]", "_", name) or "Type"
            if base[0].isdigit():
                base = "_" + base
            candidate, n = base, 2
            while candidate in used:
                candidate, n = f"{base}{n}", n + 1
            used.add(candidate)
            self.names[name] = candidate

    def of(self, ref: str) -> str:
        """The TypeScript name behind a ``#/definitions/…`` reference."""
        return self.names.get(ref.removeprefix(DEFINITIONS), "unknown")


def _object(schema: Mapping[str, Any], names: TypeNames, indent: str) -> str:
    properties: Mapping[str, Any] = schema.get("properties") or {}
    required = set(schema.get("required") or ())
    extra = schema.get("additionalProperties")
    if not properties:
        if isinstance(extra, Mapping):
            return f"Record<string, {ts_type(extra, names, indent)}>"
        return "Record<string, unknown>"
    inner = indent + "  "
    lines = []
    for key, value in properties.items():
        doc = value.get("description") if isinstance(value, Mapping) else None
        if doc:
            lines.append(f"{inner}/** {_comment(str(doc))} */")
        optional = "" if key in required else "?"
        lines.append(f"{inner}{_prop(key)}{optional}: {ts_type(value, names, inner)};")
    if isinstance(extra, Mapping) and extra:
        lines.append(f"{inner}[key: string]: unknown;")
    return "{\n" + "\n".join(lines) + f"\n{indent}}}"


def ts_type(schema: Any, names: TypeNames, indent: str = "") -> str:
    """The TypeScript type of values ``schema`` accepts."""
    if not isinstance(schema, Mapping) or not schema:
        return "unknown"
    if "$ref" in schema:
        return names.of(str(schema["$ref"]))
    if "const" in schema:
        return json.dumps(schema["const"])
    if "enum" in schema:
        return " | ".join(json.dumps(v) for v in schema["enum"]) or "never"
    for key, joiner in (("anyOf", " | "), ("oneOf", " | "), ("allOf", " & ")):
        if key in schema:
            parts = [ts_type(member, names, indent) for member in schema[key]]
            return joiner.join(f"({p})" if " | " in p and joiner == " & " else p
                               for p in parts) or "unknown"
    kind = schema.get("type")
    if isinstance(kind, list):
        return " | ".join(ts_type({**schema, "type": k}, names, indent) for k in kind)
    if kind == "array":
        if "prefixItems" in schema:
            return "[" + ", ".join(ts_type(item, names, indent)
                                   for item in schema["prefixItems"]) + "]"
        item = ts_type(schema.get("items", {}), names, indent)
        return f"Array<{item}>"
    if kind == "object":
        return _object(schema, names, indent)
    return _SCALAR.get(str(kind), "unknown")


def declarations(definitions: Mapping[str, Any], names: TypeNames) -> list[str]:
    """One ``export interface`` (objects) or ``export type`` per definition."""
    out = []
    for name, schema in definitions.items():
        ts_name = names.names[name]
        doc = schema.get("description") or schema.get("title")
        if doc:
            out.append(f"/** {_comment(str(doc))} */")
        if schema.get("type") == "object" and schema.get("properties"):
            out.append(f"export interface {ts_name} {_object(schema, names, '')}")
        else:
            out.append(f"export type {ts_name} = {ts_type(schema, names)};")
        out.append("")
    return out
