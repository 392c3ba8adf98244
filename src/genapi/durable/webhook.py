"""Completion webhooks: signed POSTs of a durable call's terminal result, behind an SSRF guard.

A durable function may name a ``webhook`` (``FunConfig(webhook="https://…")``). When one of
its calls finishes (succeeded, dead or cancelled), the gateway stores a *webhook job* —
itself a durable call of the reserved service :data:`WEBHOOK_SERVICE`, so it survives
crashes, is retried with backoff (:class:`~genapi.durable.WebhookSettings`) and shows in
``genapi jobs`` — and a worker POSTs the JSON body::

    {"type": "durable.call.finished", "call_id": "…", "service": "signup",
     "request_type": "welcome", "request_id": "r1", "user_id": "alice",
     "state": "succeeded", "attempts": 1, "result": {…}, "error": null, "finished_at": …}

with the headers ``Content-Type: application/json``, ``X-Genapi-Timestamp`` (Unix
seconds), ``X-Genapi-Signature`` (``v1=`` and the hex HMAC-SHA256, keyed by the webhook
secret, of ``"<timestamp>." + body``), ``X-Genapi-Call-Id`` and ``X-Genapi-Delivery`` (the
webhook job's id: the same on every retry of one delivery). Receivers check the signature
and the timestamp's age with :func:`verify_webhook`.

The SSRF guard (:class:`WebhookGuard`): only ``http``/``https``; the host is resolved and
*every* address must be public — private, loopback, link-local (cloud metadata at
169.254.169.254), shared (100.64/10), multicast, reserved and unspecified ranges are
refused, IPv4 and IPv6 alike, including IPv4 addresses embedded in IPv6 (mapped,
compatible, 6to4, NAT64, Teredo) — unless a configured network allows them. The request
then connects to the checked address itself (the host goes in the ``Host`` header and
the TLS server name), so a second DNS answer cannot redirect it (no DNS rebinding);
redirects are never followed; proxies from the environment are ignored; the whole
delivery has a deadline and at most ``max_response_bytes`` of the answer are read.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import socket
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from .._version import __version__
from ..errors import WebhookFailed, WebhookRefused
from ..functions.config import webhook_problem
from .calls import StoredCall
from .results import client_error
from .settings import WebhookSettings
from .states import CallState

__all__ = [
    "WEBHOOK_SERVICE",
    "Target",
    "WebhookGuard",
    "WebhookSender",
    "address_problem",
    "sign_webhook",
    "verify_webhook",
    "webhook_body",
]

#: The reserved service of webhook jobs (no client can call it: it is not in a registry).
WEBHOOK_SERVICE: Final = "genapi.webhook"
WEBHOOK_REQUEST_TYPE: Final = "deliver"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_V4_COMPATIBLE = ipaddress.ip_network("::/96")
_encoder = msgspec.json.Encoder()


def sign_webhook(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Genapi-Signature`` value of ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify_webhook(secret: str, body: bytes, timestamp: str | int, signature: str, *,
                   tolerance_s: float = 300.0, now: float | None = None) -> bool:
    """True when ``signature`` signs ``body`` at ``timestamp`` with ``secret`` and the
    timestamp is within ``tolerance_s`` of ``now`` (a receiver's check; replays of an old
    delivery fail it)."""
    try:
        stamp = int(timestamp)
    except (TypeError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - stamp) > tolerance_s:
        return False
    return hmac.compare_digest(sign_webhook(secret, stamp, body), signature)


def webhook_body(call: StoredCall, *, detail: bool = False) -> dict[str, Any]:
    """What a webhook receives about a finished call."""
    error = None
    if call.state is CallState.DEAD:
        error = client_error(call.last_error, detail=detail)
    elif call.state is CallState.CANCELLED:
        error = "Cancelled"
    return {"type": "durable.call.finished", "call_id": call.id, "service": call.service,
            "request_type": call.request_type, "request_id": call.request_id,
            "user_id": call.user_id, "state": call.state.value, "attempts": call.attempts,
            "result": call.result if call.state is CallState.SUCCEEDED else None,
            "error": error, "finished_at": call.finished_at}


# -- the guard ---------------------------------------------------------------------------


def _embedded_v4(ip: IPAddress) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses carried inside an IPv6 one (each reaches that IPv4 host)."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.append(ip.teredo[1])
    if any(ip in net for net in _NAT64) or (ip in _V4_COMPATIBLE and int(ip) > 1):
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF))
    return found


def address_problem(address: str | IPAddress,
                    allowed: Iterable[IPNetwork] = ()) -> str | None:
    """Why a webhook may not connect to ``address`` (None when it may).

    Allowed: globally routable unicast addresses, and any address inside an ``allowed``
    network. Refused: everything else (see the module docs).
    """
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if any(ip in net for net in allowed if net.version == ip.version):
        return None
    for candidate in (*_embedded_v4(ip), ip):  # the IPv4 inside names the real target
        if candidate.is_multicast:
            return f"{ip} is a multicast address"
        if candidate.is_loopback:
            return f"{ip} is a loopback address"
        if candidate.is_link_local:
            return f"{ip} is a link-local (metadata) address"
        if candidate.is_unspecified or candidate.is_reserved:
            return f"{ip} is a reserved address"
        if not candidate.is_global:
            return f"{ip} is a private address"
    if isinstance(ip, ipaddress.IPv6Address) and ip in _V4_COMPATIBLE:
        return f"{ip} is a reserved address"
    return None


@dataclass(frozen=True, slots=True)
class Target:
    """A checked webhook destination: connect to ``address``, say ``host`` (Host header,
    TLS server name)."""

    scheme: str
    host: str
    port: int
    path: str
    address: IPAddress

    @property
    def url(self) -> str:
        """The URL that connects to the checked address."""
        literal = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return f"{self.scheme}://{literal}:{self.port}{self.path}"

    @property
    def host_header(self) -> str:
        """The ``Host`` header: the URL's host, with its port when not the default."""
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


class WebhookGuard:
    """Checks webhook URLs and the addresses their hosts resolve to (module docs)."""

    def __init__(self, allow_networks: Iterable[str] = ()) -> None:
        self.allowed: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(n, strict=False) for n in allow_networks)

    async def check(self, url: str) -> Target:
        """The checked target of ``url``; raises :class:`WebhookRefused`."""
        problem = webhook_problem(url)
        if problem is not None:
            raise WebhookRefused(problem)
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        addresses = await self._resolve(host, port)
        for address in addresses:
            reason = address_problem(address, self.allowed)
            if reason is not None:
                raise WebhookRefused(f"webhook host {host!r} refused: {reason}")
        return Target(parts.scheme, host, port, path, addresses[0])

    async def _resolve(self, host: str, port: int) -> list[IPAddress]:
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            pass
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise WebhookFailed(f"webhook host {host!r} does not resolve: {exc}") from exc
        addresses: list[IPAddress] = []
        for _family, _type, _proto, _name, sockaddr in infos:
            text = str(sockaddr[0]).split("%", 1)[0]  # an IPv6 scope id
            ip = ipaddress.ip_address(text)
            if ip not in addresses:
                addresses.append(ip)
        if not addresses:
            raise WebhookFailed(f"webhook host {host!r} has no address")
        return addresses


# -- sending -----------------------------------------------------------------------------


class WebhookSender:
    """Delivers one webhook: check, sign, POST to the checked address, judge the answer."""

    def __init__(self, settings: WebhookSettings) -> None:
        self.settings = settings
        self.guard = WebhookGuard(settings.allow_networks)

    async def send(self, url: str, body: Mapping[str, Any], *, call_id: str,
                   delivery_id: str) -> int:
        """POST ``body`` to ``url``; the answer's status (2xx). Raises
        :class:`WebhookRefused` (do not retry) or :class:`WebhookFailed`
        (``can_retry`` says whether to)."""
        secret = self.settings.secret
        if secret is None:
            raise WebhookRefused("no webhook secret is configured (WebhookSettings.secret)")
        try:
            async with asyncio.timeout(self.settings.timeout_s):
                target = await self.guard.check(url)
                return await self._post(target, _encoder.encode(dict(body)), secret,
                                        call_id, delivery_id)
        except TimeoutError as exc:
            raise WebhookFailed(
                f"webhook timed out after {self.settings.timeout_s:g} s") from exc

    async def _post(self, target: Target, payload: bytes, secret: str, call_id: str,
                    delivery_id: str) -> int:
        import httpx  # loaded when a webhook is sent

        stamp = int(time.time())
        headers = {
            "Host": target.host_header,
            "Content-Type": "application/json",
            "User-Agent": f"genapi/{__version__}",
            "X-Genapi-Timestamp": str(stamp),
            "X-Genapi-Signature": sign_webhook(secret, stamp, payload),
            "X-Genapi-Call-Id": call_id,
            "X-Genapi-Delivery": delivery_id,
        }
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        limit = self.settings.max_response_bytes
        try:
            async with httpx.AsyncClient(trust_env=False, follow_redirects=False,
                                         timeout=self.settings.timeout_s) as client:
                request = client.build_request("POST", target.url, content=payload,
                                               headers=headers, extensions=extensions)
                response = await client.send(request, stream=True)
                try:
                    read = 0
                    async for chunk in response.aiter_raw():
                        read += len(chunk)
                        if read >= limit:
                            break
                finally:
                    await response.aclose()
        except httpx.HTTPError as exc:
            raise WebhookFailed(f"webhook request failed: {exc!r}") from exc
        status = response.status_code
        if 200 <= status < 300:
            return status
        if 300 <= status < 400:
            raise WebhookFailed(f"webhook answered {status} (redirects are not followed)",
                                can_retry=False)
        retry = status in (408, 425, 429) or status >= 500
        raise WebhookFailed(f"webhook answered {status}", can_retry=retry)
