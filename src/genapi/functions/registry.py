"""The registry of functions, keyed by ``(service, request_type, version)``.

Version rules:

* ``version=None`` (or ``""``) registers the *unversioned* config; ``"0.0.0"`` is reserved
  to mean "no version" and cannot be registered explicitly.
* A request that names a version gets exactly that version (``Unknown function …
  version …`` when absent, ``disabled function: …`` when disabled).
* A request without a version gets the unversioned config when one exists and is enabled,
  otherwise the highest enabled semantic version (``"10.0.0"`` beats ``"9.0.0"``;
  unparseable versions rank lowest).

Lookups are dictionary hits: the default route of each ``(service, request_type)`` is
recomputed whenever that pair changes, never per request. A failed lookup says what to do:
``Unknown service: x (known: a, b)``, ``Unknown function y in service x (did you mean
z?)`` — the version is named only when the request gave one.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, FunctionDisabled, FunctionNotFound
from ..telemetry.events import Telemetry, default_telemetry
from .argspec import Limits
from .config import FunConfig
from .routes import Route, RouteKey, compile_route

if TYPE_CHECKING:
    from .service import Service

__all__ = ["Registry", "semver_key"]

#: How many names an "Unknown …" message lists at most.
_MAX_NAMES = 20

_SEMVER = re.compile(
    r"\Av?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?\Z"
)


def semver_key(version: str) -> tuple[Any, ...]:
    """A sort key ordering versions by semantic versioning (pre-releases first)."""
    m = _SEMVER.match(version)
    if m is None:
        return (0, 0, 0, 0, ())
    pre = m.group(4)
    pre_key = tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part) for part in (pre or "").split(".")
    ) if pre else ()
    return (int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0), 0 if pre else 1, pre_key)


class Registry:
    """Registered functions and their compiled routes.

    ``limits`` are the global argument caps compiled into validators; ``allowlist``
    restricts which modules' callables may be registered by name.
    ``dependency_overrides`` maps a dependency (see :class:`~genapi.Depends`) to the
    callable used instead, for every function of this registry — read at each call, so
    tests may set and clear entries at any time.
    """

    def __init__(
        self,
        *,
        limits: Limits | None = None,
        allowlist: Iterable[str] | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.limits = limits or Limits()
        self.allowlist = tuple(allowlist) if allowlist is not None else None
        self.telemetry = telemetry if telemetry is not None else default_telemetry
        self.dependency_overrides: dict[Callable[..., Any], Callable[..., Any]] = {}
        self._routes: dict[RouteKey, Route] = {}
        self._defaults: dict[tuple[str, str], Route] = {}
        self._versions: dict[tuple[str, str], dict[str | None, Route]] = {}

    # -- registration -------------------------------------------------------------------

    def compile(self, config: FunConfig) -> Route:
        """Validate and compile ``config`` without registering it."""
        if not isinstance(config, FunConfig):
            raise ConfigError("FunConfig", [f"expected a FunConfig, got {type(config).__name__}"])
        return compile_route(config, self.limits, self.allowlist, self.dependency_overrides)

    def add(self, config: FunConfig) -> Route:
        """Register ``config`` (replacing the same key); raise ConfigError if invalid."""
        route = self.compile(config)
        self._insert(route)
        self._emit("config.add", route.key)
        return route

    def add_many(self, configs: Iterable[FunConfig]) -> list[Route]:
        """Register several configs atomically: all of them, or none if any is invalid."""
        routes = [self.compile(c) for c in configs]
        for route in routes:
            self._insert(route)
        if routes:
            self.telemetry.emit(
                "config.batch_add", {"count": len(routes)}, {"service": routes[0].key[0]}
            )
        return routes

    def add_service(self, service: Service) -> list[Route]:
        """Register every function of a :class:`~genapi.Service` atomically."""
        return self.add_many(service.fun_configs)

    def replace_service(self, service: str, configs: Iterable[FunConfig]) -> list[Route]:
        """Make ``configs`` the complete set of ``service``'s functions (atomically)."""
        return self.replace_routes(service, [self.compile(c) for c in configs])

    def replace_routes(self, service: str, routes: list[Route]) -> list[Route]:
        """Like :meth:`replace_service` with routes already compiled by :meth:`compile`."""
        keep = {r.key for r in routes}
        for key in [k for k in self._routes if k[0] == service and k not in keep]:
            self._remove(key)
            self._emit("config.delete", key)
        for route in routes:
            self._insert(route)
        return routes

    def _insert(self, route: Route) -> None:
        self._routes[route.key] = route
        pair = (route.key[0], route.key[1])
        self._versions.setdefault(pair, {})[route.key[2]] = route
        self._refresh(pair)

    def _remove(self, key: RouteKey) -> bool:
        route = self._routes.pop(key, None)
        if route is None:
            return False
        pair = (key[0], key[1])
        versions = self._versions.get(pair, {})
        versions.pop(key[2], None)
        if not versions:
            self._versions.pop(pair, None)
        self._refresh(pair)
        return True

    def _refresh(self, pair: tuple[str, str]) -> None:
        versions = self._versions.get(pair)
        default = None
        if versions:
            unversioned = versions.get(None)
            if unversioned is not None and not unversioned.disabled:
                default = unversioned
            else:
                enabled = [r for v, r in versions.items() if v is not None and not r.disabled]
                if enabled:
                    default = max(enabled, key=lambda r: semver_key(r.key[2] or ""))
        if default is None:
            self._defaults.pop(pair, None)
        else:
            self._defaults[pair] = default

    def _emit(self, event: str, key: RouteKey) -> None:
        self.telemetry.emit(
            event, {}, {"service": key[0], "request_type": key[1], "version": key[2]}
        )

    # -- lifecycle ------------------------------------------------------------------------

    def _set_disabled(self, service: str, request_type: str, version: str | None,
                      disabled: bool) -> bool:
        route = self._routes.get((service, request_type, version or None))
        if route is None:
            return False
        route.disabled = disabled
        route.config = route.config.replace(disabled=disabled)
        self._refresh((service, request_type))
        self._emit("config.disable" if disabled else "config.enable", route.key)
        return True

    def disable(self, service: str, request_type: str, version: str | None = None) -> bool:
        """Soft-delete a version (calls answer ``disabled function``); False if unknown."""
        return self._set_disabled(service, request_type, version, True)

    def enable(self, service: str, request_type: str, version: str | None = None) -> bool:
        """Re-enable a disabled version; False if unknown."""
        return self._set_disabled(service, request_type, version, False)

    def delete(self, service: str, request_type: str, version: str | None = None) -> bool:
        """Remove a version; in-flight calls finish. Returns whether it existed."""
        key = (service, request_type, version or None)
        found = self._remove(key)
        if found:
            self._emit("config.delete", key)
        return found

    def delete_service(self, service: str) -> int:
        """Remove every function of ``service``; returns how many were removed."""
        keys = [k for k in self._routes if k[0] == service]
        for key in keys:
            self._remove(key)
            self._emit("config.delete", key)
        return len(keys)

    def clear(self) -> None:
        """Remove every function."""
        self._routes.clear()
        self._defaults.clear()
        self._versions.clear()
        self.telemetry.emit("config.clear", {}, {})

    # -- lookup ---------------------------------------------------------------------------

    def resolve(self, service: str, request_type: str, version: str | None = None) -> Route:
        """The route a request should use; raises FunctionNotFound or FunctionDisabled."""
        if version is None:
            route = self._defaults.get((service, request_type))
            if route is not None:
                return route
            if (service, request_type) in self._versions:
                raise FunctionDisabled(f"disabled function: {request_type} version latest")
            raise self._not_found(service, request_type, None)
        route = self._routes.get((service, request_type, version))
        if route is None:
            raise self._not_found(service, request_type, version)
        if route.disabled:
            raise FunctionDisabled(f"disabled function: {request_type} version {version}")
        return route

    def _not_found(self, service: str, request_type: str, version: str | None
                   ) -> FunctionNotFound:
        """The error naming what exists instead (computed only when a lookup fails)."""
        services = sorted({s for s, _ in self._versions})
        if service not in services:
            known = _names(services) if services else "none registered"
            return FunctionNotFound(f"Unknown service: {service} (known: {known})")
        what = (f"Unknown function {request_type} in service {service}" if version is None
                else f"Unknown function {request_type} version {version} in service {service}")
        versions = self._versions.get((service, request_type))
        if versions is not None:  # the function exists, not in that version
            numbered = sorted((v for v in versions if v is not None), key=semver_key)
            known = _names(numbered) if numbered else "none, it is unversioned"
            return FunctionNotFound(f"{what} (known versions: {known})")
        functions = sorted({rt for s, rt in self._versions if s == service})
        close = difflib.get_close_matches(request_type, functions, n=3, cutoff=0.75)
        if close:
            options = close[0] if len(close) == 1 else (
                ", ".join(close[:-1]) + " or " + close[-1])
            hint = f"did you mean {options}?"
        else:
            hint = f"known: {_names(functions)}"
        return FunctionNotFound(f"{what} ({hint})")

    def get(self, service: str, request_type: str, version: str | None = None) -> FunConfig | None:
        """The config stored under exactly that key (disabled ones included), or None."""
        route = self._routes.get((service, request_type, version or None))
        return route.config if route is not None else None

    def find(self, service: str, request_type: str, version: str | None = None) -> Route:
        """The route under exactly that key, disabled or not (``None``/``""``: the
        unversioned one); FunctionNotFound naming what exists otherwise. What the admin
        actions act on: they name one version, never "the latest"."""
        route = self._routes.get((service, request_type, version or None))
        if route is None:
            raise self._not_found(service, request_type, version or None)
        return route

    def get_route(
        self, service: str, request_type: str, version: str | None = None
    ) -> Route | None:
        """The compiled route under exactly that key, or None."""
        return self._routes.get((service, request_type, version or None))

    def get_latest(self, service: str, request_type: str) -> FunConfig | None:
        """The highest enabled *versioned* config (unversioned ones ignored), or None."""
        versions = self._versions.get((service, request_type), {})
        enabled = [r for v, r in versions.items() if v is not None and not r.disabled]
        if not enabled:
            return None
        return max(enabled, key=lambda r: semver_key(r.key[2] or "")).config

    def get_all_functions(self) -> dict[str, dict[str, list[str | None]]]:
        """``{service: {request_type: [versions…]}}``, disabled and unversioned included."""
        out: dict[str, dict[str, list[str | None]]] = {}
        for service, request_type, version in self._routes:
            out.setdefault(service, {}).setdefault(request_type, []).append(version)
        return out

    def services(self) -> list[str]:
        """The registered service names."""
        return sorted({k[0] for k in self._routes})

    def routes(self) -> list[Route]:
        """Every registered route."""
        return list(self._routes.values())

    def __len__(self) -> int:
        return len(self._routes)

    def __contains__(self, key: object) -> bool:
        return key in self._routes


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_NAMES])
    return shown + ", …" if len(names) > _MAX_NAMES else shown
