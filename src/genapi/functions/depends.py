"""Per-call dependencies: resources a function receives for one call, then cleaned up.

Mark a parameter with :class:`Depends` — as its default, or inside ``Annotated`` — and
genapi calls the dependency for each call and passes what it returns (or yields)::

    async def database() -> AsyncIterator[Session]:
        session = Session()
        try:
            yield session                 # the function runs here
        finally:
            await session.close()         # after the call, whatever happened

    @users.function()
    async def get_user(user_id: str, db: Session = Depends(database)) -> User: ...

A dependency may be an ``async def`` or a plain function (run in a worker thread), or a
generator of either kind, whose code after ``yield`` runs once the call has ended (an
exception of the call is raised inside it at the ``yield``, as with
``contextlib.contextmanager``). Its own parameters may be other dependencies, a
:class:`~genapi.RequestInfo` or a :class:`~genapi.CallContext` — never client arguments. In
one call each dependency runs once, however many parameters ask for it
(``use_cache=False`` for a fresh value each time).

Tests replace a dependency for a whole registry::

    registry.dependency_overrides[database] = fake_database

This module describes dependencies (pure analysis); :mod:`genapi.execution.dependencies`
runs them.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable
from enum import Enum
from typing import Any, Final

from ..errors import ConfigError

__all__ = [
    "Dependency",
    "DependencyKind",
    "Depends",
    "dependency_problems",
    "depends_marker",
    "describe",
]


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class Depends:
    """Marks a parameter whose value ``dependency`` provides for each call."""

    dependency: Callable[..., Any]
    use_cache: bool = True

    def __post_init__(self) -> None:
        if not callable(self.dependency):
            raise ConfigError(f"Depends needs a callable, got {self.dependency!r}")

    def __repr__(self) -> str:
        name = getattr(self.dependency, "__qualname__", repr(self.dependency))
        return f"Depends({name})"


class DependencyKind(Enum):
    """How a dependency is called and cleaned up."""

    FUNCTION = "function"  # plain: runs in a worker thread
    COROUTINE = "coroutine"  # async def: awaited
    GENERATOR = "generator"  # plain generator: setup and cleanup in a worker thread
    ASYNC_GENERATOR = "async_generator"  # async generator: cleanup awaited after the call


@dataclasses.dataclass(frozen=True, slots=True)
class Dependency:
    """One dependency callable, analysed once: its kind and what its parameters need.

    ``inject`` maps parameter names to ``"request_info"`` or ``"call"``; ``needs`` maps
    them to sub-dependencies.
    """

    function: Callable[..., Any]
    kind: DependencyKind
    inject: dict[str, str]
    needs: dict[str, Depends]


def _kind(fn: Callable[..., Any]) -> DependencyKind:
    target = fn if inspect.isroutine(fn) else getattr(fn, "__call__", fn)  # noqa: B004
    if inspect.isasyncgenfunction(target):
        return DependencyKind.ASYNC_GENERATOR
    if inspect.isgeneratorfunction(target):
        return DependencyKind.GENERATOR
    if inspect.iscoroutinefunction(target):
        return DependencyKind.COROUTINE
    return DependencyKind.FUNCTION


def depends_marker(param: inspect.Parameter, hint: Any) -> Depends | None:
    """The :class:`Depends` of a parameter: its default, or a marker in ``Annotated``."""
    if isinstance(param.default, Depends):
        return param.default
    if typing.get_origin(hint) is typing.Annotated:
        for item in typing.get_args(hint)[1:]:
            if isinstance(item, Depends):
                return item
    return None


def _analyse(fn: Callable[..., Any]) -> Dependency | str:
    name = getattr(fn, "__qualname__", repr(fn))
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return Dependency(fn, _kind(fn), {}, {})
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:
        hints = {}
    inject: dict[str, str] = {}
    needs: dict[str, Depends] = {}
    for param in signature.parameters.values():
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        hint = hints.get(param.name)
        target = typing.get_origin(hint) or hint
        injected = getattr(target, "__genapi_inject__", None)
        marker = depends_marker(param, hint)
        if marker is not None:
            needs[param.name] = marker
        elif injected in ("request_info", "call"):
            inject[param.name] = injected
        elif param.default is inspect.Parameter.empty:
            return (f"dependency {name}: parameter {param.name!r} is not a dependency, a "
                    "RequestInfo or a CallContext (dependencies never take client arguments)")
        if param.kind is inspect.Parameter.POSITIONAL_ONLY and param.name in {**inject, **needs}:
            return f"dependency {name}: parameter {param.name!r} must accept a keyword"
    return Dependency(fn, _kind(fn), inject, needs)


_DESCRIBED: dict[Any, Dependency | str] = {}
_MAX_DESCRIBED: Final = 10_000


def describe(fn: Callable[..., Any]) -> Dependency:
    """The analysis of ``fn`` (cached); raises :class:`~genapi.ConfigError` if unusable."""
    try:
        found = _DESCRIBED.get(fn)
    except TypeError:  # unhashable callable object: analysed every time
        found = None
    if found is None:
        found = _analyse(fn)
        try:
            if len(_DESCRIBED) < _MAX_DESCRIBED:
                _DESCRIBED[fn] = found
        except TypeError:
            pass
    if isinstance(found, str):
        raise ConfigError(found)
    return found


def dependency_problems(markers: dict[str, Depends]) -> tuple[list[str], bool]:
    """Problems with a function's dependencies (unusable parameters, cycles), and whether
    any of them (at any depth) takes a CallContext."""
    problems: list[str] = []
    wants_call = False

    def visit(marker: Depends, path: tuple[Any, ...]) -> None:
        nonlocal wants_call
        fn = marker.dependency
        if fn in path:
            names = " → ".join(getattr(f, "__qualname__", repr(f)) for f in (*path, fn))
            problems.append(f"dependency cycle: {names}")
            return
        try:
            dependency = describe(fn)
        except ConfigError as exc:
            problems.append(str(exc))
            return
        if "call" in dependency.inject.values():
            wants_call = True
        for sub in dependency.needs.values():
            visit(sub, (*path, fn))

    for marker in markers.values():
        visit(marker, ())
    return problems, wants_call
