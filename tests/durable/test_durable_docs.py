"""The code blocks of docs/durable.md run as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_docs_python_blocks_run() -> None:
    """Every ```python block of docs/durable.md runs to completion in a fresh interpreter."""
    text = (ROOT / "docs" / "durable.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks
    for block in blocks:
        done = subprocess.run(
            [sys.executable, "-c", block], capture_output=True, text=True, timeout=60,
            env={"PYTHONPATH": str(ROOT / "src")},
        )
        assert done.returncode == 0, done.stderr
