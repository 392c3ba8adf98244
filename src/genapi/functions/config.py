"""Function and service configurations.

A :class:`FunConfig` describes one callable function: where it runs, how it is selected,
its arguments, permission, response type, retries, hooks and timeouts. It is a frozen
value; it is validated when registered (see :func:`validate_fun_config`), which raises
:class:`~genapi.ConfigError` (a ``ValueError``) listing every problem.

:class:`ServiceConfig` tells a gateway where to pull a service's configs from;
:class:`PushConfig` is what a service node pushes to gateways.
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from typing import Any, Final, Literal, TypeAlias

from ..errors import ConfigError
from ..messages import NO_VERSION
from .argspec import parse_arg_spec

__all__ = [
    "FunConfig",
    "PushConfig",
    "ResponseType",
    "ServiceConfig",
    "fun_config_problems",
    "normalize_retry",
    "push_config_problems",
    "validate_fun_config",
    "webhook_problem",
]

MIN_TIMEOUT_MS: Final = 100
MAX_TIMEOUT_MS: Final = 300_000


class ResponseType(StrEnum):
    """How a function answers: at once, later, as chunks, or not at all."""

    SYNC = "sync"
    ASYNC = "async"
    STREAM = "stream"
    NONE = "none"


#: ``"local"``, a list of node names, or a callable returning one (resolved per call).
Nodes: TypeAlias = Literal["local"] | Sequence[str] | Callable[[], Sequence[str]]
#: ``"random"``, ``"hash"``, ``"round_robin"``, ``("hash", arg)`` or ``("sticky", arg)``.
NodeMode: TypeAlias = str | tuple[str, str]
#: ``False``/``None``, ``"any_authenticated"``, ``("arg", name)`` or ``("role", roles)``.
PermissionMode: TypeAlias = bool | str | tuple[str, Any] | None
#: ``None``, a number n >= 1 (= ``("all_nodes", n)``), ``("same_node", n)``, ``("all_nodes", n)``.
Retry: TypeAlias = int | float | tuple[str, int | float] | None
#: ``None`` (the default policy), a mapping with ``base_s``, ``max_s``, ``jitter``
#: (``"none"``, ``"full"``, ``"decorrelated"``), or a :class:`genapi.durable.Backoff`.
DurableBackoff: TypeAlias = Mapping[str, Any] | Any | None
#: A callable, a ``"module:qualname"`` string, or ``(hook, extra_args)``.
Hook: TypeAlias = (
    Callable[..., Any] | str | tuple[Callable[..., Any] | str, Sequence[Any]] | None
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class FunConfig:
    """Everything genapi needs to know to call one function.

    ``function`` is a callable or a ``"module:qualname"`` string (resolved at
    registration, subject to the callable deny list); it may be ``None`` for remote
    functions, which service nodes resolve themselves. ``function_args`` are passed
    before the client's arguments. ``timeout`` is in milliseconds (100..300000) or
    ``None`` for no limit. ``arg_types`` maps argument names to specs (see
    :mod:`genapi.argspec`); when omitted, specs are inferred from the function's type
    hints. ``arg_orders`` is the positional order, ``"map"`` to pass one dict, or
    ``None`` to infer it from the signature (or ``arg_types``' order).
    """

    service: str
    request_type: str
    function: Callable[..., Any] | str | None = None
    function_args: tuple[Any, ...] = ()
    nodes: Nodes = "local"
    choose_node_mode: NodeMode = "random"
    timeout: int | None = 5000
    arg_types: Mapping[str, Any] | None = None
    arg_orders: Sequence[str] | Literal["map"] | None = None
    response_type: ResponseType | str = ResponseType.SYNC
    check_permission: PermissionMode = False
    permission_callback: Callable[..., Any] | str | None = None
    request_info: bool = False
    version: str | None = None
    disabled: bool = False
    retry: Retry = None
    before_execute: Hook = None
    after_execute: Hook = None
    hook_timeout: int = 5000
    keep_running_on_disconnect: bool = False
    description: str | None = None
    durable: bool = False
    max_attempts: int = 5
    durable_backoff: DurableBackoff = None
    webhook: str | None = None

    @property
    def is_local(self) -> bool:
        """True when the function runs in the gateway's own process."""
        return self.nodes == "local"

    @property
    def normalized_version(self) -> str | None:
        """The registry key's version: ``None`` for unversioned."""
        return self.version or None

    def replace(self, **changes: Any) -> FunConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_callable_ref(value: Any) -> bool:
    return callable(value) or (isinstance(value, str) and ":" in value and value[0] != ":")


def _valid_nodes(nodes: Any) -> bool:
    if nodes == "local" or callable(nodes):
        return True
    return (
        isinstance(nodes, list | tuple)
        and len(nodes) > 0
        and all(isinstance(n, str) and n for n in nodes)
    )


def _valid_node_mode(mode: Any) -> bool:
    if mode in ("random", "hash", "round_robin"):
        return True
    return (
        isinstance(mode, tuple | list)
        and len(mode) == 2
        and mode[0] in ("hash", "sticky")
        and isinstance(mode[1], str)
        and bool(mode[1])
    )


def _valid_permission(mode: Any) -> bool:
    if mode is False or mode is None or mode == "any_authenticated":
        return True
    if isinstance(mode, tuple | list) and len(mode) == 2:
        kind, value = mode
        if kind == "arg":
            return isinstance(value, str) and bool(value)
        if kind == "role":
            return (
                isinstance(value, list | tuple | set | frozenset)
                and len(value) > 0
                and all(isinstance(r, str) for r in value)
            )
    return False


def normalize_retry(retry: Any) -> tuple[str, int] | None:
    """``3`` → ``("all_nodes", 3)``; ``("same_node", 2.9)`` → ``("same_node", 2)``; None → None."""
    if retry is None:
        return None
    if isinstance(retry, tuple | list):
        return (str(retry[0]), int(retry[1]))
    return ("all_nodes", int(retry))


def _valid_retry(retry: Any) -> bool:
    if retry is None:
        return True
    if isinstance(retry, bool):
        return False
    if isinstance(retry, int | float):
        return retry >= 1
    return (
        isinstance(retry, tuple | list)
        and len(retry) == 2
        and retry[0] in ("same_node", "all_nodes")
        and isinstance(retry[1], int | float)
        and not isinstance(retry[1], bool)
        and retry[1] >= 1
    )


def _valid_hook(hook: Any) -> bool:
    if hook is None or _is_callable_ref(hook):
        return True
    return (
        isinstance(hook, tuple | list)
        and len(hook) == 2
        and _is_callable_ref(hook[0])
        and isinstance(hook[1], list | tuple)
    )


def _valid_version(version: Any) -> bool:
    return version is None or (isinstance(version, str) and version not in ("", NO_VERSION))


def _arg_problems(config: FunConfig) -> list[str]:
    out: list[str] = []
    types_ = config.arg_types
    orders = config.arg_orders
    if types_ is not None and not isinstance(types_, Mapping):
        return ["arg_types must be a dict of argument name to spec"]
    for name, spec in (types_ or {}).items():
        if not isinstance(name, str) or not name:
            out.append(f"arg_types key {name!r} must be a non-empty string")
            continue
        try:
            parse_arg_spec(spec)
        except ValueError as exc:
            out.append(f"arg_types[{name!r}]: {exc}")
    if orders is None or orders == "map":
        if orders == "map" and types_ is not None and not types_:
            out.append('arg_orders "map" needs arg_types')
        return out
    if isinstance(orders, str) or not isinstance(orders, Sequence):
        return [*out, 'arg_orders must be a list of argument names, "map", or None']
    declared = set(types_ or {})
    listed = list(orders)
    if len(set(listed)) != len(listed):
        out.append("arg_orders lists a name twice")
    missing = [n for n in declared if n not in listed]
    unknown = [n for n in listed if n not in declared]
    if missing or unknown:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(map(str, missing)))
        if unknown:
            parts.append("not in arg_types: " + ", ".join(map(str, unknown)))
        out.append("arg_orders must list exactly the names in arg_types (" + "; ".join(parts) + ")")
    return out


_JITTERS = ("none", "full", "decorrelated")
_MAX_URL_CHARS = 2048


def _backoff_problems(backoff: Any) -> list[str]:
    if backoff is None:
        return []
    if isinstance(backoff, Mapping):
        unknown = set(backoff) - {"base_s", "max_s", "jitter"}
        if unknown:
            return [f"durable_backoff has unknown keys: {', '.join(sorted(map(str, unknown)))}"]
        base, top, jitter = (backoff.get("base_s", 1.0), backoff.get("max_s", 300.0),
                             backoff.get("jitter", "full"))
    elif all(hasattr(backoff, name) for name in ("base_s", "max_s", "jitter")):
        base, top, jitter = backoff.base_s, backoff.max_s, backoff.jitter
    else:
        return ["durable_backoff must be None, a dict with base_s, max_s and jitter, "
                "or a genapi.durable.Backoff"]
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (base, top))
    if not (numbers and 0 < base <= top):
        return ["durable_backoff needs numbers 0 < base_s <= max_s (seconds)"]
    if str(jitter) not in _JITTERS:
        return [f"durable_backoff jitter must be one of {', '.join(_JITTERS)}"]
    return []


def webhook_problem(url: Any) -> str | None:
    """Why ``url`` cannot be a webhook (None when it can): an ``http(s)`` URL with a
    host, no user info and at most 2048 characters. Where it may point (no private
    addresses) is checked when it is called, after resolving its host."""
    if not isinstance(url, str) or len(url) > _MAX_URL_CHARS:
        return f"webhook must be an http(s) URL of at most {_MAX_URL_CHARS} characters"
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError:
        return f"webhook {url!r} is not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"webhook {url!r} must be an http:// or https:// URL with a host"
    if parts.username is not None or parts.password is not None:
        return "webhook URLs must not carry credentials (sign with the webhook secret)"
    return None


def _durable_problems(c: FunConfig) -> list[str]:
    out: list[str] = []
    if not isinstance(c.durable, bool):
        return ["durable must be a bool"]
    if not (_is_int(c.max_attempts) and 1 <= c.max_attempts <= 1000):
        out.append("max_attempts must be an integer from 1 to 1000")
    out.extend(_backoff_problems(c.durable_backoff))
    if c.webhook is not None:
        problem = webhook_problem(c.webhook)
        if problem is not None:
            out.append(problem)
    if not c.durable:
        if c.max_attempts != 5 or c.durable_backoff is not None or c.webhook is not None:
            out.append("max_attempts, durable_backoff and webhook need durable=True")
    elif str(c.response_type) not in (ResponseType.ASYNC, ResponseType.NONE):
        out.append('durable functions must have response_type "async" or "none"')
    return out


def fun_config_problems(config: FunConfig) -> list[str]:
    """Every reason ``config`` is invalid, in a fixed order; empty when valid."""
    c = config
    out: list[str] = []
    if not isinstance(c.request_type, str) or not c.request_type:
        out.append("request_type must be a non-empty string")
    if not isinstance(c.service, str) or not c.service:
        out.append("service must be a non-empty string")
    if not _valid_nodes(c.nodes):
        out.append('nodes must be "local", a non-empty list of node names, or a callable')
    if not _valid_node_mode(c.choose_node_mode):
        out.append(
            'choose_node_mode must be "random", "hash", ("hash", arg), "round_robin" '
            'or ("sticky", arg)'
        )
    if c.timeout is not None and not (
        _is_int(c.timeout) and MIN_TIMEOUT_MS <= c.timeout <= MAX_TIMEOUT_MS
    ):
        out.append(
            f"timeout must be an integer between {MIN_TIMEOUT_MS} and {MAX_TIMEOUT_MS} ms, "
            "or None for no limit"
        )
    if c.function is None:
        if c.nodes == "local":
            out.append("function is required for local functions")
    elif not _is_callable_ref(c.function):
        out.append('function must be a callable or a "module:qualname" string')
    if not isinstance(c.function_args, tuple | list):
        out.append("function_args must be a tuple")
    out.extend(_arg_problems(c))
    if c.response_type not in ResponseType._value2member_map_:
        out.append('response_type must be "sync", "async", "stream" or "none"')
    if not _valid_permission(c.check_permission):
        out.append(
            'check_permission must be False, "any_authenticated", ("arg", name) '
            "or (\"role\", [roles])"
        )
    if c.permission_callback is not None and not _is_callable_ref(c.permission_callback):
        out.append('permission_callback must be None, a callable or a "module:qualname" string')
    for name in ("request_info", "disabled", "keep_running_on_disconnect"):
        if not isinstance(getattr(c, name), bool):
            out.append(f"{name} must be a bool")
    if not _valid_version(c.version):
        out.append('version must be None or a non-empty version string other than "0.0.0"')
    if not _valid_retry(c.retry):
        out.append('retry must be None, a number >= 1, ("same_node", n) or ("all_nodes", n)')
    for name in ("before_execute", "after_execute"):
        if not _valid_hook(getattr(c, name)):
            out.append(
                f'{name} must be None, a callable, a "module:qualname" string '
                "or (hook, extra_args)"
            )
    if not (_is_int(c.hook_timeout) and c.hook_timeout > 0):
        out.append("hook_timeout must be a positive integer (ms)")
    out.extend(_durable_problems(c))
    return out


def validate_fun_config(config: FunConfig) -> None:
    """Raise :class:`~genapi.ConfigError` if ``config`` is invalid."""
    if not isinstance(config, FunConfig):
        raise ConfigError("FunConfig", [f"expected a FunConfig, got {type(config).__name__}"])
    problems = fun_config_problems(config)
    if problems:
        raise ConfigError(f"FunConfig {config.service}.{config.request_type}", problems)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ServiceConfig:
    """Where a gateway pulls a service's function configs from: ``nodes`` (node names, or
    a callable returning them, asked at every pull, in order, until one answers).

    A node answers a pull with the configs it serves and their ``config_version`` (a digest
    of them), so there is no function to name: the gateway asks for the version first and
    pulls the full configs only when it changed.
    """

    service: str
    nodes: Sequence[str] | Callable[[], Sequence[str]] = ()


@dataclasses.dataclass(frozen=True, kw_only=True)
class PushConfig:
    """All of a service's functions at one version, pushed to a gateway.

    ``config_version`` makes pushes idempotent; ``push_token`` authenticates the pusher.
    ``pull``: the gateway also pulls the service from ``nodes`` every ``pull_interval``
    afterwards (a refresh when a push was missed). Push one in-process with
    ``ConfigSync.push_config`` (``gateway.cluster.sync``); a gateway records what was
    pushed as a PushConfig (``get_pushed_config(service)``).
    """

    service: str
    nodes: tuple[str, ...]
    config_version: str
    fun_configs: tuple[FunConfig, ...]
    push_token: str | None = dataclasses.field(default=None, repr=False)
    pull: bool = False

    def to_service_config(self) -> ServiceConfig:
        """The pull source this push describes: its service, from its nodes."""
        return ServiceConfig(service=self.service, nodes=self.nodes)


def push_config_problems(push: PushConfig) -> list[str]:
    """Every reason ``push`` is invalid; empty when valid."""
    out: list[str] = []
    if not isinstance(push.service, str) or not push.service:
        out.append("service must be a non-empty string")
    if not (
        isinstance(push.nodes, list | tuple)
        and push.nodes
        and all(isinstance(n, str) and n for n in push.nodes)
    ):
        out.append("nodes must be a non-empty list of node names")
    if not isinstance(push.config_version, str) or not push.config_version:
        out.append("config_version must be a non-empty string")
    if not (
        isinstance(push.fun_configs, list | tuple)
        and push.fun_configs
        and all(isinstance(f, FunConfig) for f in push.fun_configs)
    ):
        out.append("fun_configs must be a non-empty list of FunConfig")
    elif any(f.service != push.service for f in push.fun_configs):
        out.append("all fun_configs must have the same service name as the push config")
    return out
