"""The demo application: the walkthrough's functions, served by ``genapi demo``."""

from __future__ import annotations

from .walkthrough import (
    SERVICES,
    blog_service,
    event_service,
    report_service,
    search_service,
    user_service,
)

__all__ = [
    "SERVICES",
    "blog_service",
    "event_service",
    "report_service",
    "search_service",
    "user_service",
]
