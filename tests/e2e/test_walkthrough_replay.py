"""The walkthrough, replayed: every request it shows, sent to a real ``genapi demo`` process
by the official phoenix client, gets the answer the walkthrough documents.

The walkthrough is the original library's step-by-step guide (reference copy:
``../shared/reference/walkthrough.md``). Its requests and documented answers are written
below as data, one :class:`Case` per request, each naming its section, so that a reader can
hold the two side by side. ``js/walkthrough_replay.mjs`` connects (one socket per identity),
joins, pushes each request as the walkthrough's JavaScript does and prints every ``api``
push for it; the assertions compare those with the documented answers.

How the walkthrough's Elixir notation is read:

* ``%Request{...}`` / ``%Response{...}`` become the pushed payload and the pushed Response;
* ``...`` inside a documented value ("``%{id: "1", name: "Alice", ...}``") becomes
  :class:`Partial` (these keys, more may follow) or :class:`Starts` (these items first);
* an identity set in the walkthrough's ``join/3`` (``socket.assigns.user_id``,
  ``user_roles``) becomes the demo's connect params ``user_id`` and ``roles`` — the demo's
  insecure demo authenticator, so identity still comes only from the connection;
* timestamps and ``Date.now()`` request ids are checked by shape (:class:`Re`).

Where genapi differs from the walkthrough on purpose, the case says so in ``deviation``;
requests the demo cannot answer are listed in :data:`EXCLUDED` with the reason.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.e2e.conftest import JS_DIR
from tests.support.procs import interrupt, wait_healthy
from tests.support.servers import free_port

# -- matchers: the walkthrough's notation for partly documented values ------------------


class Partial(dict[str, Any]):
    """``%{id: "1", name: "Alice", ...}``: these keys with these values; others may follow."""


class Starts(list[Any]):
    """``[%{id: "1", ...}, ...]``: these items first; more may follow."""


@dataclass(frozen=True)
class Re:
    """A string of this shape (timestamps, ``"req_" + Date.now()``)."""

    pattern: str


def mismatch(actual: Any, expected: Any, path: str = "") -> str | None:
    """Where ``actual`` differs from the documented ``expected``, or None."""
    where = path or "value"
    if isinstance(expected, Re):
        ok = isinstance(actual, str) and re.fullmatch(expected.pattern, actual) is not None
        return None if ok else f"{where}: {actual!r} does not match /{expected.pattern}/"
    if isinstance(expected, type):
        return None if isinstance(actual, expected) else f"{where}: {actual!r} is not {expected}"
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{where}: expected an object, got {actual!r}"
        if not isinstance(expected, Partial) and set(actual) != set(expected):
            return f"{where}: keys {sorted(actual)} != documented {sorted(expected)}"
        for key, value in expected.items():
            if key not in actual:
                return f"{where}: missing key {key!r}"
            problem = mismatch(actual[key], value, f"{path}.{key}" if path else key)
            if problem:
                return problem
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return f"{where}: expected a list, got {actual!r}"
        if len(actual) < len(expected) or (
                not isinstance(expected, Starts) and len(actual) != len(expected)):
            return f"{where}: {len(actual)} items, documented {len(expected)}"
        for index, item in enumerate(expected):
            problem = mismatch(actual[index], item, f"{path}[{index}]")
            if problem:
                return problem
        return None
    return None if actual == expected else f"{where}: {actual!r} != documented {expected!r}"


def response(request_id: Any, result: Any = None, *, success: bool = True,
             error: Any = None, async_: bool = False, has_more: bool = False,
             can_retry: bool = False) -> dict[str, Any]:
    """A whole ``%Response{}`` as pushed; the fields the walkthrough leaves out take their
    defaults (``async: false``, ``has_more: false``, ``can_retry: false``)."""
    return {"request_id": request_id, "result": result, "success": success, "error": error,
            "async": async_, "has_more": has_more, "can_retry": can_retry}


# -- the walkthrough's requests and answers ----------------------------------------------

NOW_ID = Re(r"req_\d+")  # "req_" + Date.now()
ALICE = Partial({"id": "1", "name": "Alice"})  # %{id: "1", name: "Alice", ...}
USER_123 = {"user_id": "user_123"}  # socket.assigns.user_id = "user_123"
ISO_TIMESTAMP = Re(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


@dataclass(frozen=True)
class Case:
    """One request of the walkthrough and the answer it documents.

    ``pushes`` are every ``api`` push for the request, in order (an async call's ack, a
    stream's chunks); for ``kind="relay"``, ``received`` is what the other member gets.
    """

    section: str
    name: str
    payload: dict[str, Any]
    pushes: list[Any]
    params: dict[str, str] = field(default_factory=dict)
    topic: str = "api:lobby"
    reply: Any = None  # the phx_reply, when the walkthrough documents it
    deviation: str = ""
    kind: str = "call"
    received: Any = None
    members: list[dict[str, Any]] = field(default_factory=list)
    setup: dict[str, Any] = field(default_factory=dict)

    def spec(self) -> dict[str, Any]:
        """What walkthrough_replay.mjs needs."""
        spec: dict[str, Any] = {"name": self.name, "kind": self.kind, "params": self.params,
                                "topic": self.topic, "payload": self.payload}
        if self.kind == "relay":
            spec.update(members=self.members, setup=self.setup)
        return spec


def request(request_id: str, service: str, request_type: str, args: Any = None,
            **extra: Any) -> dict[str, Any]:
    """A pushed payload; without ``args`` the key is left out, as in the walkthrough."""
    payload = {"service": service, "request_type": request_type, "request_id": request_id,
               **extra}
    if args is not None:
        payload["args"] = args
    return payload


CASES: list[Case] = [
    # 1. Basic Setup — Sync API, Step 6 (IEx) and Step 7 (JavaScript)
    Case("1. Basic Setup, Step 6", "list_users",
         request("test_1", "user_service", "list_users", {}),
         [response("test_1", Starts([ALICE]))]),
    Case("1. Basic Setup, Step 6", "get_user",
         request("test_2", "user_service", "get_user", {"user_id": "1"}),
         [response("test_2", ALICE)]),
    Case("1. Basic Setup, Step 7", "js list_users",  # no args key, as pushed there
         request("req_{now}", "user_service", "list_users"),
         [response(NOW_ID, Starts([ALICE]))]),
    Case("1. Basic Setup, Step 7", "js get_user",
         request("req_{now}", "user_service", "get_user", {"user_id": "1"}),
         [response(NOW_ID, ALICE)]),
    # 2. Argument Validation — Validation errors
    Case("2. Argument Validation, Validation errors", "missing user_id",
         request("test_1", "user_service", "get_user", {}),
         [response("test_1", success=False, error="Missing required argument: user_id")]),
    # 3. Permissions — arg-based and role-based, the ✅ / ❌ examples
    Case("3. Permissions, Arg-based ✅", "own profile",
         request("perm_1", "user_service", "get_user_profile", {"user_id": "user_123"}),
         [response("perm_1", Partial({"user_id": "user_123"}))], params=USER_123),
    Case("3. Permissions, Arg-based ❌", "another's profile",
         request("perm_2", "user_service", "get_user_profile", {"user_id": "user_999"}),
         [response("perm_2", success=False, error="Permission denied")], params=USER_123),
    Case("3. Permissions, Role-based ✅", "admin deletes",
         request("perm_3", "admin_service", "delete_user", {"user_id": "2"}),
         [response("perm_3", {"deleted": "2"})],
         params={"user_id": "user_42", "roles": "admin,editor"},
         deviation="the walkthrough shows no args for delete_user; the demo's takes user_id"),
    Case("3. Permissions, Role-based ❌", "viewer may not delete",
         request("perm_4", "admin_service", "delete_user", {"user_id": "2"}),
         [response("perm_4", success=False, error="Permission denied")],
         params={"user_id": "user_42", "roles": "viewer"}),
    # 5. Async Execution: an immediate {async: true} ack, then the result
    Case("5. Async Execution, What happens", "generate_report",
         request("req_{now}", "report_service", "generate_report", {}),
         [response(NOW_ID, async_=True),
          response(NOW_ID, {"report_url": "https://example.com/reports/123.pdf"})]),
    # 6. Streaming: ten ticks (has_more: true), then the last chunk (has_more: false)
    Case("6. Streaming, Define a streaming function", "stream_events",
         request("req_{now}", "event_service", "stream_events", {}),
         [response(NOW_ID, "init", async_=True, has_more=True),
          *[response(NOW_ID, {"event": "tick", "number": i}, async_=True, has_more=True)
            for i in range(1, 11)],
          response(NOW_ID, {"event": "done", "total": 10}, async_=True)],
         deviation="the first push is the stream's init (result \"init\"), as the original "
                   "sends it; the walkthrough does not show it"),
    # 8. Function Versioning — Client specifies version (the JSON, verbatim)
    Case("8. Function Versioning, Client specifies version", "get_user 2.0.0",
         {"service": "user_service", "request_type": "get_user", "request_id": "req_1",
          "version": "2.0.0", "args": {"id": "123", "fields": ["name", "email"]}},
         [response("req_1", {"name": "Carol", "email": "carol@example.com"})],
         deviation="the walkthrough shows no data for user 123: the demo seeds Carol; "
                   "the answer has exactly the requested fields"),
    # 12. Relay Messages — Step 4, from user_1 to the members of room_1
    Case("12. Relay Messages, Step 4", "send_message",
         request("msg_{now}", "chat_service", "send_message",
                 {"group_id": "room_1", "message": "Hello everyone!"}),
         [response(Re(r"msg_\d+"), Partial({"status": "relayed", "timestamp": ISO_TIMESTAMP}))],
         kind="relay",
         members=[{"params": {"user_id": "user_1"}, "topic": "chat:room_1"},
                  {"params": {"user_id": "user_2"}, "topic": "chat:room_1"}],
         setup=request("join_{now}", "chat_service", "join_group", {"group_id": "room_1"}),
         received=[response(Re(r"msg_\d+"), Partial({
             "group_id": "room_1", "from_user_id": "user_1", "message": "Hello everyone!",
             "timestamp": ISO_TIMESTAMP}))],
         deviation="genapi serves one event name, \"api\" (the walkthrough's ChatChannel "
                   "pushes \"chat\"), and joining the topic does not join the group, so each "
                   "member calls join_group first (the walkthrough's join/3 does it); the "
                   "sender gets its send's answer, the others the message, which also "
                   "carries the group's offset"),
    # 15. Testing — the executor and channel tests, as requests
    Case("15. Testing, Test the Executor directly", "get_user returns user data",
         request("test_1", "user_service", "get_user", {"user_id": "1"}),
         [response("test_1", Partial({"name": "Alice"}))]),
    Case("15. Testing, Test the Executor directly", "unknown user",
         request("test_2", "user_service", "get_user", {"user_id": "nonexistent"}),
         [response("test_2", success=False, error=str)]),
    Case("15. Testing, Test with a channel", "channel get_user",
         request("req_1", "user_service", "get_user", {"user_id": "1"}),
         [response("req_1", ALICE)],
         reply={"status": "ok", "response": {"request_type": "get_user"}},
         deviation="the walkthrough's assert_reply expects the Response in the reply; the "
                   "original replies {:ok, request_type} and pushes the Response "
                   "(phoenix_gen_api.md §2.3), and so does genapi"),
    Case("15. Testing, Test argument validation", "missing argument",
         request("test_1", "user_service", "get_user", {}),
         [response("test_1", success=False, error=Re(r"Missing required argument.*"))]),
    Case("15. Testing, Test permissions", "denied for another user",
         request("test_1", "user_service", "get_user_profile", {"user_id": "user_999"}),
         [response("test_1", success=False, error=Re(r"Permission denied.*"))],
         params=USER_123),
]

#: Parts of the walkthrough with no request the demo can answer, and why.
EXCLUDED: list[tuple[str, str]] = [
    ("1. Basic Setup, Steps 1-5; 2. Argument Validation, formats",
     "module and FunConfig definitions, no request; the demo registers the functions "
     "(create_post, search: tests/demo)"),
    ("3. Permissions, Any authenticated and Custom callback",
     "FunConfigs without a request; registered as user_service.get_profile and "
     "admin_service.admin_action (tests/demo)"),
    ("4. Rate Limiting", "configuration and the in-process RateLimiter API "
     "(check_rate_limit, add/remove_global_limit, reset, status, update_config), no client "
     "request; the demo runs without a rate limiter; changing limits at runtime is the "
     "admin write API of issue 18"),
    ("6. Streaming, Stopping a stream", "stop_stream/1 is a server-side call; genapi's "
     "client sends the \"cancel\" event instead (tests/e2e/test_phoenix_client.py)"),
    ("7. Config Push vs Pull", "between Elixir nodes, no client request; genapi's nodes push "
     "over NATS (genapi demo --cluster, tests/cluster)"),
    ("8. Function Versioning, Version management at runtime", "ConfigDb calls in-process; "
     "disable/enable/delete over HTTP and CLI are the admin write API of issue 18"),
    ("9. Retry & Node Fallback; 10. Node Selection Strategies", "FunConfigs for nodes, no "
     "request; genapi demo --cluster serves data_service.get_data with retry on two nodes"),
    ("11. Hooks", "FunConfigs without a request"),
    ("12. Relay Messages, Steps 1-3", "server-side group management; the demo seeds the "
     "public group room_1 and serves the relay as chat_service"),
    ("13. Security; 14. Telemetry; 16. IEx Helpers", "configuration and in-process APIs, no "
     "client request (genapi status and /admin are their operator counterparts)"),
    ("15. Testing, Test rate limiting", "written for a hypothetical limit of 100 "
     "(\"assuming limit is 100\"); the demo has no rate limiter"),
]


# -- the replay ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``genapi demo`` as a real process on a free port (its durable store in a temp dir,
    so it never touches a developer's demo data)."""
    port = free_port()
    store = tmp_path_factory.mktemp("demo") / "durable.db"
    env = {**os.environ, "GENAPI_DEMO_DURABLE_URL": f"sqlite:///{store}"}
    proc = subprocess.Popen([sys.executable, "-m", "genapi", "demo", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, timeout=30.0)
        yield url
    finally:
        interrupt(proc)


@pytest.fixture(scope="module")
def replayed(node: str, demo: str) -> dict[str, dict[str, Any]]:
    """Every case, replayed in order by one phoenix.js process; its observations by name."""
    socket_url = demo.replace("http://", "ws://") + "/socket"
    done = subprocess.run(
        [node, str(JS_DIR / "walkthrough_replay.mjs"), socket_url], cwd=JS_DIR,
        input=json.dumps([case.spec() for case in CASES]).encode(),
        capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    seen = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return {line["name"]: line for line in seen}


def test_case_names_are_unique() -> None:
    """Observations are matched to cases by name."""
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[f"{c.section.split(',')[0]}: {c.name}"
                                              for c in CASES])
def test_the_walkthrough_answer(case: Case, replayed: dict[str, dict[str, Any]]) -> None:
    """The request of ``case.section`` gets the answer documented there."""
    seen = replayed.get(case.name)
    assert seen is not None, f"{case.name} was not replayed"
    context = f"{case.section} — {case.name}: {json.dumps(seen)}"
    problem = mismatch(seen["pushes"], case.pushes, "pushes")
    assert problem is None, f"{problem}\n{context}"
    expected_status = "ok" if seen["pushes"][-1]["success"] else "error"
    assert seen["reply"]["status"] == expected_status, context  # never a timeout
    if case.reply is not None:
        assert mismatch(seen["reply"], case.reply, "reply") is None, context
    if case.kind == "relay":
        sent_id = seen["request_id"]
        for member in seen["received"]:
            problem = mismatch(member, case.received, "received")
            assert problem is None, f"{problem}\n{context}"
            assert member[0]["request_id"] == sent_id  # the sender's request id
