"""genapi.testing.TestClient: the blocking client, for tests that are not async."""

from __future__ import annotations

import pytest

from genapi import ArgumentError, Depends, Gateway, PermissionDenied, Service, UsageError
from genapi.demo.app import build_demo_gateway
from genapi.testing import TestClient


def test_calls_streams_and_other_users() -> None:
    """call, stream, another client with another identity, HTTP requests."""
    with TestClient(build_demo_gateway(), user_id="1", roles=["admin"]) as admin:
        assert admin.call("user_service", "delete_user", {"user_id": "2"}) == {"deleted": "2"}
        ticks = list(admin.stream("event_service", "ticker", {"count": 2, "interval_ms": 1}))
        assert ticks == [{"tick": 1}, {"tick": 2}]
        viewer = admin.connect(user_id="2")
        with pytest.raises(PermissionDenied):
            viewer.call("user_service", "delete_user", {"user_id": "1"})
        with pytest.raises(ArgumentError) as info:
            viewer.call("user_service", "get_user", {})
        assert info.value.details["errors"][0]["path"] == ["user_id"]
        http = admin.request("POST", "/api/user_service/delete_user", json={"user_id": "2"})
        assert http.status_code == 200
        kinds = [r.result for r in admin.responses("event_service", "ticker",
                                                   {"count": 1, "interval_ms": 1})]
        assert kinds == ["init", {"tick": 1}, None]


def test_overrides_and_misuse() -> None:
    """Dependencies can be overridden for a block; methods need the with block."""

    def real() -> str:
        return "real"

    svc = Service("dep")

    @svc.function()
    async def which(value: str = Depends(real)) -> str:
        return value

    client = TestClient(Gateway([svc]))
    with pytest.raises(UsageError):
        client.connect()
    with client:
        assert client.call("dep", "which") == "real"
        with client.override(real, lambda: "fake"):
            assert client.call("dep", "which") == "fake"


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_a_gateway_serves_one_test_client_after_another() -> None:
    """Sequential test clients on one gateway all work (no 503 draining), Starlette's too."""
    from starlette.testclient import TestClient as StarletteTestClient

    gateway = build_demo_gateway()
    for _ in range(2):
        with TestClient(gateway) as client:
            assert client.call("user_service", "list_users")
        with StarletteTestClient(gateway) as http:
            assert http.get("/healthz").json()["status"] == "ok"
            answer = http.post("/api/user_service/get_user", json={"user_id": "1"})
            assert answer.json()["result"]["name"] == "Alice"
