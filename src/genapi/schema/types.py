"""JSON Schema of Python types: typed arguments, results and stream chunks.

:class:`TypeSchemas` turns the hints of a catalog into JSON Schema (msgspec's generator;
pydantic's for hints holding pydantic models), with the named types — Structs,
dataclasses, TypedDicts, enums, models — gathered once under ``definitions`` and referred
to as ``{"$ref": "#/definitions/User"}``. Exporters move the definitions where their
format keeps them (``$defs``, ``components/schemas``) with :func:`relocate`.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from ..functions.hints import is_pydantic_model, unsupported

__all__ = ["DEFINITIONS", "TypeSchemas", "relocate"]

#: Where the catalog keeps named types (a JSON pointer prefix).
DEFINITIONS: Final = "#/definitions/"


def _uses_pydantic(hint: Any) -> bool:
    stack = [hint]
    while stack:
        current = stack.pop()
        if is_pydantic_model(current):
            return True
        stack.extend(a for a in getattr(current, "__args__", ()) if a is not None)
    return False


class TypeSchemas:
    """Collects JSON Schema for many hints, sharing their named types' definitions."""

    def __init__(self) -> None:
        self.definitions: dict[str, Any] = {}
        self._hints: list[tuple[Any, bool]] = []
        self._schemas: dict[int, dict[str, Any]] = {}

    def add(self, hint: Any, *, output: bool = False) -> int:
        """Register a hint (``output``: of results, not arguments); its schema is
        :meth:`get` ``(index)`` after :meth:`build`."""
        self._hints.append((hint, output))
        return len(self._hints) - 1

    def build(self) -> None:
        """Generate every registered hint's schema (one pass, so names are shared)."""
        plain: list[int] = []
        for index, (hint, output) in enumerate(self._hints):
            if _uses_pydantic(hint):
                self._schemas[index] = self._pydantic(hint, output)
            elif unsupported(hint) is None:
                plain.append(index)
            else:
                self._schemas[index] = {}
        if not plain:
            return
        schemas, components = msgspec.json.schema_components(
            [self._hints[i][0] for i in plain], ref_template=DEFINITIONS + "{name}")
        self.definitions.update(components)
        for index, schema in zip(plain, schemas, strict=True):
            self._schemas[index] = schema

    def _pydantic(self, hint: Any, output: bool) -> dict[str, Any]:
        from pydantic import TypeAdapter  # only reached when the app uses pydantic

        schema: dict[str, Any] = TypeAdapter(hint).json_schema(
            ref_template=DEFINITIONS + "{model}",
            mode="serialization" if output else "validation")
        self.definitions.update(schema.pop("$defs", {}))
        return schema

    def get(self, index: int) -> dict[str, Any]:
        """The schema of the hint registered as ``index``."""
        return self._schemas.get(index, {})


def relocate(node: Any, prefix: str) -> Any:
    """``node`` with every ``#/definitions/`` reference moved to ``prefix`` (a copy)."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(DEFINITIONS):
                out[key] = prefix + value[len(DEFINITIONS):]
            else:
                out[key] = relocate(value, prefix)
        return out
    if isinstance(node, list):
        return [relocate(value, prefix) for value in node]
    return node

