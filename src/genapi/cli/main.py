"""The ``genapi`` Typer app: ``version`` and the serving commands ``demo``, ``serve``, ``node``
(``status``/``call-flow``/``schema`` in :mod:`.admin`, ``call``/``top`` in :mod:`.ops`,
``token`` in :mod:`.tokens`)."""

from __future__ import annotations

import contextlib
from typing import Annotated

import typer

from .._version import __version__
from . import admin, config_admin, jobs, ops, tokens
from .loading import load_app

# Plain values (no import of uvicorn at CLI start): the defaults of gateway.serve.
DEFAULT_MAX_HEAD_BYTES = 16 * 1024
DEFAULT_HEAD_TIMEOUT = 10.0
DEFAULT_BODY_TIMEOUT = 30.0

__all__ = ["app", "main"]

#: ``RelayLimits().max_members`` (not imported: the relay loads only when a command runs).
RELAY_MAX_MEMBERS = 1000

app = typer.Typer(
    help="genapi: real-time backend APIs over WebSocket.",
    no_args_is_help=True,
    add_completion=False,
)

DEMO_HELP = """\
genapi demo gateway on http://{host}:{port}  (Ctrl-C to stop)

Functions: user_service.list_users, get_user (versions 1.0.0, 2.0.0 and default),
get_user_profile (own profile only), get_profile, delete_user (role admin);
admin_service.delete_user, admin_action; blog_service.create_post;
search_service.search; report_service.generate_report (async, ~3 s);
event_service.stream_events (stream: 10 ticks, then the total) and event_service.ticker
(a long stream; cancel it by pushing event "cancel" with {{request_id}}); the relay as
relay and chat_service (groups lobby and room_1). The walkthrough's requests get its
answers.

Identity (demo only, insecure): connect params user_id and roles, or over HTTP
the header "Authorization: Bearer <user_id>:<roles>". The walkthrough's caller user_123:
  new Phoenix.Socket("ws://{host}:{port}/socket", {{params: {{user_id: "user_123"}}}})

phoenix.js (browser, or Node 20 with `ws` as transport):
  const socket = new Phoenix.Socket("ws://{host}:{port}/socket", {{params: {{user_id: "1"}}}});
  socket.connect();
  const channel = socket.channel("api:lobby", {{}});
  channel.on("api", payload => console.log(payload));
  channel.join().receive("ok", () => channel.push("api",
    {{service: "user_service", request_type: "get_user", request_id: "r1",
      args: {{user_id: "1"}}}}));

curl:
  curl {host}:{port}/api/user_service/get_user --json '{{"user_id":"1"}}'
  curl {host}:{port}/api/user_service/delete_user --json '{{"user_id":"2"}}' \\
       -H "Authorization: Bearer 1:admin"

Python:
  async with genapi.Client("ws://{host}:{port}/socket", params={{"user_id": "1"}}) as c:
      print(await c.call("user_service", "get_user", {{"user_id": "1"}}))

Chat (relay, group "lobby"): open http://{host}:{port}/demo/chat?user_id=alice
  and http://{host}:{port}/demo/chat?user_id=bob in two tabs.

Dashboard: http://{host}:{port}/dashboard   admin token: {admin_token}
  GENAPI_ADMIN_TOKEN={admin_token} {genapi} status --url http://{host}:{port}
  GENAPI_ADMIN_TOKEN={admin_token} {genapi} call user_service get_user --arg user_id=1 \\
      --url ws://{host}:{port}/socket
"""


def self_command() -> str:
    """How to run this genapi again from here: ``genapi`` when that is on PATH, else the
    script's path (``.venv/bin/genapi``) or ``python -m genapi`` as it was started."""
    import os
    import shutil
    import sys

    script = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    on_path = shutil.which("genapi")
    if on_path and script and os.path.realpath(on_path) == os.path.realpath(script):
        return "genapi"

    def shown(path: str) -> str:
        relative = os.path.relpath(path)
        return relative if not relative.startswith("..") else path

    if os.path.basename(script) == "genapi" and os.path.isfile(script):
        return shown(script)
    return f"{shown(sys.executable)} -m genapi"


@app.command()
def version() -> None:
    """Print genapi's version."""
    typer.echo(__version__)


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 4000,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
    cluster: Annotated[bool, typer.Option(
        "--cluster", help="Also run nats-server and two service nodes (data_service).")] = False,
    admin_token: Annotated[str | None, typer.Option(
        help="Token for /admin and the dashboard (default: a new random one, printed).",
        envvar="GENAPI_ADMIN_TOKEN", show_envvar=False)] = None,
    relay_max_members: Annotated[int, typer.Option(
        min=1, help="Most receivers of one relay message: a group holds a sender and this "
                    "many others.")] = RELAY_MAX_MEMBERS,
) -> None:
    """Run the demo gateway with the walkthrough's functions."""
    import secrets

    from ..demo.app import build_demo_gateway
    from ..gateway.serve import serve
    from ..relay import RelayLimits

    admin_token = admin_token or secrets.token_urlsafe(24)
    relay = RelayLimits(max_members=relay_max_members)
    typer.echo(DEMO_HELP.format(host=host, port=port, admin_token=admin_token,
                                genapi=self_command()))
    if not cluster:
        serve(build_demo_gateway(admin_token=admin_token, relay_limits=relay), host=host,
              port=port, log_level=log_level)
        return
    from ..demo.cluster import CLUSTER_HELP, running_cluster

    with running_cluster() as options:
        typer.echo(CLUSTER_HELP.format(host=host, port=port, nats=options.nats))
        serve(build_demo_gateway(cluster=options, admin_token=admin_token,
                                 relay_limits=relay), host=host, port=port,
              log_level=log_level)


NATS_HELP = "NATS URL, or 'embedded[:PORT]' to run a nats-server (default port 4250)."


@app.command("serve")
def serve_command(
    target: Annotated[str, typer.Argument(help="module:attribute of a Gateway or ASGI app.")],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 4000,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    nats: Annotated[str | None, typer.Option(help=NATS_HELP)] = None,
    push_token: Annotated[str | None, typer.Option(
        help="Token nodes must present with config pushes.", envvar="GENAPI_PUSH_TOKEN")] = None,
    workers: Annotated[int, typer.Option(
        min=1, help="Gateway processes sharing the port (SO_REUSEPORT). Above 1 they form "
                    "a cluster over --nats (default: a private nats-server).")] = 1,
    reuse_port: Annotated[bool, typer.Option(hidden=True)] = False,
    ws: Annotated[str, typer.Option(
        help="WebSocket driver: genapi (its own frame layer, fastest) or uvicorn "
             "(uvicorn's websockets-sansio). Either refuses messages over the gateway's "
             "max_frame_bytes (1009).")] = "genapi",
    max_head_bytes: Annotated[int, typer.Option(
        min=1024, help="Largest HTTP request head (request line and headers); 431 beyond."
    )] = DEFAULT_MAX_HEAD_BYTES,
    head_timeout: Annotated[float, typer.Option(
        min=0.1, help="Seconds a connection has to send a whole request head (against "
                      "slowloris); then it is closed.")] = DEFAULT_HEAD_TIMEOUT,
    body_timeout: Annotated[float, typer.Option(
        min=0.1, help="Seconds a request has to send its body once its head is in; then "
                      "the connection is closed.")] = DEFAULT_BODY_TIMEOUT,
) -> None:
    """Serve a gateway (graceful drain on Ctrl-C / SIGTERM).

    With --nats the gateway joins a cluster: it calls functions on service nodes and
    accepts their config pushes (the admin action push_config is allowed).
    """
    import functools

    from ..gateway import Gateway
    from ..gateway.serve import WS_DRIVERS, serve
    from .nats import nats_url

    if ws not in WS_DRIVERS:
        raise typer.BadParameter(f"choose one of {', '.join(WS_DRIVERS)}", param_hint="--ws")
    app_ = load_app(target)
    edge = ["--ws", ws, "--max-head-bytes", str(max_head_bytes),
            "--head-timeout", str(head_timeout), "--body-timeout", str(body_timeout)]
    if workers > 1:
        raise typer.Exit(_serve_workers(app_, target, host, port, log_level, nats, push_token,
                                        workers, edge))
    run = functools.partial(serve, app_, host=host, port=port, log_level=log_level,
                            reuse_port=reuse_port, ws=ws, max_head_bytes=max_head_bytes,
                            head_timeout=head_timeout, body_timeout=body_timeout)
    if nats is None:
        run()
        return
    if not isinstance(app_, Gateway):
        raise typer.BadParameter("--nats needs a genapi Gateway")
    with nats_url(nats) as url:
        app_.join_cluster(url, push_token=push_token)
        run()


def _serve_workers(app_: object, target: str, host: str, port: int, log_level: str,
                   nats: str | None, push_token: str | None, workers: int,
                   edge: list[str]) -> int:
    import logging
    import os

    from ..errors import ConfigError
    from ..gateway import Gateway
    from ..ratelimit import RateLimiter
    from .workers import check_port, supervise, worker_argv, worker_nats

    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    try:
        check_port(host, port)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc), param_hint="--port") from exc
    gateway = isinstance(app_, Gateway)
    if not gateway and nats is not None:
        raise typer.BadParameter("--nats needs a genapi Gateway")
    limiter = app_.executor.rate_limiter if isinstance(app_, Gateway) else None
    if isinstance(limiter, RateLimiter) and not limiter.shared:
        typer.echo("note: rate limits count per worker (a memory store); give the "
                   "RateLimiter a Redis store to share them", err=True)
    with contextlib.ExitStack() as stack:
        # Workers of a gateway share a cluster; other ASGI apps are served side by side.
        url = stack.enter_context(worker_nats(nats)) if gateway else None
        typer.echo(f"genapi serving {target} on http://{host}:{port} with {workers} workers"
                   + (f" (cluster over {url})" if url else ""))
        # The push token through the environment: not on command lines others can read.
        env = {**os.environ, **({"GENAPI_PUSH_TOKEN": push_token} if push_token else {})}
        return supervise(worker_argv(target, host=host, port=port, log_level=log_level,
                                     nats=url) + edge, workers, env)


@app.command("node")
def node_command(
    target: Annotated[str, typer.Argument(
        help="module:attribute of a Service (or a list of Services).")],
    nats: Annotated[str, typer.Option(help=NATS_HELP)] = "nats://127.0.0.1:4222",
    name: Annotated[str | None, typer.Option(help="Node name (default host-pid).")] = None,
    prefix: Annotated[str, typer.Option(help="NATS subject prefix.")] = "genapi",
    push_token: Annotated[str | None, typer.Option(
        help="Token sent with config pushes.", envvar="GENAPI_PUSH_TOKEN")] = None,
    log_level: Annotated[str, typer.Option(help="Logging level.")] = "info",
    drain_timeout: Annotated[float, typer.Option(
        help="Seconds in-flight calls get on SIGTERM before they are answered "
             "'Server shutting down'.")] = 10.0,
    pull: Annotated[bool, typer.Option(
        "--pull", help="Ask gateways to pull this node's configs too (every pull interval), "
                       "so a change reaches a gateway that missed the push.")] = False,
) -> None:
    """Run a service node: serve the functions to gateways over NATS until SIGTERM."""
    import logging

    from ..cluster.node import Node
    from ..functions.service import Service
    from ..gateway.logs import install_redaction
    from .nats import nats_url
    from .runner import run

    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    install_redaction()
    loaded = load_app(target)
    services = [loaded] if isinstance(loaded, Service) else list(loaded)
    if not services or not all(isinstance(s, Service) for s in services):
        raise typer.BadParameter(f"{target} is not a Service or a list of Services")
    with nats_url(nats) as url:
        node = Node(services, nats=url, name=name, prefix=prefix, push_token=push_token,
                    drain_timeout=drain_timeout, pull=pull)
        run(node.serve())


admin.register(app)  # status, call-flow, schema
ops.register(app)  # call, top
tokens.register(app)  # token
jobs.register(app)  # jobs list|show|retry|cancel|purge|counts, db upgrade
config_admin.register(app)  # admin pull|pushed …, report (after any other admin group)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``genapi`` console script."""
    app(args=argv, prog_name="genapi")
