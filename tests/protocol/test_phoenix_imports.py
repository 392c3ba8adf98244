"""The protocol layer stays sans-I/O: importing it loads no event loop, socket or thread."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import genapi.protocol.phoenix as phoenix

FORBIDDEN = ("asyncio", "socket", "threading", "selectors", "logging")

# genapi/__init__.py re-exports the executor (which uses asyncio), so the subprocess installs
# a bare ``genapi`` package object first: what is measured is the protocol layer and what it
# imports (genapi.errors, msgspec), not the package root.
PROBE = """
import sys, types
pkg = types.ModuleType("genapi")
pkg.__path__ = [{src!r}]
sys.modules["genapi"] = pkg
{imports}
print(",".join(m for m in {forbidden!r} if m in sys.modules))
"""


def loaded_forbidden(imports: str) -> str:
    src = str(Path(phoenix.__file__).resolve().parents[2])
    code = PROBE.format(src=src, imports=imports, forbidden=FORBIDDEN)
    # Coverage measures child processes when asked to (COVERAGE_* variables): not this one,
    # whose loaded modules are what is measured.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE")}
    result = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True, env=env
    )
    return result.stdout.strip()


def test_msgspec_alone_loads_no_io_modules() -> None:
    """msgspec (and its json module) pull in neither asyncio, socket nor threading."""
    assert loaded_forbidden("import msgspec, msgspec.json") == ""


def test_protocol_package_loads_no_io_modules() -> None:
    """Importing genapi.protocol.phoenix (all submodules) loads no I/O or thread module."""
    imports = (
        "import genapi.protocol.phoenix, genapi.protocol.phoenix.client, "
        "genapi.protocol.phoenix.server, genapi.protocol.phoenix.binary"
    )
    assert loaded_forbidden(imports) == ""


def test_every_exported_name_exists() -> None:
    """__all__ lists only names the package defines, without duplicates."""
    assert len(set(phoenix.__all__)) == len(phoenix.__all__)
    for name in phoenix.__all__:
        assert hasattr(phoenix, name), name
