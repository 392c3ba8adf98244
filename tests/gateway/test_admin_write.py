"""The admin write actions on one gateway: each allowed, refused without its admin
action, and audited (the admin.action event and a log line), over HTTP and in Python."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import pytest

from genapi import AdminActionDenied, FunctionNotFound
from genapi.gateway.ops import ADMIN_ACTION
from genapi.telemetry.events import default_telemetry
from tests.support.ops_app import ALL, CASES, EXPECTED_AFTER, TOKEN, Case, build, send, state
from tests.support.servers import running_app

AUTH = {"Authorization": f"Bearer {TOKEN}"}
IDS = [case.action for case in CASES]


@pytest.fixture
def events() -> Iterator[list[Mapping[str, Any]]]:
    """The admin.action events' metadata, in order."""
    seen: list[Mapping[str, Any]] = []
    default_telemetry.attach("test-admin-write", [ADMIN_ACTION],
                             lambda _e, _m, metadata: seen.append(metadata))
    yield seen
    default_telemetry.detach("test-admin-write")


def _audit_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "genapi.admin.audit"]


@pytest.mark.parametrize("form", ["http", "python"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_allowed_applied_and_audited(case: Case, form: str,
                                           events: list[Mapping[str, Any]],
                                           caplog: pytest.LogCaptureFixture) -> None:
    """With its admin action the action applies, and is audited with who, what,
    before and after."""
    caplog.set_level(logging.INFO, "genapi.admin.audit")
    gateway = build()
    async with running_app(gateway) as url, \
            httpx.AsyncClient(base_url=url, headers=AUTH) as client:
        for step in (*case.prepare, *case.prepare_seer):
            assert (await send(client, step)).status_code == 200
        events.clear()
        caplog.clear()
        if form == "http":
            response = await send(client, case.request)
            assert response.status_code == 200, response.text
            change = response.json()
        else:
            change = (await case.python(gateway.ops)).to_dict()
        after = await state(client)
    assert {k: after[k] for k in EXPECTED_AFTER[case.action]} == EXPECTED_AFTER[case.action]
    assert change["action"] == case.action and change["who"] == "ops"
    assert change["before"] != change["after"]
    [event] = events
    assert event["action"] == case.action and event["outcome"] == "applied"
    assert event["who"] == "ops" and event["origin"] == event["gateway"] == "local"
    assert event["before"] == change["before"] and event["after"] == change["after"]
    [line] = _audit_lines(caplog)
    assert line.startswith(f"admin {case.action} applied by ops on ")


@pytest.mark.parametrize("form", ["http", "python"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_refused_without_its_admin_action(case: Case, form: str,
                                                events: list[Mapping[str, Any]],
                                                caplog: pytest.LogCaptureFixture) -> None:
    """Without its admin action: 403 (or AdminActionDenied) in the reference's words,
    nothing changed, the refusal audited."""
    gateway = build(actions=ALL - {case.needs})
    async with running_app(gateway) as url, \
            httpx.AsyncClient(base_url=url, headers=AUTH) as client:
        before = await state(client)
        if form == "http":
            response = await send(client, case.request)
            assert response.status_code == 403
            assert response.json() == {"error": f"Admin action denied: {case.needs}"}
        else:
            with pytest.raises(AdminActionDenied, match=f"^Admin action denied: {case.needs}$"):
                await case.python(gateway.ops)
        assert await state(client) == before
    [event] = events
    assert event["action"] == case.action and event["outcome"] == "denied"
    [line] = _audit_lines(caplog)
    assert line.startswith(f"admin {case.action} denied by ops")


async def test_without_the_token_a_bare_401() -> None:
    """The write routes are behind the console's token like every admin route."""
    async with running_app(build()) as url, httpx.AsyncClient(base_url=url) as client:
        for case in CASES:
            response = await send(client, case.request)
            assert response.status_code == 401 and response.content == b""


async def test_wrong_arguments_are_answered_plainly() -> None:
    """An unknown version names the known ones (404); a bad limit says why (400)."""
    gateway = build()
    async with running_app(gateway) as url, \
            httpx.AsyncClient(base_url=url, headers=AUTH) as client:
        response = await client.post(
            "/admin/functions/shop/price/disable", params={"version": "9.9.9"})
        assert response.status_code == 404
        assert "known versions: 1.0.0, 2.0.0" in response.json()["error"]
        response = await client.post("/admin/functions/shop/price/disable")
        assert response.status_code == 404  # versioned: the version must be named
        response = await client.put("/admin/rate-limits", json={"key": "user_id",
                                                                 "max_requests": 0,
                                                                 "window_ms": 1000})
        assert response.status_code == 400 and "max_requests" in response.json()["error"]
        response = await client.post("/admin/rate-limits/reset", json={})
        assert response.status_code == 400 and "value is required" in response.json()["error"]
        response = await client.post("/admin/rate-limits/check",
                                     json={"value": "u1", "service": "shop"})
        assert response.status_code == 400
    with pytest.raises(FunctionNotFound):
        await gateway.ops.delete_function("shop", "nope", "1.0.0")


async def test_a_disabled_version_answers_disabled_and_limits_bite() -> None:
    """The changes act on calls: a disabled version is refused; a limit set at run time
    counts requests; check counts and reports whether the value fits."""
    gateway = build()
    ops = gateway.ops
    async with running_app(gateway) as url, httpx.AsyncClient(base_url=url) as client:
        await ops.disable_function("shop", "price", "1.0.0")
        answer = (await client.post("/api/shop/price", params={"version": "1.0.0"},
                                    json={"item": "x"})).json()
        assert "disabled function" in str(answer)
        await ops.set_rate_limit({"key": "user_id", "max_requests": 2, "window_ms": 60_000})
        results = [(await ops.check_rate_limit("u9")).after for _ in range(3)]
        assert [r["allowed"] for r in results] == [True, True, False]
        assert results[2]["retry_after_ms"] > 0
        assert results[1]["limits"][0]["remaining"] == 0


async def test_a_gateway_without_a_limiter_gets_one() -> None:
    """Limits can be set on a gateway built without any."""
    from genapi import Gateway

    gateway = Gateway(admin=build().admin)
    assert gateway.executor.rate_limiter is None
    change = await gateway.ops.set_rate_limit({"key": "user_id", "max_requests": 1,
                                               "window_ms": 1000})
    assert change.before is None
    assert gateway.executor.rate_limiter is not None
    assert (await gateway.ops.check_rate_limit("a")).after["allowed"] is True
    assert (await gateway.ops.check_rate_limit("a")).after["allowed"] is False


async def test_other_modules_add_actions(events: list[Mapping[str, Any]]) -> None:
    """admin_action: an action defined elsewhere runs through the same gate and audit."""
    from genapi import AdminAction
    from genapi.gateway import ops as ops_module

    touched: list[dict[str, Any]] = []

    @ops_module.admin_action(AdminAction.PUSH_CONFIG, name="test_touch")
    async def touch(ops: Any, args: dict[str, Any]) -> tuple[dict[str, Any], Any, Any]:
        touched.append(args)
        return {"what": args["what"]}, 0, 1

    try:
        change = await build().ops.run("test_touch", {"what": "x"}, who="carol")
        assert (change.target, change.before, change.after, change.who) == (
            {"what": "x"}, 0, 1, "carol")
        with pytest.raises(AdminActionDenied, match="push_config"):
            await build(actions=ALL - {"push_config"}).ops.run("test_touch", {"what": "y"})
        assert touched == [{"what": "x"}]
        assert [(e["action"], e["outcome"]) for e in events] == [
            ("test_touch", "applied"), ("test_touch", "denied")]
    finally:
        del ops_module._SPECS["test_touch"]
