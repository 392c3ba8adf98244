"""The function catalog: every registered function and its arguments, as plain data.

The catalog is what the other exports are generated from, so they work the same from an
app object (:func:`function_catalog`) and from a running gateway (``GET /admin/schema``
serves the catalog). Argument limits are the *effective* ones: where a spec sets no size,
the registry's global :class:`~genapi.Limits` apply, and the catalog says so.

Types come from the code: a typed argument carries the JSON Schema of its Python type
(``schema``); each function the schemas of its declared ``result`` and, for streams, of its
``chunk`` (None where undeclared); its ``description`` is the config's or else the
function's docstring. Named types (Structs, dataclasses, TypedDicts, enums, pydantic
models) are defined once under the catalog's ``definitions`` and referred to as
``#/definitions/<name>``. (A function served by a node is known to a gateway by its pushed
specs: no result types, and typed arguments by their family.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, Protocol

from .._version import __version__
from ..errors import FunctionDisabled, FunctionNotFound
from ..functions.argspec import LIST_TYPES, MISSING, Arg, ArgType, Limits
from ..functions.registry import Registry, semver_key
from ..functions.routes import Route
from ..messages import CANCEL_EVENT
from .plain import plain
from .types import TypeSchemas

__all__ = ["CATALOG_FORMAT", "ApiSurface", "describe_arg", "function_catalog", "function_key"]

#: Bumped when the catalog's shape changes incompatibly (the CLI checks it).
CATALOG_FORMAT: Final = 1


class ApiSurface(Protocol):
    """What clients see of a served API: its functions and where they call them
    (a :class:`~genapi.Gateway` is one)."""

    @property
    def registry(self) -> Registry:
        """The functions served."""

    @property
    def socket_path(self) -> str:
        """The Phoenix socket's path (phoenix.js appends ``/websocket``)."""

    @property
    def event(self) -> str:
        """The event calls are pushed as."""

    @property
    def topics(self) -> Sequence[str]:
        """The topic patterns clients may join."""


def describe_arg(name: str, arg: Arg, limits: Limits | None = None) -> dict[str, Any]:
    """One argument as plain data, with the limits the validator really applies.

    ``required`` is True when the argument has neither a default nor ``allow_nil``
    (a missing ``allow_nil`` argument is passed as null).
    """
    limits = limits or Limits()
    t = arg.type
    out: dict[str, Any] = {
        "name": name, "type": t.value,
        "required": not arg.has_default and not arg.allow_nil,
        "allow_nil": arg.allow_nil,
    }
    if t is ArgType.STRING:
        out["max_bytes"] = arg.max_bytes if arg.max_bytes is not None else limits.string_max_bytes
    if t in LIST_TYPES:
        out["max_items"] = arg.max_items if arg.max_items is not None else limits.list_max_items
    if t is ArgType.MAP:
        out["max_items"] = arg.max_items if arg.max_items is not None else limits.map_max_items
    if t in (ArgType.LIST, ArgType.LIST_STRING):
        out["max_item_bytes"] = (arg.max_item_bytes if arg.max_item_bytes is not None
                                 else limits.string_max_bytes)
    if arg.required:
        out["required_keys"] = list(arg.required)
    if arg.accept:
        out["accept"] = list(arg.accept)
    if arg.default_value is not MISSING:
        out["default"] = plain(arg.default_value)
    return out


def function_key(function: dict[str, Any]) -> str:
    """``service.request_type``, with ``@version`` for a versioned config."""
    key = f"{function['service']}.{function['request_type']}"
    return key if function.get("version") is None else f"{key}@{function['version']}"


def _route_order(route: Route) -> tuple[Any, ...]:
    return (route.service, route.request_type, route.version is not None,
            semver_key(route.version or ""))


Pending = list[tuple[dict[str, Any], str, int]]


def _describe_route(route: Route, registry: Registry, types: TypeSchemas,
                    pending: Pending) -> dict[str, Any]:
    try:
        default = registry.resolve(route.service, route.request_type) is route
    except (FunctionNotFound, FunctionDisabled):
        default = False
    specs = route.validator.specs
    arguments = []
    for name in route.validator.names:
        described = describe_arg(name, specs[name], registry.limits)
        if specs[name].hint is not None:
            pending.append((described, "schema", types.add(specs[name].hint)))
        arguments.append(described)
    entry: dict[str, Any] = {
        "service": route.service, "request_type": route.request_type,
        "version": route.version, "default": default, "disabled": route.disabled,
        "response_type": route.response_type.value,
        "description": route.config.description or route.doc,
        "arguments": arguments, "result": None, "chunk": None,
    }
    for key, hint in (("result", route.result_type), ("chunk", route.chunk_type)):
        if hint is not None:
            pending.append((entry, key, types.add(hint, output=True)))
    return entry


def function_catalog(source: ApiSurface | Registry, *,
                     include_disabled: bool = False) -> dict[str, Any]:
    """The catalog of ``source`` (a :class:`~genapi.Gateway` or a :class:`~genapi.Registry`).

    ``{"format", "genapi_version", "socket_path", "event", "cancel_event", "topics",
    "max_payload_bytes", "functions": [...], "definitions": {...}}``; each function has
    ``service``, ``request_type``, ``version``, ``default`` (what a request without
    version gets), ``disabled``, ``response_type``, ``description``, ``arguments``
    (:func:`describe_arg`, in call order, typed ones with their ``schema``), ``result``
    and ``chunk`` (JSON Schema, or None). Disabled functions are left out unless asked.
    """
    if isinstance(source, Registry):
        registry, socket_path, event, topics = source, "/socket", "api", ["api:*"]
    else:
        registry, socket_path, event = source.registry, source.socket_path, source.event
        topics = list(source.topics)
    types = TypeSchemas()
    pending: Pending = []
    functions = [_describe_route(route, registry, types, pending)
                 for route in sorted(registry.routes(), key=_route_order)
                 if include_disabled or not route.disabled]
    types.build()
    for target, key, index in pending:
        target[key] = types.get(index)
    return {
        "format": CATALOG_FORMAT, "genapi_version": __version__,
        "socket_path": socket_path, "event": event, "cancel_event": CANCEL_EVENT,
        "topics": topics, "max_payload_bytes": registry.limits.max_payload_bytes,
        "functions": functions, "definitions": plain(types.definitions),
    }
