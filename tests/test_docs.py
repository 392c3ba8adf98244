"""The README's and docs' code blocks run as written, so they cannot rot.

* Python blocks of a file run in order in one namespace, as a session would (top-level
  ``await`` allowed: such blocks run on the test's event loop, the others in a thread, so
  that a block may call ``asyncio.run`` itself); ``docs/*.md`` continue from the README's
  namespace (its first API, gateway and token).
* A block after ``<!-- docs-test: server -->`` runs while the namespace's ``gateway`` is
  served on a free port: its ``localhost:4000`` points there; JavaScript runs under Node
  with ``tests/e2e/js``'s packages and ``GENAPI_TOKEN`` set to the namespace's ``token``.
* TypeScript blocks compile (``tsc --strict``) against the demo gateway's generated
  ``api.ts`` (``phoenix``, which ships no typings, declared as an untyped module).
* A fragment is marked ``<!-- docs-test: skip — why -->`` (the reason is required).
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import free_port, running_app

ROOT = Path(__file__).resolve().parents[1]
JS_DIR = ROOT / "tests" / "e2e" / "js"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```(\w*)\s*$")
_DIRECTIVE = re.compile(r"^<!--\s*docs-test:\s*(\w+)\s*(?:—|-)?\s*(.*?)\s*-->\s*$")
RUN = {"python": "python", "py": "python", "js": "js", "javascript": "js", "mjs": "js",
       "ts": "ts", "typescript": "ts"}


@dataclass
class Block:
    path: Path
    line: int
    language: str
    code: str
    directive: str | None
    reason: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown file, with the directive just above each."""
    found: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        start = index
        index += 1
        body: list[str] = []
        while index < len(lines) and lines[index].strip() != "```":
            body.append(lines[index])
            index += 1
        index += 1
        above = next((lines[i] for i in range(start - 1, -1, -1) if lines[i].strip()), "")
        directive = _DIRECTIVE.match(above.strip())
        found.append(Block(path, start + 1, opening.group(1).lower(), "\n".join(body) + "\n",
                           directive.group(1) if directive else None,
                           directive.group(2) if directive else ""))
    return found


async def run_python(block: Block, namespace: dict[str, Any]) -> None:
    code = compile(block.code, block.where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
                   dont_inherit=True)  # not this module's `from __future__ import annotations`
    if code.co_flags & inspect.CO_COROUTINE:  # top-level await: on this event loop
        await eval(code, namespace)  # the docs are ours: executing them is the point
    else:  # a plain program (it may call asyncio.run itself): in a thread of its own
        await asyncio.to_thread(exec, code, namespace)


async def run_js(block: Block, namespace: dict[str, Any], tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None or not (JS_DIR / "node_modules" / "phoenix").exists():
        pytest.skip("node and tests/e2e/js/node_modules are needed (scripts/setup --dev)")
    folder = tmp_path / f"js{block.line}"
    folder.mkdir()
    (folder / "node_modules").symlink_to(JS_DIR / "node_modules")
    (folder / "snippet.mjs").write_text(block.code)
    env = {**os.environ, "GENAPI_TOKEN": str(namespace.get("token", ""))}
    result = await asyncio.to_thread(  # the served gateway runs on this event loop
        subprocess.run, [node, "snippet.mjs"], cwd=folder, env=env, capture_output=True,
        text=True, timeout=60)
    assert result.returncode == 0, f"{block.where}: {result.stdout}{result.stderr}"
    assert "success: false" not in result.stdout, f"{block.where}: {result.stdout}"


def compile_ts(block: Block, tmp_path: Path) -> None:
    from genapi import function_catalog, typescript_module
    from genapi.demo.app import build_demo_gateway
    from tests.schema.test_schema import tsc

    compiler = tsc()
    folder = tmp_path / f"ts{block.line}"
    folder.mkdir()
    (folder / "node_modules").symlink_to(JS_DIR / "node_modules")
    (folder / "api.ts").write_text(typescript_module(function_catalog(build_demo_gateway())))
    (folder / "snippet.ts").write_text(block.code)
    # phoenix ships no typings: declared untyped, as in a project without @types/phoenix
    (folder / "phoenix.d.ts").write_text('declare module "phoenix";\n')
    result = subprocess.run(
        [compiler, "--noEmit", "--strict", "--target", "ES2022", "--module", "ES2022",
         "--moduleResolution", "bundler", "--lib", "ES2022,DOM",
         str(folder / "snippet.ts"), str(folder / "api.ts"), str(folder / "phoenix.d.ts")],
        capture_output=True, text=True, timeout=120, cwd=JS_DIR)
    assert result.returncode == 0, f"{block.where}: {result.stdout}{result.stderr}"


async def run_file(path: Path, namespace: dict[str, Any], tmp_path: Path) -> int:
    """Run a document's blocks; how many ran."""
    ran = 0
    for block in blocks(path):
        kind = RUN.get(block.language)
        if kind is None:
            continue
        if block.directive == "skip":
            assert block.reason, f"{block.where}: a skipped block must say why"
            continue
        assert block.directive in (None, "server"), f"{block.where}: {block.directive}?"
        if kind == "ts":
            compile_ts(block, tmp_path)
        elif block.directive == "server":
            port = free_port()
            served = Block(block.path, block.line, block.language,
                           block.code.replace("localhost:4000", f"127.0.0.1:{port}"),
                           block.directive, block.reason)
            async with running_app(namespace["gateway"], port=port):
                if kind == "python":
                    await run_python(served, namespace)
                else:
                    await run_js(served, namespace, tmp_path)
        elif kind == "python":
            await run_python(block, namespace)
        else:
            await run_js(block, namespace, tmp_path)
        ran += 1
    return ran


@pytest.fixture(scope="module")
def readme_namespace() -> dict[str, Any]:
    """Filled by the README test (which runs first, in file order)."""
    return {"__name__": "docs_readme"}


async def test_readme_blocks_run_as_written(readme_namespace: dict[str, Any],
                                            tmp_path: Path) -> None:
    """Every Python and JavaScript block of the README runs (fragments say why not)."""
    assert await run_file(ROOT / "README.md", readme_namespace, tmp_path) >= 10
    assert "gateway" in readme_namespace and "token" in readme_namespace


@pytest.mark.parametrize("path", DOCS[1:], ids=[p.name for p in DOCS[1:]])
async def test_docs_blocks_run_as_written(path: Path, readme_namespace: dict[str, Any],
                                          tmp_path: Path) -> None:
    """Every Python, JavaScript and TypeScript block of docs/*.md runs or compiles,
    continuing from the README's namespace."""
    if "gateway" not in readme_namespace:  # run alone: build the README's context first
        await run_file(ROOT / "README.md", readme_namespace, tmp_path)
    await run_file(path, dict(readme_namespace), tmp_path)


def test_the_parser_sees_fences_and_directives(tmp_path: Path) -> None:
    """Directives apply to the next fenced block only; languages are kept."""
    doc = tmp_path / "doc.md"
    doc.write_text("text\n\n<!-- docs-test: skip — a fragment -->\n```python\nx = 1\n```\n\n"
                   "```js\nlet y;\n```\n")
    found = blocks(doc)
    assert [(b.language, b.directive, b.reason, b.code) for b in found] == [
        ("python", "skip", "a fragment", "x = 1\n"), ("js", None, "", "let y;\n")]
