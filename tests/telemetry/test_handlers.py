"""Offloading handler, attach helpers, the default logger, and the catalogue."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import pytest

import genapi
from genapi import Executor, Registry, Request, Service
from genapi.telemetry.events import Telemetry, list_events
from genapi.telemetry.handlers import (
    CATEGORIES,
    OffloadingHandler,
    OffloadSlot,
    attach_all,
    attach_category,
    attach_default_logger,
    attach_executor,
    logging_handler,
)


async def test_slow_handler_does_not_slow_calls() -> None:
    """A handler sleeping 100 ms per event, offloaded, leaves calls running at full speed."""
    handled: list[str] = []

    def slow(event: str, m: Any, md: Any) -> None:
        time.sleep(0.1)
        handled.append(event)

    tel = Telemetry()
    offloaded = OffloadingHandler(slow, max_queue=1000)
    attach_executor("slow", offloaded, tel)
    svc = Service("svc")

    @svc.function()
    async def ping() -> str:
        return "pong"

    registry = Registry(telemetry=tel)
    registry.add_service(svc)
    executor = Executor(registry)
    for i in range(50):
        response = await executor.execute(Request(request_id=str(i), service="svc",
                                                  request_type="ping"))
        assert response is not None and response.success
    # 50 calls emitted 100 events; had the handler run inline they would have taken 10 s
    assert len(handled) < 100
    assert offloaded.pending + len(handled) >= 95
    offloaded.close(timeout=0.01)


def test_bounded_queue_drops_and_counts() -> None:
    """Past max_queue events are dropped and counted, never blocking the emitter."""
    release = threading.Event()

    def blocked(event: str, m: Any, md: Any) -> None:
        release.wait(5)

    handler = OffloadingHandler(blocked, max_queue=3)
    for i in range(10):
        handler(f"e{i}", {}, {})
    time.sleep(0.05)
    assert handler.dropped >= 6
    release.set()
    assert handler.flush(timeout=5)
    handler.close()
    assert handler.handled + handler.dropped == 10


def test_flush_on_close_and_failures_counted() -> None:
    """close() handles what is queued; a failing handler is counted, not fatal."""
    seen: list[str] = []

    def picky(event: str, m: Any, md: Any) -> None:
        if event == "bad":
            raise ValueError("nope")
        seen.append(event)

    handler = OffloadingHandler(picky)
    for event in ("a", "bad", "b"):
        handler(event, {}, {})
    handler.close()
    assert seen == ["a", "b"]
    assert handler.failed == 1


def test_category_helpers() -> None:
    """Category helpers attach to every catalogued event of their category."""
    tel = Telemetry()
    attach_category("c", "worker_pool", lambda e, m, md: None, tel)
    assert tel.has_handlers("worker_pool.task.start")
    assert not tel.has_handlers("executor.request.stop")
    attach_all("all", lambda e, m, md: None, tel)
    assert tel.has_handlers("connection.open")
    with pytest.raises(ValueError, match="unknown category"):
        attach_category("x", "nope", lambda e, m, md: None, tel)


def test_default_logger(caplog: pytest.LogCaptureFixture) -> None:
    """The default logger logs events (offloaded) at the chosen level."""
    tel = Telemetry()
    attach_default_logger(telemetry=tel, level=logging.INFO)
    with caplog.at_level(logging.INFO, "genapi.events"):
        tel.emit("config.add", {}, {"service": "s"})
        handler = tel._by_event["config.add"][0][1]  # the offloading wrapper
        assert isinstance(handler, OffloadingHandler)
        handler.flush(5)
    assert "config.add" in caplog.text
    log = logging_handler(level=logging.DEBUG)
    log("x", {}, {})  # no error when the level is disabled


def test_catalogue_covers_every_category() -> None:
    """The catalogue has events of every category, each documented."""
    # Events register when their module loads; `import genapi` leaves NATS (and so the
    # cluster's node.* events) out, so this test must not depend on an earlier test's imports.
    import genapi.cluster.sync

    specs = list_events()
    assert {spec.category for spec in specs} >= set(CATEGORIES) - {"relay"}
    assert all(spec.description for spec in specs)
    names = {spec.name for spec in specs}
    assert {"connection.open", "connection.close", "connection.slow_consumer_closed",
            "executor.cancel", "node.up", "node.down", "worker_pool.task.rejected",
            "rate_limiter.exceeded", "hook.before.exception", "config.push"} <= names
    assert genapi.list_events() == specs


async def test_connection_events() -> None:
    """The gateway reports connections opening and closing."""
    import websockets

    from tests.gateway.conftest import ws_url
    from tests.support.servers import running_app

    events: list[tuple[str, dict[str, Any]]] = []
    tel = Telemetry()
    attach_category("c", "connection", lambda e, m, md: events.append((e, dict(md))), tel)
    gateway = genapi.Gateway(registry=Registry(telemetry=tel))
    async with running_app(gateway) as url:
        async with websockets.connect(ws_url(url)):
            pass
        await asyncio.sleep(0.1)
    assert [e for e, _ in events] == ["connection.open", "connection.close"]
    assert events[1][1]["ip_address"] == "127.0.0.1"


def test_offload_slot_remakes_its_handler_and_keeps_the_drops() -> None:
    """An OffloadSlot opens a handler on demand, anew after close, summing their drops."""
    release = threading.Event()
    seen: list[str] = []

    def blocked(event: str, m: Any, md: Any) -> None:
        release.wait(5)
        seen.append(event)

    slot = OffloadSlot(blocked, name="test-slot")
    assert slot.flush(0.1) and slot.dropped == 0  # nothing opened yet
    first = slot.open()
    assert slot.open() is first
    first.max_queue = 1
    for i in range(5):
        first(f"e{i}", {}, {})
    time.sleep(0.05)
    release.set()
    assert slot.flush(5)
    dropped = slot.dropped
    assert dropped >= 3 and len(seen) + dropped == 5
    slot.close()
    assert slot.handler is None
    second = slot.open()
    assert second is not first
    second("again", {}, {})
    slot.close()
    assert seen[-1] == "again"
    assert slot.dropped == dropped
