"""Loading the application object a command names (``module:attribute``)."""

from __future__ import annotations

import importlib
import inspect
import sys
from typing import Any

import typer

__all__ = ["load_app"]


def load_app(target: str) -> Any:
    """Import ``module:attribute`` (calling it if it is a function callable without
    arguments: a factory)."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise typer.BadParameter(f"expected module:attribute, got {target!r}")
    if "" not in sys.path:
        sys.path.insert(0, "")
    module = importlib.import_module(module_name)
    value: Any = module
    for part in attribute.split("."):
        value = getattr(value, part)
    if inspect.isfunction(value) and all(
        p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        for p in inspect.signature(value).parameters.values()
    ):
        value = value()  # a factory callable without arguments
    return value
