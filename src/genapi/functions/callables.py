"""Resolving configured callables safely.

Configs may name functions as ``"package.module:qualname"`` strings (pushed configs can
only do so). Such names are resolved here, against a hard deny list of modules whose
functions must never be reachable from a config (process control, imports, files,
serialisation, raw sockets …) and an optional allow list. Directly passed callables are
checked against the deny list too, so ``FunConfig(function=os.system)`` is refused.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Iterable
from typing import Any, Final

from ..errors import CallableDenied, ConfigError

__all__ = ["DENIED_MODULES", "CallableDenied", "check_callable", "resolve_callable"]

#: Modules (and their submodules) whose callables can never be registered.
DENIED_MODULES: Final = frozenset(
    {
        "os", "posix", "nt", "posixpath", "ntpath", "sys", "builtins", "importlib", "imp",
        "subprocess", "_posixsubprocess", "shutil", "socket", "_socket", "ssl", "ctypes",
        "_ctypes", "cffi", "pickle", "_pickle", "cPickle", "dill", "cloudpickle", "shelve",
        "marshal", "code", "codeop", "pty", "tty", "termios", "fcntl", "signal", "runpy",
        "multiprocessing", "concurrent", "threading", "_thread", "asyncio", "selectors",
        "select", "mmap", "resource", "gc", "inspect", "types", "operator", "functools",
        "io", "_io", "pathlib", "tempfile", "glob", "fileinput", "webbrowser", "pdb",
        "bdb", "trace", "sysconfig", "site", "zipimport", "pkgutil", "platform", "pwd",
        "grp", "spwd", "crypt", "urllib", "http", "ftplib", "smtplib", "telnetlib",
        "xmlrpc", "socketserver", "nats", "redis",
    }
)


def _module_denied(module: str) -> bool:
    parts = module.split(".")
    return any(".".join(parts[: i + 1]) in DENIED_MODULES for i in range(len(parts)))


def _allowed(module: str, qualname: str, allowlist: Iterable[str] | None) -> bool:
    if allowlist is None:
        return True
    target = f"{module}:{qualname}"
    for entry in allowlist:
        if ":" in entry:
            if entry == target:
                return True
        elif module == entry or module.startswith(entry + "."):
            return True
    return False


def _origin(fn: Any) -> tuple[str, str]:
    while isinstance(fn, functools.partial):
        fn = fn.func
    fn = getattr(fn, "__func__", fn)  # bound methods
    module = getattr(fn, "__module__", None) or type(fn).__module__
    qualname = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return str(module), str(qualname)


def check_callable(fn: Any, allowlist: Iterable[str] | None = None) -> None:
    """Raise :class:`CallableDenied` if ``fn`` comes from a denied module or is not allowed."""
    module, qualname = _origin(fn)
    name = f"{module}:{qualname}"
    if _module_denied(module):
        raise CallableDenied(name, f"module {module!r} is on the deny list")
    if not _allowed(module, qualname, allowlist):
        raise CallableDenied(name, "not on the allow list")


def resolve_callable(
    ref: Callable[..., Any] | str, allowlist: Iterable[str] | None = None
) -> Callable[..., Any]:
    """Return the callable ``ref`` names, after the deny and allow checks.

    ``ref`` is a callable or a ``"module:qualname"`` string.
    """
    if not isinstance(ref, str):
        check_callable(ref, allowlist)
        return ref
    module, sep, qualname = ref.partition(":")
    if not sep or not module or not qualname:
        raise ConfigError(f"callable {ref!r}", ['expected "module:qualname"'])
    if _module_denied(module):
        raise CallableDenied(ref, f"module {module!r} is on the deny list")
    if not _allowed(module, qualname, allowlist):
        raise CallableDenied(ref, "not on the allow list")
    try:
        target: Any = importlib.import_module(module)
        for part in qualname.split("."):
            if part.startswith("__"):
                raise AttributeError(part)
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"callable {ref!r}", [f"cannot be resolved: {exc}"]) from exc
    if not callable(target):
        raise ConfigError(f"callable {ref!r}", ["is not callable"])
    check_callable(target)  # a re-export must not smuggle in a denied function
    return target  # type: ignore[no-any-return]
