"""The demo's durable function: ``signup_service.welcome`` "sends" a welcome email that must
not be lost, even when the gateway crashes while sending it.

The call is stored before its ack (SQLite, a file in the temp directory, so it survives a
restart of ``genapi demo``), run by the gateway's workers, retried with backoff when it
fails, and its result reaches the caller when they are connected (or come back). The
"email" takes two seconds to send — time enough to kill the gateway mid-call — and goes
to an outbox file; the function uses its idempotency key to write each email once, so a
run repeated after a crash does not send it twice (at-least-once execution, exactly-once
effect). ``signup_service.outbox`` lists what was sent.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ..durable import DurableSettings
from ..errors import ApiError
from ..functions.service import Service
from ..messages import DurableInfo

__all__ = ["DEMO_STORE", "demo_durable", "outbox_path", "signup_service", "use_outbox"]

#: The demo's store: a SQLite file kept across restarts (``GENAPI_DEMO_DURABLE_URL``
#: replaces it).
DEMO_STORE = Path(tempfile.gettempdir()) / "genapi-demo-durable.db"

signup_service = Service("signup_service")


def demo_durable(url: str | None = None) -> DurableSettings:
    """The demo's durable settings: its SQLite file, short leases (a crashed demo's calls
    run again within seconds)."""
    url = url or os.environ.get("GENAPI_DEMO_DURABLE_URL") or f"sqlite:///{DEMO_STORE}"
    return DurableSettings(url=url, lease_s=10.0, poll_interval=0.5, workers=8)


def outbox_path(store_url: str) -> Path:
    """Where the demo writes its "sent" emails: beside a SQLite store, else in the temp
    directory."""
    if store_url.startswith("sqlite:///") and ":memory:" not in store_url:
        return Path(store_url.removeprefix("sqlite:///")).with_suffix(".outbox.jsonl")
    return Path(tempfile.gettempdir()) / "genapi-demo-outbox.jsonl"


_OUTBOX: list[Path] = [outbox_path(f"sqlite:///{DEMO_STORE}")]


def use_outbox(path: Path) -> None:
    """Send the demo's emails to ``path`` (the demo gateway sets it from its store)."""
    _OUTBOX[0] = path


def _sent() -> list[dict[str, Any]]:
    path = _OUTBOX[0]
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@signup_service.function(response_type="async", durable=True, max_attempts=5,
                         durable_backoff={"base_s": 1.0, "max_s": 30.0}, timeout=30_000)
async def welcome(email: str, name: str = "", *, durable: DurableInfo) -> dict[str, Any]:
    """Send a welcome email to a new customer — exactly once, whatever crashes.

    An address ending in ``@fail.example`` fails every attempt (to watch retries and a
    dead call); ``@bounce.example`` is refused at once (not retried).
    """
    if email.endswith("@bounce.example"):
        raise ApiError(f"Address {email} does not accept mail")
    for sent in _sent():
        if sent["key"] == durable.idempotency_key:  # sent by an earlier attempt
            return {**sent, "attempt": durable.attempt, "already_sent": True}
    await asyncio.sleep(2.0)  # "talking to the mail server": kill the gateway now
    if email.endswith("@fail.example"):
        raise ConnectionError("mail server unreachable")
    record = {"to": email, "subject": f"Welcome{', ' + name if name else ''}!",
              "key": durable.idempotency_key, "attempt": durable.attempt}
    with _OUTBOX[0].open("a") as out:
        out.write(json.dumps(record) + "\n")
    return {**record, "already_sent": False}


@signup_service.function()
async def outbox() -> list[dict[str, Any]]:
    """The welcome emails sent so far (the demo's outbox file)."""
    return _sent()
