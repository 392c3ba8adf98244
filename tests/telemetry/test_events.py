"""Telemetry core."""

from __future__ import annotations

from typing import Any

import genapi
from genapi.telemetry.events import Telemetry, list_events


def test_attach_emit_detach() -> None:
    """Handlers receive events they attached to, until detached."""
    tel = Telemetry()
    seen: list[Any] = []
    tel.attach("h", ["a.b"], lambda e, m, md: seen.append((e, m, md)))
    tel.emit("a.b", {"n": 1}, {"k": "v"})
    tel.emit("other", {}, {})
    assert seen == [("a.b", {"n": 1}, {"k": "v"})]
    assert tel.has_handlers("a.b")
    assert not tel.has_handlers("other")
    assert tel.handled == {"a.b"}
    assert tel.detach("h")
    assert tel.handled == frozenset()
    assert not tel.detach("h")
    tel.emit("a.b")
    assert len(seen) == 1


def test_patterns_expand_to_catalogued_events() -> None:
    """'executor.*' attaches to every catalogued executor event."""
    tel = Telemetry()
    tel.attach("h", "executor.*", lambda e, m, md: None)
    assert tel.has_handlers("executor.request.start")
    assert tel.has_handlers("executor.request.stop")
    assert not tel.has_handlers("config.add")


def test_reattach_replaces() -> None:
    """Attaching the same id again replaces the previous handler."""
    tel = Telemetry()
    seen: list[str] = []
    tel.attach("h", "x", lambda e, m, md: seen.append("first"))
    tel.attach("h", "x", lambda e, m, md: seen.append("second"))
    tel.emit("x")
    assert seen == ["second"]
    assert tel.handler_ids() == ["h"]


def test_catalogue() -> None:
    """list_events describes each event with measurements and metadata."""
    names = {spec.name: spec for spec in list_events()}
    assert {"executor.request.start", "executor.request.stop", "executor.request.exception",
            "config.add", "config.delete"} <= set(names)
    stop = names["executor.request.stop"]
    assert "duration_us" in stop.measurements
    assert {"service", "request_type", "success"} <= set(stop.metadata)
    assert stop.category == "executor"
    assert genapi.list_events() == list_events()
