"""``lifecycle serve``: the read API, the dashboard and the ops endpoints over HTTP."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import socket
from typing import Annotated

import typer
import uvicorn

from lifecycle import wiring
from lifecycle.api.app import create_app
from lifecycle.cli.common import app, err, fail, load_settings, open_engine
from lifecycle.ledger.engine import LeadLifecycle
from lifecycle.settings import Settings

Host = Annotated[str, typer.Option(help="Interface to listen on.")]
Port = Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")]


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``, or a one-line failure (a port in use, say).

    Listening before the address is printed: a client that reads it and connects at once
    waits in the backlog until the server starts, instead of being refused.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as error:
        reason = os.strerror(error.errno) if error.errno else str(error)
        raise fail(f"cannot listen on {host}:{port}: {reason}") from None


def serve_until_stopped(
    settings: Settings, engine: LeadLifecycle, host: str, listening: socket.socket
) -> None:
    """Serve until SIGINT or SIGTERM (uvicorn's handlers), printing the dashboard's address."""
    api = wiring.api(settings, engine)
    try:
        config = uvicorn.Config(create_app(api), log_level="warning")
        server = uvicorn.Server(config)
        config.load()
        sockets = [listening]
        bound = listening.getsockname()[1]
        err.print(
            f"dashboard: [bold]http://{host}:{bound}/[/bold]  API: /api  OpenAPI: /schema  "
            "(Ctrl-C stops)",
            highlight=False,
        )
        # uvicorn stops on SIGINT or SIGTERM, then raises the signal again for us: both end
        # serving normally, so that the caller still stops its workers and broker.
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            with contextlib.suppress(KeyboardInterrupt):
                server.run(sockets=sockets)
        finally:
            signal.signal(signal.SIGTERM, previous)
    finally:
        listening.close()
        api.close()


@app.command()
def serve(host: Host = "127.0.0.1", port: Port = 8000) -> None:
    """Serve the dashboard at /, the read API at /api, /metrics and /healthz."""
    settings = load_settings()
    if not settings.api_token and not _is_loopback(host):
        err.print(
            f"warning: no LIFECYCLE_API_TOKEN: /api answers anyone who reaches {host}",
            highlight=False,
        )
    with open_engine(settings) as engine:
        serve_until_stopped(settings, engine, host, listen(host, port))


def _is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name) is this machine only."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
