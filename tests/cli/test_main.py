"""The genapi command line, run as a real process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from genapi.cli.main import main
from tests.support.procs import interrupt, wait_healthy
from tests.support.servers import free_port

GENAPI = [sys.executable, "-m", "genapi"]


@pytest.fixture
def demo() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([*GENAPI, "demo", "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
        yield url
    finally:
        assert interrupt(proc) == 0


def test_demo_answers_the_readme_curl(demo: str) -> None:
    """`genapi demo` serves the walkthrough: the README's curl calls work."""
    response = httpx.post(demo + "/api/user_service/get_user", content=b'{"user_id":"1"}')
    assert response.status_code == 200
    assert response.json()["result"]["name"] == "Alice"
    admin = httpx.post(demo + "/api/user_service/delete_user", content=b'{"user_id":"2"}',
                       headers={"Authorization": "Bearer 1:admin"})
    assert admin.json() == {"request_id": admin.json()["request_id"], "result": {"deleted": "2"},
                            "success": True, "error": None, "async": False,
                            "has_more": False, "can_retry": False}


def test_serve_module_app(tmp_path: Path) -> None:
    """`genapi serve module:attribute` serves a user's gateway and drains on SIGTERM."""
    (tmp_path / "myapp.py").write_text(
        "import genapi\n"
        "svc = genapi.Service('hello')\n"
        "@svc.function()\n"
        "async def greet(name: str) -> str:\n"
        "    return f'hello {name}'\n"
        "gateway = genapi.Gateway([svc])\n"
    )
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    proc = subprocess.Popen([*GENAPI, "serve", "myapp:gateway", "--port", str(port)],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
        response = httpx.post(url + "/api/hello/greet", json={"name": "al"})
        assert response.json()["result"] == "hello al"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """`genapi version` prints the package version."""
    import genapi

    with pytest.raises(SystemExit) as info:
        main(["version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == genapi.__version__


@pytest.mark.integration
def test_demo_cluster_serves_from_two_nodes_and_stops_cleanly() -> None:
    """`genapi demo --cluster`: data_service answers from both nodes; Ctrl-C stops all."""
    port = free_port()
    proc = subprocess.Popen([*GENAPI, "demo", "--cluster", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
        nodes: set[str] = set()
        deadline = time.monotonic() + 30
        while nodes != {"node-a", "node-b"} and time.monotonic() < deadline:
            response = httpx.post(url + "/api/data_service/get_data", json={"key": "k"})
            if response.json()["success"]:
                nodes.add(response.json()["result"]["node"])
            else:
                time.sleep(0.2)
        assert nodes == {"node-a", "node-b"}
        streamed = httpx.post(url + "/api/data_service/watch",
                              json={"count": 3, "interval_ms": 20}, timeout=10)
        lines = [json.loads(line) for line in streamed.text.splitlines() if line]
        assert [r["result"]["change"] for r in lines if isinstance(r["result"], dict)] == [
            1, 2, 3]
        assert all(r["success"] for r in lines) and lines[-1]["has_more"] is False
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    output = proc.stdout.read().decode() if proc.stdout else ""
    assert "Traceback" not in output
    leftovers = subprocess.run(["pgrep", "-f", "genapi node .*--name node-a"],
                               capture_output=True, text=True)
    assert leftovers.stdout.strip() == "" or all(
        pid == str(os.getpid()) for pid in leftovers.stdout.split())


def test_the_demo_banner_names_commands_that_run_as_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The banner's genapi commands are runnable from here (the script's path or
    `python -m genapi` when genapi is not on PATH) and it shows the chat page."""
    from genapi.cli.main import DEMO_HELP, self_command

    script = tmp_path / ".venv" / "bin" / "genapi"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(script), "demo"])
    monkeypatch.setenv("PATH", "/nonexistent")
    assert self_command() == os.path.join(".venv", "bin", "genapi")
    monkeypatch.setattr(sys, "argv", [str(tmp_path / "__main__.py"), "demo"])
    assert self_command().endswith(" -m genapi")
    monkeypatch.setenv("PATH", str(script.parent))
    script.chmod(0o755)
    monkeypatch.setattr(sys, "argv", [str(script), "demo"])
    assert self_command() == "genapi"
    banner = DEMO_HELP.format(host="127.0.0.1", port=4000, admin_token="t", genapi="X")
    assert "X status --url http://127.0.0.1:4000" in banner
    assert "http://127.0.0.1:4000/demo/chat?user_id=alice" in banner



def test_the_demo_banner_status_command_runs_as_printed() -> None:
    """Run the banner's `status` line exactly as `genapi demo` prints it."""
    import shlex

    port = free_port()
    proc = subprocess.Popen([*GENAPI, "demo", "--port", str(port), "--admin-token", "t0k"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        line = ""
        while "status --url" not in line:
            line = proc.stdout.readline()
            assert line, "the banner has no status line"
        wait_healthy(f"http://127.0.0.1:{port}", proc)  # type: ignore[arg-type]
        env_part, _, command = line.strip().partition(" ")
        key, _, token = env_part.partition("=")
        assert key == "GENAPI_ADMIN_TOKEN"
        status = subprocess.run(shlex.split(command), capture_output=True, text=True,
                                timeout=60, env={**os.environ, key: token})
        assert status.returncode == 0, status.stdout + status.stderr
    finally:
        interrupt(proc)
