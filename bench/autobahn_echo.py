"""Echo servers for the Autobahn|Testsuite run (``bench/autobahn.py`` starts them).

    python bench/autobahn_echo.py --port 9001 --driver genapi-direct

Drivers:

* ``genapi-direct`` — genapi's protocol (``GenapiWebSocketProtocol``) with the app attached
  to the ``genapi.direct`` extension, as the gateway's ``Connection.serve_direct`` does:
  frames are parsed by genapi's own parser and each message is fed synchronously;
* ``genapi-asgi`` — the same protocol class with an app that ignores the extension, so
  messages travel as standard ASGI events;
* ``uvicorn-sansio`` — uvicorn's own ``websockets-sansio`` driver, for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import uvicorn

#: Autobahn's 9.x cases send messages of up to 16 MiB.
MAX_SIZE = 16 * 1024 * 1024


class EchoConsumer:
    """A minimal consumer of ``genapi.direct``: every message goes straight back."""

    def __init__(self, direct: Any) -> None:
        self.direct = direct
        self.done = asyncio.Event()

    def feed(self, data: str | bytes) -> None:
        self.direct.write([data])

    def disconnected(self) -> None:
        self.done.set()

    def drain_outbox(self) -> None:
        """Nothing is queued here: writes go to the transport at once."""


async def direct_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Echo over ``genapi.direct`` (falls back to ASGI when the server has no extension)."""
    if scope["type"] != "websocket":
        return
    direct = scope.get("extensions", {}).get("genapi.direct")
    if direct is None:
        await asgi_app(scope, receive, send)
        return
    if (await receive())["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    consumer = EchoConsumer(direct)
    direct.attach(consumer)
    await consumer.done.wait()


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Echo over standard ASGI messages."""
    if scope["type"] != "websocket":
        return
    if (await receive())["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--driver", required=True,
                        choices=["genapi-direct", "genapi-asgi", "uvicorn-sansio"])
    args = parser.parse_args()
    ws: Any
    if args.driver == "uvicorn-sansio":
        ws, app = "websockets-sansio", asgi_app
    else:
        from genapi.gateway.wsserver import GenapiWebSocketProtocol

        ws = GenapiWebSocketProtocol
        app = direct_app if args.driver == "genapi-direct" else asgi_app
    uvicorn.run(app, host="127.0.0.1", port=args.port, ws=ws, ws_max_size=MAX_SIZE,
                ws_ping_interval=None, log_level="warning", lifespan="off")


if __name__ == "__main__":
    main()
