"""Declaring durable functions and configuring durable calls: what is accepted, what is
refused (with ConfigError saying why), and what crosses the wire."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from genapi import (
    ConfigError,
    DecodeError,
    DurableInfo,
    DurableSettings,
    FunConfig,
    Service,
    WebhookSettings,
)
from genapi.cluster.codec import export_route, import_config
from genapi.durable import Backoff, Jitter, NewCall, client_idempotency_key
from genapi.durable import default_idempotency_key as default_key
from genapi.durable.engine import backoff_of
from genapi.execution.executor import Executor
from genapi.functions.config import fun_config_problems
from genapi.functions.registry import Registry
from genapi.messages import Request, decode_request


async def _noop(x: int) -> int:
    return x


def config(**options: Any) -> FunConfig:
    return FunConfig(service="s", request_type="f", function=_noop, **options)


def test_a_durable_function_is_async_or_fire_and_forget() -> None:
    """durable=True with response_type async or none is valid; sync and stream are not."""
    assert fun_config_problems(config(durable=True, response_type="async")) == []
    assert fun_config_problems(config(durable=True, response_type="none")) == []
    for kind in ("sync", "stream"):
        assert fun_config_problems(config(durable=True, response_type=kind)) == [
            'durable functions must have response_type "async" or "none"']


@pytest.mark.parametrize(("options", "problem"), [
    ({"max_attempts": 0}, "max_attempts must be an integer from 1 to 1000"),
    ({"max_attempts": 1001}, "max_attempts must be an integer from 1 to 1000"),
    ({"durable_backoff": {"base": 1}}, "durable_backoff has unknown keys: base"),
    ({"durable_backoff": {"base_s": 5, "max_s": 1}}, "0 < base_s <= max_s"),
    ({"durable_backoff": {"base_s": 0}}, "0 < base_s <= max_s"),
    ({"durable_backoff": {"jitter": "some"}}, "jitter must be one of none, full"),
    ({"durable_backoff": 3}, "durable_backoff must be None, a dict"),
    ({"webhook": "ftp://example.com/x"}, "must be an http:// or https:// URL"),
    ({"webhook": "https://u:p@example.com/x"}, "must not carry credentials"),
    ({"webhook": "https://example.com:99999/x"}, "is not a valid URL"),
    ({"webhook": "https://example.com/" + "x" * 2100}, "at most 2048 characters"),
    ({"durable": "yes"}, "durable must be a bool"),
])
def test_bad_durable_settings_are_refused(options: dict[str, Any], problem: str) -> None:
    """Each bad setting is named."""
    options = {"durable": True, "response_type": "async", **options}
    assert any(problem in p for p in fun_config_problems(config(**options))), (
        fun_config_problems(config(**options)))


def test_durable_options_need_durable() -> None:
    """max_attempts, durable_backoff and webhook on a function that is not durable are a
    mistake, not silently ignored."""
    for options in ({"max_attempts": 3}, {"durable_backoff": {"base_s": 1}},
                    {"webhook": "https://example.com/h"}):
        assert fun_config_problems(config(response_type="async", **options)) == [
            "max_attempts, durable_backoff and webhook need durable=True"]


def test_the_decorator_passes_durable_options_through() -> None:
    """@service.function(durable=True, …) and Service defaults set the config fields; a
    registry refuses a bad one with ConfigError."""
    service = Service("signup", response_type="async", durable=True)

    @service.function(max_attempts=7, durable_backoff=Backoff(base_s=2, max_s=20),
                      webhook="https://hooks.example.com/done")
    async def welcome(email: str) -> None: ...

    [made] = service.fun_configs
    assert made.durable and made.max_attempts == 7
    assert made.webhook == "https://hooks.example.com/done"
    Registry().add_service(service)
    bad = Service("bad", durable=True)
    bad.add(_noop, "f")  # sync by default
    with pytest.raises(ConfigError, match="durable functions must have response_type"):
        Registry().add_service(bad)


def test_backoff_settings_become_the_stored_policy() -> None:
    """None, a mapping and a Backoff all give the Backoff stored with each call."""
    assert backoff_of(None) == Backoff()
    assert backoff_of({"base_s": 2, "max_s": 9, "jitter": "none"}) == Backoff(
        base_s=2.0, max_s=9.0, jitter=Jitter.NONE)
    policy = Backoff(base_s=3, max_s=4, jitter=Jitter.DECORRELATED)
    assert backoff_of(policy) is policy


def test_a_pushed_durable_config_keeps_its_durability() -> None:
    """A node's durable function reaches gateways durable (settings included); other
    functions' exports carry no durable keys (older gateways accept them)."""
    registry = Registry()
    registry.add(config(durable=True, response_type="async", max_attempts=4,
                        durable_backoff=Backoff(base_s=2, max_s=8),
                        webhook="https://h.example.com/x"))
    exported = export_route(registry.get_route("s", "f"))  # type: ignore[arg-type]
    assert exported["durable_backoff"] == {"base_s": 2.0, "max_s": 8.0, "jitter": "full"}
    imported = import_config(msgspec.json.decode(msgspec.json.encode(exported)),
                             service="s", nodes=lambda: ["n1"])
    assert imported.durable and imported.max_attempts == 4
    assert imported.webhook == "https://h.example.com/x"
    assert fun_config_problems(imported) == []
    plain = Registry()
    plain.add(config())
    assert "durable" not in export_route(plain.get_route("s", "f"))  # type: ignore[arg-type]


def test_settings_are_checked() -> None:
    """DurableSettings and WebhookSettings refuse nonsense; the secret is never shown."""
    for bad in ({"workers": 0}, {"batch": 1.5}, {"lease_s": 0}, {"url": ""},
                {"service": ""}, {"poll_interval": -1}):
        with pytest.raises(ConfigError):
            DurableSettings(**bad)
    for bad_hook in ({"secret": ""}, {"allow_networks": "10.0.0.0/8"},
                     {"allow_networks": ("nope",)}, {"timeout_s": 0},
                     {"max_attempts": 0}):
        with pytest.raises(ConfigError):
            WebhookSettings(**bad_hook)
    assert "s3cret" not in repr(WebhookSettings(secret="s3cret"))
    with pytest.raises(ConfigError):
        NewCall(id="1", service="s", request_type="f", request_id="r", max_attempts=0)


def test_the_idempotency_key_comes_from_the_payload_and_is_bounded() -> None:
    """A payload's idempotency_key reaches the Request (1..255 characters); durable info
    in a payload is ignored (only workers set it)."""
    request = decode_request(b'{"request_id":"r","service":"s","request_type":"f",'
                             b'"idempotency_key":"order-1",'
                             b'"durable":{"call_id":"x","attempt":9,"max_attempts":9}}',
                             user_id="u")
    assert request.idempotency_key == "order-1" and request.durable is None
    for key in ("", "k" * 256):
        payload = msgspec.json.encode({"request_id": "r", "service": "s",
                                       "request_type": "f", "idempotency_key": key})
        with pytest.raises(DecodeError, match="idempotency_key"):
            decode_request(payload)


def test_keys_are_scoped_by_caller() -> None:
    """Default and client keys never meet, and a user id with colons cannot pose as
    another user's scope."""
    assert default_key("alice", "r1") == "alice:r:r1"
    assert client_idempotency_key("alice", "r1") == "alice:k:r1"
    assert default_key(None, "r1") == ":r:r1"
    assert default_key("a:r:b", "c") != default_key("a", "b:r:c")
    assert default_key("a%3A", "x") != default_key("a:", "x")


async def test_durable_info_is_none_outside_durable_runs() -> None:
    """A function asking for DurableInfo gets None when called some other way (a plain
    async function here), and the request's durable info when a worker runs it."""
    seen: list[Any] = []

    async def probe(durable: DurableInfo) -> None:
        seen.append(durable)

    registry = Registry()
    registry.add(FunConfig(service="s", request_type="p", function=probe))
    executor = Executor(registry)
    await executor.execute(Request(request_id="r", service="s", request_type="p"))
    info = DurableInfo(call_id="c", attempt=2, max_attempts=5, idempotency_key="u:r:r")
    await executor.execute(Request(request_id="r", service="s", request_type="p",
                                   durable=info))
    assert seen == [None, info]
    await executor.aclose()
