"""The ``genapi`` command line: a thin layer over the library.

* :mod:`.main` — the Typer app, ``version`` and the serving commands (``demo``, ``serve``,
  ``node``);
* :mod:`.admin` — ``status`` (and ``call-flow``) and ``schema``;
* :mod:`.ops` — ``call`` and ``top``;
* :mod:`.loading` — ``module:attribute`` targets; :mod:`.nats` — the ``--nats`` option.
"""

from __future__ import annotations

from .main import app, main

__all__ = ["app", "main"]
