"""Virtualenvs for the peers the benches compare against (Crossbar, python-socketio …).

Their pins clash with genapi's (Crossbar pins Twisted, autobahn, cryptography …), so each
peer gets its own virtualenv under ``.cache/<name>-venv``, created on first use. The
project's dependencies stay as they are.
"""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def peer_python(name: str, packages: list[str], probe: str) -> str:
    """The python of the peer's virtualenv, with ``packages`` installed.

    ``probe`` is a module whose import tells that the install is complete (an install
    interrupted half way is redone).
    """
    venv = os.path.join(ROOT, ".cache", f"{name}-venv")
    python = os.path.join(venv, "bin", "python")
    if os.path.exists(python) and _imports(python, probe):
        return python
    print(f"installing {', '.join(packages)} into {venv} (once)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    subprocess.run([python, "-m", "pip", "install", "--quiet", *packages], check=True)
    if not _imports(python, probe):
        raise SystemExit(f"{name}: {probe} does not import after installing {packages}")
    return python


def _imports(python: str, module: str) -> bool:
    return subprocess.run([python, "-c", f"import {module}"], capture_output=True,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
                          ).returncode == 0
