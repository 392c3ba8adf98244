"""The rate limiter's telemetry events (registered in the catalogue at import)."""

from __future__ import annotations

from ..telemetry.events import register_event

__all__ = ["CHECK", "CLEANUP", "EXCEEDED", "RESET"]

CHECK = register_event(
    "rate_limiter.check",
    ("duration_us",),
    ("request_id", "user_id", "service", "request_type", "result"),
    "A request was checked against its applicable limits; result is ok, rate_limited, "
    "fail_open (backend failed, allowed) or unavailable (backend failed, rejected).",
)
EXCEEDED = register_event(
    "rate_limiter.exceeded",
    ("retry_after_ms",),
    (
        "key", "key_type", "scope", "max_requests", "current_requests", "window_ms",
        "request_id", "user_id",
    ),
    "A request was rejected by a limit; key is the bucket name.",
)
RESET = register_event(
    "rate_limiter.reset",
    (),
    ("key", "scope", "rate_limit_key"),
    "The buckets of a key value were reset; key is the value, rate_limit_key the key type.",
)
CLEANUP = register_event(
    "rate_limiter.cleanup",
    ("duration_us", "cleaned_entries"),
    ("buckets",),
    "The memory store dropped idle buckets; buckets is how many remain.",
)
