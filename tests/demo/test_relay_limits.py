"""``genapi demo --relay-max-members``: the flag reaches the demo's relay, and the limit
counts receivers (the sender is not a receiver slot)."""

from __future__ import annotations

from typing import Any

import pytest

from genapi import ApiError
from genapi.cli.main import RELAY_MAX_MEMBERS
from genapi.cli.main import main as genapi_main
from genapi.demo import app as demo_app
from genapi.relay import PRESENCE_REQUEST_ID, RelayLimits
from genapi.testing import InProcessGateway


def test_the_flag_gives_the_demo_its_relay_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """--relay-max-members N builds the demo gateway with RelayLimits(max_members=N); the
    default is RelayLimits' own."""
    built: list[dict[str, Any]] = []

    def build(**options: Any) -> str:
        built.append(options)
        return "gateway"

    monkeypatch.setattr(demo_app, "build_demo_gateway", build)
    monkeypatch.setattr("genapi.gateway.serve.serve", lambda *a, **k: None)
    for argv in (["demo", "--relay-max-members", "5000"], ["demo"]):
        with pytest.raises(SystemExit) as done:  # click's standalone mode exits
            genapi_main(argv)
        assert done.value.code == 0
    assert built[0]["relay_limits"] == RelayLimits(max_members=5000)
    assert built[1]["relay_limits"] == RelayLimits()
    assert RelayLimits().max_members == RELAY_MAX_MEMBERS
    with pytest.raises(SystemExit) as refused:
        genapi_main(["demo", "--relay-max-members", "0"])
    assert refused.value.code == 2  # a usage error: at least 1


async def test_a_demo_group_holds_a_sender_and_max_members_receivers() -> None:
    """With max_members=2 the lobby takes three members; a message from one reaches the
    two others; the fourth is refused."""
    gateway = demo_app.build_demo_gateway(relay_limits=RelayLimits(max_members=2))
    async with InProcessGateway(gateway) as api:
        clients = [await api.connect(user_id=name) for name in ("a", "b", "c", "d")]
        for client in clients[:3]:
            await client.call("relay", "join_group", {"group_id": "lobby"})
        with pytest.raises(ApiError) as refused:
            await clients[3].call("relay", "join_group", {"group_id": "lobby"})
        assert refused.value.message == "Group is full (max 2 receivers per message)"
        await clients[0].call("relay", "send_message", {"group_id": "lobby", "message": "hi"})
        for client in clients[1:3]:
            while (push := await client.next_push(10)).request_id == PRESENCE_REQUEST_ID:
                pass
            assert push.result["message"] == "hi"
