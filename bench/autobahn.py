"""WebSocket conformance: Autobahn|Testsuite's fuzzing client against genapi's driver.

    python bench/autobahn.py [--cases 1.*,7.9.*] [--servers genapi-direct,...]
                             [--cache .cache/autobahn] [--python2 PATH] [--report DIR]

Installs Autobahn|Testsuite 0.8.2 under Python 2.7 into a cache directory (once; pinned
versions, see ``PINS``), starts one echo server per driver (``bench/autobahn_echo.py``:
genapi's protocol over the ``genapi.direct`` extension, the same protocol over plain ASGI,
and uvicorn's ``websockets-sansio`` driver), runs ``wstest -m fuzzingclient`` against them
and prints a summary per server. Exits 1 when one of genapi's drivers has a FAILED case or a
WRONG CODE (or a FAILED close); uvicorn's driver is only reported.

Cases: by default 1-7, 9.1-9.2 and 10 (259 cases; 12 and 13 are compression, which
genapi does not negotiate). The whole run takes about 30 s for the three servers on a
2-core machine (9.1-9.2, up to 16 MiB messages, under 1 s each); installing, once, 30 s.

Needs a Python 2.7 interpreter: ``--python2``, else ``$PYTHON2``, else pyenv's 2.7.18, else
``python2.7`` on the PATH. The cache is ``.cache/autobahn`` in the repository unless
``--cache`` or ``$AUTOBAHN_CACHE`` says otherwise.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VERSION = "0.8.2"

#: Versions that install and run under Python 2.7 (the newest that still support it):
#: without pins pip picks releases that dropped 2.7.
PINS = """\
autobahntestsuite==0.8.2
autobahn==0.10.9
Twisted==20.3.0
txaio==2.1.0
zope.interface==5.5.2
pyOpenSSL==21.0.0
cryptography==3.3.2
cffi==1.15.1
pycparser==2.21
service-identity==21.1.0
pyasn1==0.5.1
pyasn1-modules==0.3.0
attrs==21.4.0
six==1.17.0
idna==2.10
hyperlink==21.0.0
Automat==22.10.0
constantly==15.1.0
incremental==22.10.0
PyHamcrest==1.10.1
klein==20.6.0
Tubes==0.2.1
Werkzeug==1.0.1
jinja2==2.11.3
markupsafe==1.1.1
wsaccel==0.6.6
ujson==2.0.3
enum34==1.1.10
ipaddress==1.0.23
typing==3.10.0.0
argparse==1.4.0
unittest2==1.1.0
linecache2==1.0.0
traceback2==1.4.0
"""

CASES = ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.1.*", "9.2.*", "10.*"]

SERVERS = ["genapi-direct", "genapi-asgi", "uvicorn-sansio"]
GATED = {"genapi-direct", "genapi-asgi"}  # the drivers this script fails for

BEHAVIORS = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"]
CLOSE_BEHAVIORS = ["OK", "INFORMATIONAL", "WRONG CODE", "UNCLEAN", "FAILED BY CLIENT", "FAILED"]


def find_python2(explicit: str | None) -> str:
    candidates = [explicit, os.environ.get("PYTHON2"),
                  str(Path.home() / ".pyenv/versions/2.7.18/bin/python2.7"),
                  shutil.which("python2.7")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    raise SystemExit("no Python 2.7 found: pass --python2 or set $PYTHON2")


def site_packages(cache: Path) -> Path:
    return cache / "lib" / "python2.7" / "site-packages"


def install(python2: str, cache: Path) -> None:
    """Autobahn|Testsuite into ``cache`` (a pip ``--prefix``), unless it is there already."""
    marker = cache / f"installed-{VERSION}"
    if marker.exists():
        return
    cache.mkdir(parents=True, exist_ok=True)
    pins = cache / "pins.txt"
    pins.write_text(PINS)
    print(f"installing Autobahn|Testsuite {VERSION} into {cache} ...", flush=True)
    subprocess.run(
        [python2, "-m", "pip", "install", "--disable-pip-version-check",
         "--no-warn-script-location", "--quiet", "--prefix", str(cache), "-r", str(pins)],
        check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    # Python 2.7 does not read our site-packages by itself: a sitecustomize adds it.
    custom = cache / "sitecustomize"
    custom.mkdir(exist_ok=True)
    (custom / "sitecustomize.py").write_text(
        f"import site\nsite.addsitedir({str(site_packages(cache))!r})\n")
    marker.write_text(PINS)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def echo_server(driver: str, port: int, log: Path) -> Iterator[None]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "autobahn_echo.py"), "--port", str(port),
             "--driver", driver], env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while True:
                with socket.socket() as sock:
                    if sock.connect_ex(("127.0.0.1", port)) == 0:
                        break
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"{driver} echo server did not start:\n"
                                     f"{log.read_text(errors='replace')[-2000:]}")
                time.sleep(0.05)
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def run_wstest(python2: str, cache: Path, spec: dict[str, object], workdir: Path) -> None:
    spec_file = workdir / "fuzzingclient.json"
    spec_file.write_text(json.dumps(spec, indent=2))
    env = {**os.environ, "PYTHONPATH": str(cache / "sitecustomize"),
           "PYTHONWARNINGS": "ignore"}
    with (workdir / "wstest.log").open("wb") as out:
        done = subprocess.run(
            [python2, str(cache / "bin" / "wstest"), "-m", "fuzzingclient", "-s", str(spec_file)],
            cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = (workdir / "wstest.log").read_text(errors="replace")[-3000:]
        raise SystemExit(f"wstest exited with {done.returncode}:\n{tail}")


def case_key(case_id: str) -> tuple[int, ...]:
    return tuple(int(part) for part in case_id.split("."))


def summarize(index: dict[str, dict[str, dict[str, object]]]) -> bool:
    """Print one summary per server; True when a gated driver failed a case."""
    failed_any = False
    for agent in sorted(index, key=lambda name: SERVERS.index(name)
                        if name in SERVERS else len(SERVERS)):
        results = index[agent]
        behavior = collections.Counter(str(r["behavior"]) for r in results.values())
        closing = collections.Counter(str(r["behaviorClose"]) for r in results.values())
        failing = sorted((case for case, r in results.items()
                          if r["behavior"] == "FAILED"
                          or r["behaviorClose"] in ("FAILED", "WRONG CODE")),
                         key=case_key)
        unclean = sorted((case for case, r in results.items() if r["behaviorClose"] == "UNCLEAN"),
                         key=case_key)
        print(f"\n{agent}: {len(results)} cases")
        print("  behavior: " + ", ".join(f"{name} {behavior.get(name, 0)}" for name in BEHAVIORS)
              + "".join(f", {name} {n}" for name, n in behavior.items() if name not in BEHAVIORS))
        print("  closing:  " + ", ".join(f"{name} {closing.get(name, 0)}"
                                         for name in CLOSE_BEHAVIORS)
              + "".join(f", {name} {n}" for name, n in closing.items()
                        if name not in CLOSE_BEHAVIORS))
        for case in failing:
            r = results[case]
            print(f"  failing {case}: behavior {r['behavior']}, closing {r['behaviorClose']}"
                  f" (close code {r.get('remoteCloseCode')})")
        for label, name in (("non-strict", "NON-STRICT"), ("informational", "INFORMATIONAL")):
            ids = sorted((c for c, r in results.items() if r["behavior"] == name), key=case_key)
            if ids:
                print(f"  {label}: {', '.join(ids)}")
        if unclean:
            print(f"  unclean close: {', '.join(unclean)}")
        if failing and agent in GATED:
            failed_any = True
    return failed_any


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=",".join(CASES),
                        help="comma-separated case patterns (default: %(default)s)")
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--cache", default=os.environ.get("AUTOBAHN_CACHE",
                                                          str(ROOT / ".cache" / "autobahn")))
    parser.add_argument("--python2")
    parser.add_argument("--report", help="keep Autobahn's reports (HTML and JSON) here")
    args = parser.parse_args(argv)
    servers = [name for name in args.servers.split(",") if name]
    unknown = set(servers) - set(SERVERS)
    if unknown:
        parser.error(f"unknown servers: {', '.join(sorted(unknown))}")
    cases = args.cases.split(",")

    cache = Path(args.cache).resolve()
    python2 = find_python2(args.python2)
    install(python2, cache)

    with contextlib.ExitStack() as stack:
        workdir = Path(args.report).resolve() if args.report else Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="autobahn-")))
        workdir.mkdir(parents=True, exist_ok=True)
        entries = []
        for driver in servers:
            port = free_port()
            stack.enter_context(echo_server(driver, port, workdir / f"{driver}.log"))
            entries.append({"agent": driver, "url": f"ws://127.0.0.1:{port}"})
        spec = {"outdir": str(workdir / "reports"), "servers": entries, "cases": cases,
                "exclude-cases": [], "exclude-agent-cases": {}}
        started = time.monotonic()
        print(f"running Autobahn|Testsuite {VERSION} cases {','.join(cases)} against "
              f"{', '.join(servers)} ...", flush=True)
        run_wstest(python2, cache, spec, workdir)
        elapsed = time.monotonic() - started
        index = json.loads((workdir / "reports" / "index.json").read_text())
    failed = summarize(index)
    print(f"\nwstest ran {elapsed:.1f} s for {len(servers)} server(s)")
    if failed:
        print("FAILED: genapi's driver has failing cases")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
