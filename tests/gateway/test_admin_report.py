"""GET /admin/report and genapi report: every section, no secret planted in the config."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import zipfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from genapi import AdminSettings, DurableSettings, Gateway, WebhookSettings
from genapi.cluster.embedded import EmbeddedNats
from genapi.diagnostics.bundle import REPORT_SECTIONS, scrub
from genapi.diagnostics.errorlog import RecentErrors
from genapi.gateway import ClusterOptions, MetricsSettings
from genapi.gateway.auth import JWTAuthenticator
from genapi.security import AdminAction, AdminGate
from tests.support.servers import running_app

ADMIN = "admin-token-abcdefgh1234"
SECRETS = {
    "admin": ADMIN,
    "jwt": "jwt-signing-secret-7890",
    "metrics": "metrics-scrape-token-55",
    "nats_password": "nats-pass-1234",
    "push": "push-token-xyz-9999",
    "postgres_password": "pg-pass-4567",
    "webhook": "webhook-secret-3210",
    "query_token": "query-token-in-a-url-42",
}


@pytest.fixture
def nats_url() -> Iterator[str]:
    """A nats-server (no auth: it accepts the planted user and password)."""
    with EmbeddedNats() as server:
        yield server.url.replace("nats://", f"nats://natsuser:{SECRETS['nats_password']}@")


def planted_gateway(nats_url: str, actions: set[AdminAction] | None = None) -> Gateway:
    """A gateway whose config holds every kind of secret (Postgres unreachable: its
    failures land in the recent errors, with the URL)."""
    return Gateway(
        authenticator=JWTAuthenticator(SECRETS["jwt"]),
        admin=AdminSettings(token=ADMIN, gate=AdminGate(
            actions if actions is not None else {AdminAction.VIEW_DIAGNOSTICS})),
        metrics=MetricsSettings(token=SECRETS["metrics"]),
        cluster=ClusterOptions(nats=nats_url, push_token=SECRETS["push"]),
        durable=DurableSettings(
            url=f"postgresql://genapi:{SECRETS['postgres_password']}@127.0.0.1:1/genapi",
            webhook=WebhookSettings(secret=SECRETS["webhook"])),
    )


@pytest.fixture
async def client(nats_url: str) -> AsyncIterator[httpx.AsyncClient]:
    gateway = planted_gateway(nats_url)
    async with gateway.running():
        assert gateway.cluster is not None
        await gateway.cluster.ready(15)
        logging.getLogger("genapi.test").error(
            "could not reach postgresql://genapi:%s@db/genapi (GET /x?token=%s)",
            SECRETS["postgres_password"], SECRETS["query_token"])
        transport = httpx.ASGITransport(app=gateway)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            yield http


async def test_report_has_every_section_and_no_secret(client: httpx.AsyncClient) -> None:
    response = await client.get("/admin/report", headers={"Authorization": f"Bearer {ADMIN}"})
    assert response.status_code == 200
    report = response.json()
    for section in REPORT_SECTIONS:
        assert section in report, section
    text = response.text
    for name, secret in SECRETS.items():
        assert secret not in text, name
    assert report["config"]["cluster"]["push_token"] == "[redacted]"
    assert report["config"]["durable"]["url"] == (
        "postgresql://genapi:[redacted]@127.0.0.1:1/genapi")
    assert report["config"]["authenticator"] == "JWTAuthenticator"
    assert report["registry"]["count"] >= 1
    assert report["health"]["process"]["rss_bytes"] > 0
    assert "rate_limits" in report["limits"]
    assert report["versions"]["genapi"]
    messages = [r["message"] for r in report["recent_errors"]["records"]]
    assert any("could not reach postgresql://genapi:[redacted]@db" in m for m in messages)


async def test_report_needs_the_token_and_view_diagnostics() -> None:
    gateway = Gateway(admin=AdminSettings(token=ADMIN, gate=AdminGate()))
    async with gateway.running():
        transport = httpx.ASGITransport(app=gateway)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            assert (await http.get("/admin/report")).status_code == 401
            refused = await http.get("/admin/report",
                                     headers={"Authorization": f"Bearer {ADMIN}"})
            assert refused.status_code == 403


async def test_config_routes_outside_a_cluster_answer_409() -> None:
    gateway = Gateway(admin=AdminSettings(token=ADMIN, gate=AdminGate(
        {AdminAction.VIEW_DIAGNOSTICS, AdminAction.PUSH_CONFIG})))
    async with gateway.running():
        transport = httpx.ASGITransport(app=gateway)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            response = await http.get("/admin/config/pushed",
                                      headers={"Authorization": f"Bearer {ADMIN}"})
    assert (response.status_code, response.json()) == (
        409, {"error": "this gateway is not in a cluster"})


def test_scrub() -> None:
    """Secret keys, URL passwords, query tokens, bearer values and known secrets go;
    figures under secret-looking keys and None stay."""
    data = {"push_token": "abc", "tokens": 3, "secret": None, "dsn": "x",
            "url": "redis://:hunter2pw@redis:6379/0",
            "log": "Bearer abc.def and ?access_token=xyz and known-secret-1 inside",
            "nested": [{"Password": "p", "ok": True}], "known-secret-1": 1}
    assert scrub(data, ["known-secret-1", "short"]) == {
        "push_token": "[redacted]", "tokens": 3, "secret": None, "dsn": "[redacted]",
        "url": "redis://:[redacted]@redis:6379/0",
        "log": "Bearer [redacted] and ?access_token=[redacted] and [redacted] inside",
        "nested": [{"Password": "[redacted]", "ok": True}], "[redacted]": 1}


def test_recent_errors_ring_is_bounded() -> None:
    ring = RecentErrors(capacity=3)
    logger = logging.getLogger("genapi.test.ring")
    logger.addHandler(ring)
    try:
        logger.info("not kept")
        for i in range(5):
            logger.warning("w%d ?token=secret-%d", i, i)
    finally:
        logger.removeHandler(ring)
    assert [r["message"] for r in ring.records()] == [
        "w2 ?token=[redacted]", "w3 ?token=[redacted]", "w4 ?token=[redacted]"]
    assert ring.dropped == 2


async def test_genapi_report_writes_a_bundle(tmp_path: Path, nats_url: str) -> None:
    """The CLI writes a .zip of one JSON file per section, without the secrets."""
    gateway = planted_gateway(nats_url)
    async with running_app(gateway) as url:
        assert gateway.cluster is not None
        await gateway.cluster.ready(15)
        env = {**os.environ, "GENAPI_ADMIN_TOKEN": ADMIN}
        target = tmp_path / "bundle.zip"
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "genapi", "report", "--url", url, "--output", str(target),
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert f"wrote {target}" in out.decode()
    with zipfile.ZipFile(target) as bundle:
        names = set(bundle.namelist())
        assert {f"{s}.json" for s in REPORT_SECTIONS} | {"report.json"} <= names
        contents = "".join(bundle.read(n).decode() for n in names)
        health = json.loads(bundle.read("health.json"))
    for name, secret in SECRETS.items():
        assert secret not in contents, name
    assert health["process"]["rss_bytes"] > 0
