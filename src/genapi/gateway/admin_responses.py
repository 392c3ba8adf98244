"""The admin endpoint's answers: JSON that is never cached, sniffed, embedded or sent on
as a referrer (one definition for the console, its write, config and jobs routes)."""

from __future__ import annotations

from typing import Any, Final

import msgspec
from starlette.responses import Response as HttpResponse

__all__ = ["COMMON_HEADERS", "JSON_HEADERS", "bare_response", "json_response"]

COMMON_HEADERS: Final = {"cache-control": "no-store", "x-content-type-options": "nosniff",
                         "referrer-policy": "no-referrer"}
JSON_HEADERS: Final = {**COMMON_HEADERS,
                       "content-security-policy": "default-src 'none'; frame-ancestors 'none'"}


def json_response(data: Any, status: int = 200) -> HttpResponse:
    """``data`` as JSON with the admin headers."""
    return HttpResponse(msgspec.json.encode(data), status_code=status,
                        media_type="application/json", headers=JSON_HEADERS)


def bare_response(status: int) -> HttpResponse:
    """An empty answer with the admin headers (401 says how to authenticate)."""
    headers = dict(JSON_HEADERS)
    if status == 401:
        headers["www-authenticate"] = "Bearer"
    return HttpResponse(status_code=status, headers=headers)
