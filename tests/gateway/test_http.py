"""The HTTP endpoint: same pipeline, fitting statuses."""

from __future__ import annotations

import httpx
import pytest

from genapi import ApiError, Gateway, Limits, Registry, Service
from genapi.demo import SERVICES
from genapi.demo.app import build_demo_gateway
from tests.support.servers import running_app


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "error"),
    [
        ("/api/user_service/get_user", {"user_id": "1"}, {}, 200, None),
        ("/api/user_service/get_user", {}, {}, 422, "Missing required argument: user_id"),
        ("/api/user_service/get_user", {"user_id": "9"}, {}, 400, "User not found"),
        ("/api/user_service/nope", {}, {}, 404,
         "Unknown function nope in service user_service "
         "(known: delete_user, get_profile, get_user, get_user_profile, list_users)"),
        ("/api/user_service/get_user_profile", {"user_id": "1"}, {}, 401,
         "Authentication required"),
        ("/api/user_service/get_user_profile", {"user_id": "2"},
         {"Authorization": "Bearer 1"}, 403, "Permission denied"),
        ("/api/user_service/delete_user", {"user_id": "2"},
         {"Authorization": "Bearer 1:admin"}, 200, None),
    ],
)
async def test_statuses(path: str, body: dict[str, str], headers: dict[str, str], status: int,
                        error: str | None) -> None:
    """Each outcome maps to a fitting HTTP status with the Response as JSON."""
    async with running_app(build_demo_gateway()) as url, httpx.AsyncClient(base_url=url) as c:
        response = await c.post(path, json=body, headers=headers)
    assert response.status_code == status
    data = response.json()
    assert data["error"] == error
    assert data["success"] is (error is None)
    details = data.pop("details", None)  # an error's machine-readable details, if any
    assert len(data) == 7
    if status == 422:
        assert details == {"errors": [{"path": ["user_id"], "message": error}]}


async def test_version_request_id_and_bad_bodies() -> None:
    """?version= picks a version; X-Request-ID is echoed; bad bodies are 400 / 413."""
    registry = Registry(limits=Limits(max_payload_bytes=100))
    gateway = Gateway(SERVICES, registry=registry)
    async with running_app(gateway) as url, httpx.AsyncClient(base_url=url) as c:
        v2 = await c.post("/api/user_service/get_user?version=2.0.0",
                          json={"id": "1", "fields": ["name"]},
                          headers={"X-Request-ID": "abc"})
        assert v2.json()["result"] == {"name": "Alice"}
        assert v2.json()["request_id"] == "abc"
        not_object = await c.post("/api/user_service/get_user", content=b"[1,2]")
        assert not_object.status_code == 400
        too_big = await c.post("/api/user_service/get_user", content=b"{" + b" " * 200 + b"}")
        assert too_big.status_code == 413
        empty = await c.post("/api/user_service/list_users")
        assert empty.status_code == 200


async def test_business_errors_and_internal_errors() -> None:
    """ApiError is 400 with its message; unexpected exceptions are 500 and masked."""
    svc = Service("s")

    @svc.function()
    async def business() -> None:
        raise ApiError("Out of stock")

    @svc.function()
    async def crash() -> None:
        raise RuntimeError("internals")

    async with running_app(Gateway([svc])) as url, httpx.AsyncClient(base_url=url) as c:
        business_response = await c.post("/api/s/business")
        crash_response = await c.post("/api/s/crash")
    assert (business_response.status_code, business_response.json()["error"]) == (
        400, "Out of stock")
    assert (crash_response.status_code, crash_response.json()["error"]) == (
        500, "Internal Server Error")


async def test_healthz() -> None:
    """/healthz answers ok while serving."""
    async with running_app(Gateway(registry=Registry())) as url, \
            httpx.AsyncClient(base_url=url) as c:
        response = await c.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_async_and_stream_over_http() -> None:
    """Async functions answer their final result; streams answer NDJSON lines."""
    import json

    async with running_app(build_demo_gateway()) as url, httpx.AsyncClient(base_url=url) as c:
        report = await c.post("/api/report_service/generate_report", json={"delay_ms": 20})
        assert report.status_code == 200
        assert report.json()["result"]["report_url"].endswith("123.pdf")
        assert report.json()["async"] is False
        stream = await c.post("/api/event_service/stream_events", json={"interval_ms": 1})
        assert stream.headers["content-type"] == "application/x-ndjson"
        lines = [json.loads(line) for line in stream.text.splitlines()]
    assert lines[0]["result"] == "init"
    assert [line["result"]["number"] for line in lines[1:11]] == list(range(1, 11))
    assert lines[-1]["result"] == {"event": "done", "total": 10}
    assert lines[-1]["has_more"] is False
