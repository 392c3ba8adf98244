"""Completion webhooks: signed, retried with backoff, delivered to a real local HTTP server
(loopback allowed by configuration in these tests only), and the SSRF guard's refusals."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request as HttpRequest
from starlette.responses import Response as HttpResponse
from starlette.routing import Route
from tests.support.servers import free_port, running_app

from genapi import ApiError, DurableInfo, DurableSettings, Service, WebhookSettings
from genapi.durable import (
    WEBHOOK_SERVICE,
    CallState,
    DurableCalls,
    StoredCall,
    sign_webhook,
    verify_webhook,
)
from genapi.durable.webhook import WebhookGuard, WebhookSender, address_problem
from genapi.errors import WebhookFailed, WebhookRefused
from genapi.execution.executor import Executor
from genapi.functions.registry import Registry
from genapi.messages import Request

SECRET = "whsec-0123456789abcdef"


class Receiver:
    """A webhook receiver: answers each request with the next status of ``statuses``
    (the last one repeats) and records what it got."""

    def __init__(self, statuses: list[int], location: str | None = None) -> None:
        self.statuses = statuses
        self.location = location
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.app = Starlette(routes=[Route("/hook", self.hook, methods=["POST"]),
                                     Route("/", self.hook, methods=["GET", "POST"])])

    async def hook(self, request: HttpRequest) -> HttpResponse:
        self.got.append((dict(request.headers), await request.body()))
        status = self.statuses[min(len(self.got), len(self.statuses)) - 1]
        headers = {"location": self.location} if self.location and 300 <= status < 400 else {}
        return HttpResponse(b"x" * 100_000, status_code=status, headers=headers)


@pytest.fixture
async def receiver() -> AsyncIterator[Callable[..., Any]]:
    running: list[Any] = []

    async def start(statuses: list[int], location: str | None = None) -> tuple[str, Receiver]:
        made = Receiver(statuses, location)
        server = running_app(made.app, driver="asgi")
        url = await server.__aenter__()
        running.append(server)
        return url, made

    yield start
    for server in reversed(running):
        await server.__aexit__(None, None, None)


async def engine(store_url: str, backend: str, service: Service,
                 webhook: WebhookSettings, *, run_workers: bool = True) -> DurableCalls:
    registry = Registry()
    registry.add_service(service)
    options: dict[str, Any] = ({"poll_s": 0.02} if backend == "sqlite"
                               else {"min_connections": 1, "max_connections": 4})
    calls = DurableCalls(Executor(registry), DurableSettings(
        url=store_url, poll_interval=0.05, lease_s=5.0, webhook=webhook,
        store_options=options, run_workers=run_workers))
    await calls.start()
    return calls


def fast_webhooks(**options: Any) -> WebhookSettings:
    from genapi.durable import Backoff, Jitter

    return WebhookSettings(**{"secret": SECRET, "allow_networks": ("127.0.0.0/8",),
                              "backoff": Backoff(base_s=0.05, max_s=0.1, jitter=Jitter.NONE),
                              "max_attempts": 4, "timeout_s": 5.0, **options})


def hooked_service(url: str, *, fail: bool = False) -> Service:
    service = Service("shop", response_type="async", durable=True, webhook=url,
                      max_attempts=1)

    @service.function()
    async def order(item: str, durable: DurableInfo) -> dict[str, Any]:
        if fail:
            raise ApiError("Out of stock")
        return {"item": item, "attempt": durable.attempt}

    return service


async def webhook_jobs(calls: DurableCalls, request_id: str = "r1",
                       timeout: float = 10.0) -> list[StoredCall]:
    """The webhook jobs of ``request_id``'s call, once all are settled."""
    deadline = time.monotonic() + timeout
    while True:
        jobs = [j for j in await calls.store.list_calls(service=WEBHOOK_SERVICE)
                if j.request_id == request_id]
        if jobs and all(j.state.terminal for j in jobs):
            return jobs
        assert time.monotonic() < deadline, f"webhook jobs: {jobs}"
        await asyncio.sleep(0.05)


async def submit(calls: DurableCalls, request_id: str = "r1") -> None:
    response = await calls.executor.execute(Request(
        request_id=request_id, service="shop", request_type="order",
        args={"item": "tea"}, user_id="alice"))
    assert response is not None and response.result["durable"] == "stored"


async def test_a_finished_call_is_posted_signed_and_retried(
        store_url: str, backend: str, receiver: Any) -> None:
    """The receiver fails twice (503, 500) then accepts: three signed POSTs of the same
    delivery, the body describing the finished call; the webhook job ends succeeded."""
    base, got = await receiver([503, 500, 204])
    calls = await engine(store_url, backend, hooked_service(f"{base}/hook?src=genapi"),
                         fast_webhooks())
    try:
        await submit(calls)
        [job] = await webhook_jobs(calls)
        assert job.state is CallState.SUCCEEDED and job.attempts == 3
        assert job.result == {"status": 204}
    finally:
        await calls.aclose()
    assert len(got.got) == 3
    deliveries = {headers["x-genapi-delivery"] for headers, _ in got.got}
    assert deliveries == {job.id}
    for headers, body in got.got:
        assert headers["content-type"] == "application/json"
        assert headers["host"] == base.removeprefix("http://")
        assert verify_webhook(SECRET, body, headers["x-genapi-timestamp"],
                              headers["x-genapi-signature"])
        assert not verify_webhook("another-secret", body, headers["x-genapi-timestamp"],
                                  headers["x-genapi-signature"])
    import json

    event = json.loads(got.got[0][1])
    assert event["type"] == "durable.call.finished" and event["state"] == "succeeded"
    assert event["result"] == {"item": "tea", "attempt": 1}
    assert event["request_id"] == "r1" and event["user_id"] == "alice"
    assert got.got[0][0]["x-genapi-call-id"] == event["call_id"]


async def test_a_dead_call_is_posted_with_its_error(store_url: str, backend: str,
                                                   receiver: Any) -> None:
    """A call that dies is reported too (state dead, the caller's error)."""
    base, got = await receiver([200])
    calls = await engine(store_url, backend, hooked_service(f"{base}/hook", fail=True),
                         fast_webhooks())
    try:
        await submit(calls)
        [job] = await webhook_jobs(calls)
        assert job.state is CallState.SUCCEEDED
    finally:
        await calls.aclose()
    import json

    event = json.loads(got.got[0][1])
    assert event["state"] == "dead" and event["error"] == "Out of stock"
    assert event["result"] is None


async def test_a_call_whose_worker_was_lost_on_its_last_attempt_gets_its_webhook(
        store_url: str, backend: str, receiver: Any) -> None:
    """A gateway took the call's last attempt and died: the next claim ends it dead (its
    lease expired) and, although no worker ran it, its webhook is sent."""
    base, got = await receiver([200])
    service = hooked_service(f"{base}/hook")
    crashed = await engine(store_url, backend, service, fast_webhooks(), run_workers=False)
    try:
        await submit(crashed)
        [taken] = await crashed.store.claim("lost-gateway", limit=10, lease_s=0.05)
        assert taken.request_id == "r1"
    finally:
        await crashed.aclose()
    await asyncio.sleep(0.1)  # the lost gateway's lease expires
    calls = await engine(store_url, backend, hooked_service(f"{base}/hook"), fast_webhooks())
    try:
        [job] = await webhook_jobs(calls)
        assert job.state is CallState.SUCCEEDED
    finally:
        await calls.aclose()
    import json

    event = json.loads(got.got[0][1])
    assert event["state"] == "dead"
    assert event["error"] == "lease expired on the last attempt (worker lost)"


async def test_a_redirect_is_not_followed(store_url: str, backend: str,
                                          receiver: Any) -> None:
    """A receiver redirecting (here to another local server, as it could to a private
    address) ends the delivery dead at once; the redirect's target gets nothing."""
    target, hit = await receiver([200])
    base, got = await receiver([302], location=f"{target}/")
    calls = await engine(store_url, backend, hooked_service(f"{base}/hook"),
                         fast_webhooks())
    try:
        await submit(calls)
        [job] = await webhook_jobs(calls)
        assert job.state is CallState.DEAD and job.attempts == 1
        assert "redirects are not followed" in (job.last_error or "")
    finally:
        await calls.aclose()
    assert len(got.got) == 1 and hit.got == []


async def test_without_allowing_loopback_the_guard_refuses_it(
        store_url: str, backend: str, receiver: Any) -> None:
    """With no network allowed, a webhook to 127.0.0.1 is refused before any connection
    (dead at once, the reason kept); without a secret, nothing is sent either."""
    base, got = await receiver([200])
    for settings, reason in ((fast_webhooks(allow_networks=()), "loopback"),
                             (fast_webhooks(secret=None), "no webhook secret")):
        calls = await engine(store_url, backend, hooked_service(f"{base}/hook"), settings)
        try:
            await submit(calls, request_id=reason)
            [job] = await webhook_jobs(calls, reason)
            assert job.state is CallState.DEAD and job.attempts == 1
            assert reason in (job.last_error or "")
        finally:
            await calls.aclose()
    assert got.got == []


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.8.9.10", "10.0.0.1", "10.255.1.2", "172.16.0.1", "192.168.1.1",
    "169.254.169.254", "100.100.100.200", "0.0.0.0", "224.0.0.1", "239.1.2.3",
    "240.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fd00:ec2::254", "fc00::1",
    "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
    "::127.0.0.1", "::8.8.8.8", "2002:a00:1::", "2002:7f00:1::", "64:ff9b::a00:1",
    "64:ff9b::7f00:1", "2001:0:4136:e378:8000:63bf:f5ff:fffe",
])
def test_the_guard_refuses_private_and_special_addresses(address: str) -> None:
    """Private, loopback, link-local (metadata), shared, multicast, reserved and
    unspecified addresses are refused, also inside IPv6 (mapped, compatible, 6to4,
    NAT64, Teredo)."""
    assert address_problem(address) is not None


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "93.184.216.34",
                                     "2001:4860:4860::8888", "2606:4700:4700::1111"])
def test_the_guard_allows_public_addresses(address: str) -> None:
    """Globally routable unicast addresses pass."""
    assert address_problem(address) is None


def test_allowed_networks_let_private_addresses_through() -> None:
    """A configured network is allowed although private; others still are not."""
    allowed = [ipaddress.ip_network("10.1.0.0/16"), ipaddress.ip_network("::1/128")]
    assert address_problem("10.1.2.3", allowed) is None
    assert address_problem("::1", allowed) is None
    assert address_problem("10.2.0.1", allowed) is not None
    assert address_problem("127.0.0.1", allowed) is not None


@pytest.mark.parametrize(("url", "reason"), [
    ("ftp://example.com/hook", "http:// or https://"),
    ("http://127.0.0.1/hook", "loopback"),
    ("http://10.0.0.1:8080/hook", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[::1]:8080/hook", "loopback"),
    ("http://[::ffff:a00:1]/hook", "private"),
    ("http://localhost:9/hook", "loopback"),
    ("https://user:pw@example.com/hook", "credentials"),
    ("http:///hook", "with a host"),
])
async def test_the_guard_refuses_urls(url: str, reason: str) -> None:
    """Bad schemes, credentials, private addresses and hostnames resolving to them are
    refused before any connection."""
    with pytest.raises(WebhookRefused, match=reason):
        await WebhookGuard().check(url)


async def test_the_guard_connects_to_the_checked_address() -> None:
    """The target keeps the host for the Host header (and TLS) but connects to the
    address that was checked."""
    target = await WebhookGuard(["127.0.0.0/8"]).check("https://localhost:8443/a?b=1")
    assert str(target.address) == "127.0.0.1"
    assert target.url == "https://127.0.0.1:8443/a?b=1"
    assert target.host_header == "localhost:8443"
    literal = await WebhookGuard(["::1/128"]).check("http://[::1]/x")
    assert literal.url == "http://[::1]:80/x" and literal.host_header == "[::1]"


async def test_an_unreachable_receiver_is_a_retryable_failure() -> None:
    """Nothing listening: a retryable WebhookFailed (the job is retried)."""
    sender = WebhookSender(WebhookSettings(secret=SECRET, allow_networks=("127.0.0.0/8",),
                                           timeout_s=2.0))
    with pytest.raises(WebhookFailed) as failed:
        await sender.send(f"http://127.0.0.1:{free_port()}/hook", {"x": 1}, call_id="c",
                          delivery_id="d")
    assert failed.value.can_retry


def test_signatures() -> None:
    """The signature covers the timestamp and the body; stale or tampered ones fail."""
    body = b'{"call_id":"c1"}'
    now = 1_700_000_000
    signature = sign_webhook(SECRET, now, body)
    assert signature.startswith("v1=") and len(signature) == 67
    assert verify_webhook(SECRET, body, str(now), signature, now=now + 10)
    assert not verify_webhook(SECRET, body + b" ", now, signature, now=now)
    assert not verify_webhook(SECRET, body, now + 1, signature, now=now)
    assert not verify_webhook(SECRET, body, now, signature, now=now + 301)
    assert not verify_webhook(SECRET, body, "soon", signature, now=now)
