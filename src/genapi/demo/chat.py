"""The demo chat room: a persistent public group ``lobby``, the relay functions, and a
static page at ``/demo/chat`` (``?user_id=alice&group=lobby``) using phoenix.js served
from ``/demo/static`` (no CDN)."""

from __future__ import annotations

import time
from pathlib import Path

from starlette.requests import Request as HttpRequest
from starlette.responses import FileResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ..relay import Group, GroupType
from ..relay.groups import new_group

__all__ = ["LOBBY", "ROOM_1", "STATIC_DIR", "chat_routes", "lobby", "room_1"]

#: The chat room every page joins unless ``?group=`` says otherwise.
LOBBY = "lobby"
#: The walkthrough's public group (section 12, "Manage groups"), seeded like the lobby.
ROOM_1 = "room_1"
STATIC_DIR = Path(__file__).parent / "static"


def lobby() -> Group:
    """The persistent public group ``lobby`` (seeded into the relay at start)."""
    return new_group(LOBBY, GroupType.PUBLIC, creator=None, now=time.time(), persistent=True)


def room_1() -> Group:
    """The walkthrough's public group ``room_1`` (created at start, persistent)."""
    return new_group(ROOM_1, GroupType.PUBLIC, creator=None, now=time.time(), persistent=True)


async def _page(request: HttpRequest) -> FileResponse:
    return FileResponse(STATIC_DIR / "chat.html", media_type="text/html")


def chat_routes() -> list[BaseRoute]:
    """The page at ``/demo/chat`` and its scripts under ``/demo/static``."""
    return [
        Route("/demo/chat", _page, methods=["GET"]),
        Mount("/demo/static", app=StaticFiles(directory=STATIC_DIR), name="demo-static"),
    ]
