"""The WebSocket driver's own cost per message, in process: no sockets, no gateway.

    python bench/wsdriver.py [--messages 200000] [--rounds 5] [--size 150]

One ``GenapiWebSocketProtocol`` gets a real handshake over a fake transport, an
application attaches to ``genapi.direct`` and answers every message with two frames (as
the gateway answers a push); then masked client text frames are fed to ``data_received``,
one per call (as a closed-loop client sends them) and also 16 per call (pipelined). Prints
the driver's CPU time per message (parse, unmask, UTF-8 check, deliver, build and write the
answer), the best of ``--rounds``. Compare commits by running it with ``PYTHONPATH``
pointing at each one's ``src``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import struct
import time
from typing import Any

import uvicorn
from uvicorn.server import ServerState

from genapi.gateway.wsserver import GenapiWebSocketProtocol


class FakeTransport(asyncio.Transport):
    """Counts what is written; never pushes back."""

    def __init__(self) -> None:
        super().__init__()
        self.written = 0
        self.closing = False

    def write(self, data: Any) -> None:
        self.written += len(data)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 4000)}.get(
            name, default)


class Answerer:
    def __init__(self, direct: Any) -> None:
        self.direct = direct
        self.messages = 0
        self.done = asyncio.Event()

    def feed(self, data: str | bytes) -> None:
        self.messages += 1
        self.direct.write(['[null,"1","api:lobby","api",{"request_id":"1","result":1}]',
                           '["1","1","api:lobby","phx_reply",{"status":"ok"}]'])

    def disconnected(self) -> None:
        self.done.set()

    def drain_outbox(self) -> None:
        pass


def client_frame(payload: bytes) -> bytes:
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    n = len(payload)
    head = struct.pack("!BB", 0x81, 0x80 | n) if n < 126 else struct.pack("!BBH", 0x81, 0xFE, n)
    return head + key + masked


async def run(args: argparse.Namespace) -> None:
    answerers: list[Answerer] = []
    attached = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        answerer = Answerer(scope["extensions"]["genapi.direct"])
        answerers.append(answerer)
        answerer.direct.attach(answerer)
        attached.set()
        await answerer.done.wait()

    config = uvicorn.Config(app, ws=GenapiWebSocketProtocol, log_level="warning")
    config.load()
    protocol = GenapiWebSocketProtocol(config, ServerState(), {}, _loop=asyncio.get_running_loop())
    transport = FakeTransport()
    protocol.connection_made(transport)
    key = base64.b64encode(os.urandom(16)).decode()
    protocol.data_received((f"GET /socket/websocket?vsn=2.0.0 HTTP/1.1\r\nHost: x\r\n"
                            f"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                            ).encode())
    await asyncio.wait_for(attached.wait(), 5)
    answerer = answerers[0]
    body = b'["1","2","api:lobby","api",{"request_id":"r","service":"bench",' \
           b'"request_type":"echo","args":{"n":'
    frame = client_frame(body + b"1" * max(args.size - len(body) - 3, 1) + b"}}]")
    runs = (("1 frame per read", frame, 1), ("16 frames per read", frame * 16, 16))
    for label, data, per_call in runs:
        best = float("inf")
        calls = args.messages // per_call
        for _ in range(args.rounds):
            before = answerer.messages
            started = time.process_time()
            for _ in range(calls):
                protocol.data_received(data)
            elapsed = time.process_time() - started
            assert answerer.messages - before == calls * per_call
            best = min(best, elapsed / (calls * per_call))
        print(f"{label:<20} {best * 1e6:6.3f} µs per message (best of {args.rounds})")
    protocol.connection_lost(None)
    await asyncio.wait_for(answerer.done.wait(), 5)
    await asyncio.gather(*protocol.tasks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size", type=int, default=150, help="client frame payload bytes")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
