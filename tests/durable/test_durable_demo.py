"""The demo's durable function: signup_service.welcome sends each welcome email once."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway_helpers import Caller
from tests.support.servers import running_app

from genapi.demo.app import build_demo_gateway
from genapi.demo.signup import demo_durable, outbox_path


async def test_the_demo_welcome_is_durable_and_sent_once(tmp_path: Any) -> None:
    """welcome is acked as stored, answered after its "sending", written once to the
    outbox (a repeated submission answers from the store); a bounced address is dead at
    once; genapi jobs can see it all (the demo's gate allows manage_durable)."""
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    settings = demo_durable(url)
    assert settings.url == url
    gateway = build_demo_gateway(admin_token="demo-admin-token-0123456789",
                                 durable=settings)
    async with running_app(gateway) as base, Caller(base, "7") as user:
        await user.push("w1", "signup_service", "welcome", {"email": "new@example.com",
                                                            "name": "Ada"})
        assert (await user.ack("w1"))["result"]["durable"] == "stored"
        sent = (await user.terminal("w1", timeout=15))["result"]
        assert sent["to"] == "new@example.com" and sent["subject"] == "Welcome, Ada!"
        assert sent["key"] == "7:r:w1" and not sent["already_sent"]
        await user.push("w1", "signup_service", "welcome", {"email": "new@example.com"})
        await user.wait_for(lambda: len(user.terminals("w1")) == 2)
        outbox = await user.call("o1", "signup_service", "outbox")
        assert [m["to"] for m in outbox["result"]] == ["new@example.com"]
        await user.push("b1", "signup_service", "welcome", {"email": "x@bounce.example"})
        bounced = await user.terminal("b1")
        assert bounced["error"] == "Address x@bounce.example does not accept mail"
    assert outbox_path(url).exists()
    await asyncio.sleep(0)
