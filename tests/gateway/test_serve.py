"""``genapi serve``'s options: what it hands uvicorn for either WebSocket driver."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.gateway.hostile_process import APP, ROOT


def test_serve_options_give_either_driver_the_gateway_limits() -> None:
    """What ``genapi serve`` hands uvicorn: the gateway's message limit for both drivers,
    genapi's head-bounded HTTP protocol; an unknown driver is refused."""
    from genapi import ConnectionLimits, Gateway, GatewaySettings
    from genapi.gateway.httpserver import GenapiHttpProtocol
    from genapi.gateway.serve import server_options
    from genapi.gateway.wsserver import GenapiWebSocketProtocol

    gateway = Gateway(settings=GatewaySettings(limits=ConnectionLimits(max_frame_bytes=1000)))
    genapi_ws = server_options(gateway, max_head_bytes=4096, head_timeout=2.5,
                               body_timeout=7.0)
    assert genapi_ws["ws"] is GenapiWebSocketProtocol and genapi_ws["ws_max_size"] == 1000
    http = genapi_ws["http"]
    assert issubclass(http, GenapiHttpProtocol)
    assert (http.max_head_bytes, http.head_timeout, http.body_timeout) == (4096, 2.5, 7.0)
    assert genapi_ws["h11_max_incomplete_event_size"] == 4096
    uvicorn_ws = server_options(gateway, ws="uvicorn")
    assert uvicorn_ws["ws"] == "websockets-sansio" and uvicorn_ws["ws_max_size"] == 1000
    with pytest.raises(ValueError, match="ws must be one of"):
        server_options(gateway, ws="wsproto")


def test_cli_refuses_an_unknown_driver() -> None:
    result = subprocess.run([sys.executable, "-m", "genapi", "serve", APP, "--ws", "nope"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(
                                [str(ROOT / "src"), str(ROOT)])})
    assert result.returncode == 2 and "--ws" in result.stderr
