"""The package's shape: no import circles, nothing imports the package root, one exception
tree, and ``import genapi`` loads no optional backend. (The layer contracts themselves are
checked by import-linter, which the test command runs: see ``pyproject.toml``.)"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import pkgutil
import subprocess
import sys

import grimp

import genapi
from genapi import errors


def _strongly_connected(graph: grimp.ImportGraph) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_import_circles_between_modules() -> None:
    """No module reaches itself through imports (TYPE_CHECKING and function-level ones
    included, as grimp counts them)."""
    assert _strongly_connected(grimp.build_graph("genapi")) == []


def test_nothing_imports_the_package_root() -> None:
    """The root re-exports everything; a module importing it would import the world."""
    graph = grimp.build_graph("genapi")
    importers = {m for m in graph.modules if "genapi" in graph.find_modules_directly_imported_by(m)}
    assert importers == set()


def test_no_module_at_the_top_level_but_the_known_ones() -> None:
    """Top-level modules are the shared base (errors, messages, security, _version) and
    ``__main__``; everything else (the client and the testing helpers included) lives in a
    folder named for its concern."""
    top = {m.name for m in pkgutil.iter_modules(genapi.__path__) if not m.ispkg}
    assert top == {"_version", "errors", "messages", "security", "__main__"}


def _all_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(genapi.__path__, "genapi."):
        if info.name.endswith("__main__"):
            continue
        names.append(info.name)
    return names


def test_every_exception_is_defined_in_errors_and_derives_from_genapierror() -> None:
    """One tree: every exception class in the package is errors.py's, under GenApiError."""
    strays = []
    for name in _all_modules():
        module = importlib.import_module(name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            ours = issubclass(value, BaseException) and value.__module__.startswith("genapi")
            if ours and (value.__module__ != "genapi.errors"
                         or not issubclass(value, errors.GenApiError)):
                strays.append(f"{value.__module__}.{value.__qualname__}")
    assert strays == []


def test_the_error_tree_in_the_docstring_lists_every_class() -> None:
    """errors.py draws its tree; the drawing names every exception it defines."""
    doc = errors.__doc__ or ""
    defined = [name for name, value in vars(errors).items()
               if inspect.isclass(value) and issubclass(value, BaseException)
               and value.__module__ == "genapi.errors"]
    assert [name for name in defined if f" {name}" not in doc] == []


def test_import_genapi_loads_no_optional_backend() -> None:
    """NATS, Redis, OpenTelemetry, Prometheus, the database drivers and pydantic (an
    optional extra: genapi only uses it when the application did) load on first use."""
    code = ("import sys, genapi; "
            "print(sorted({m.split('.')[0] for m in sys.modules}))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env).stdout
    loaded = set(ast.literal_eval(out))
    assert loaded.isdisjoint({"nats", "redis", "opentelemetry", "prometheus_client",
                              "asyncpg", "psycopg", "psycopg_pool", "pydantic"})


def test_genapi_node_still_imports_on_demand() -> None:
    """The lazily imported names are there when asked for."""
    from genapi.cluster.node import Node

    assert genapi.Node is Node
