"""Function configs as plain data, for pushing and pulling between nodes and gateways.

A node exports the configs of its compiled routes: argument specs inferred from type hints
become explicit ``arg_types``; callables become ``"module:qualname"`` strings. A gateway
imports them as *remote* configs: no function (the node runs it), nodes given by the
gateway's node directory. Hooks and permission callbacks run on the gateway, so a pushed
config may name them only if they are importable there (and allowed by its allow list).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import ConfigError
from ..functions.argspec import MISSING, Arg
from ..functions.config import FunConfig
from ..functions.routes import Route

__all__ = ["export_route", "import_config"]


def _ref(fn: Any) -> str | None:
    if fn is None:
        return None
    if isinstance(fn, str):
        return fn
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        raise ConfigError(f"{fn!r} has no importable name: use a module-level function")
    return f"{module}:{qualname}"


def _hook(spec: Any) -> Any:
    if spec is None:
        return None
    if isinstance(spec, tuple | list):
        return [_ref(spec[0]), list(spec[1])]
    return _ref(spec)


def _arg(arg: Arg) -> dict[str, Any]:
    out: dict[str, Any] = {"type": arg.type.value}
    for name in ("max_bytes", "max_items", "max_item_bytes"):
        value = getattr(arg, name)
        if value is not None:
            out[name] = value
    if arg.allow_nil:
        out["allow_nil"] = True
    if arg.default_value is not MISSING:
        out["default_value"] = arg.default_value
    if arg.required:
        out["required"] = list(arg.required)
    if arg.accept:
        out["accept"] = list(arg.accept)
    return out


def _pair(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def export_route(route: Route) -> dict[str, Any]:
    """A compiled (local) route as plain data, with explicit argument specs."""
    config = route.config
    validator = route.validator
    return {
        "service": config.service,
        "request_type": config.request_type,
        "function": _ref(config.function),
        "choose_node_mode": _pair(config.choose_node_mode),
        "timeout": config.timeout,
        "arg_types": {name: _arg(validator.specs[name]) for name in validator.names},
        "arg_orders": "map" if validator.mode == "map" else list(validator.names),
        "response_type": str(config.response_type),
        "check_permission": (list(config.check_permission)
                             if isinstance(config.check_permission, tuple | list)
                             else config.check_permission),
        "permission_callback": _ref(config.permission_callback),
        "version": config.version,
        "disabled": config.disabled,
        "retry": _pair(config.retry),
        "before_execute": _hook(config.before_execute),
        "after_execute": _hook(config.after_execute),
        "hook_timeout": config.hook_timeout,
        "keep_running_on_disconnect": config.keep_running_on_disconnect,
        "description": config.description,
        **_durable(config),
    }


def _durable(config: FunConfig) -> dict[str, Any]:
    """A durable function's settings (nothing for others, so that gateways without
    durable calls keep accepting their pushes)."""
    if not config.durable:
        return {}
    backoff = config.durable_backoff
    if backoff is not None and not isinstance(backoff, Mapping):
        backoff = {"base_s": backoff.base_s, "max_s": backoff.max_s,
                   "jitter": str(backoff.jitter)}
    return {"durable": True, "max_attempts": config.max_attempts,
            "durable_backoff": None if backoff is None else dict(backoff),
            "webhook": config.webhook}


_TUPLES = ("choose_node_mode", "retry", "check_permission", "before_execute", "after_execute")


def import_config(
    data: Mapping[str, Any], *, service: str, nodes: Callable[[], Sequence[str]]
) -> FunConfig:
    """A remote FunConfig from plain data; raises ``TypeError``/``ValueError`` on bad data.

    ``service`` overrides the data's (a node cannot push into another service);
    ``nodes`` supplies the live node list.
    """
    fields = dict(data)
    fields.pop("function", None)  # the node runs it; never resolved on the gateway
    fields.pop("nodes", None)
    fields["service"] = service
    for name in _TUPLES:  # JSON turned their tuples into lists
        value = fields.get(name)
        if isinstance(value, list):
            fields[name] = tuple(value)
    allowed = set(FunConfig.__dataclass_fields__) - {"function", "nodes", "function_args"}
    unknown = set(fields) - allowed
    if unknown:
        raise ConfigError("unknown config fields: " + ", ".join(sorted(unknown)))
    return FunConfig(nodes=nodes, **fields)
