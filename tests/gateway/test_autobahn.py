"""RFC 6455 conformance in the test suite: Autobahn|Testsuite 0.8.2's fuzzing client (cases
1-7, 9.1-9.2, 10) against genapi's driver, both its direct and its ASGI path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


def test_autobahn_finds_no_failure_and_no_wrong_code() -> None:
    """bench/autobahn.py exits 0 only when genapi's drivers have no FAILED case and no
    WRONG CODE; its summary is shown when it does not."""
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "autobahn.py"),
                          "--servers", "genapi-direct,genapi-asgi"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert "genapi-direct" in run.stdout and "FAILED 0" in run.stdout.replace(":", ""), \
        run.stdout[-4000:]
