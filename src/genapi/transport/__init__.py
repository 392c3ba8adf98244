"""Transports: how the executor reaches functions that run in other processes."""

from __future__ import annotations

from .base import Transport
from .fake import FakeNode, FakeTransport

__all__ = ["FakeNode", "FakeTransport", "Transport"]
