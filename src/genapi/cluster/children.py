"""Helper processes a genapi process owns (nats-server, gateway workers).

They start in a session of their own, so a Ctrl-C at the terminal reaches only the owner,
which stops them in order (a gateway drains while its nats-server still runs). On Linux
they are also told to stop when their owner dies (started from the main thread), so no
helper outlives a killed owner.
"""

from __future__ import annotations

import ctypes
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["owned_child"]

_PR_SET_PDEATHSIG = 1


def _death_signal() -> Callable[[], None] | None:
    # The signal follows the *thread* that started the child: only the main thread lives
    # as long as the process.
    if not sys.platform.startswith("linux") or (
            threading.current_thread() is not threading.main_thread()):
        return None
    try:
        # Loaded here, not in the child: dlopen after fork may deadlock.
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def set_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return set_death_signal


def owned_child() -> dict[str, Any]:
    """``subprocess.Popen`` options for a helper process (see the module docs)."""
    return {"start_new_session": True, "preexec_fn": _death_signal()}
