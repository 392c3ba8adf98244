"""Small services shared by tests."""

from __future__ import annotations

from genapi import ApiError, Service


def observed_service(name: str = "svc") -> Service:
    """The functions the observability tests count and trace: ``echo(n)`` (an ApiError
    for n < 0), ``other()`` and ``crash()`` (raises RuntimeError)."""
    svc = Service(name)

    @svc.function()
    async def echo(n: int) -> int:
        if n < 0:
            raise ApiError("negative")
        return n

    @svc.function()
    async def other() -> str:
        return "ok"

    @svc.function()
    async def crash() -> None:
        raise RuntimeError("boom")

    return svc
