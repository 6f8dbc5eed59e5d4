"""A uvicorn server with the gateway's protocols (`serving.uvicorn_options`) in a thread, on a free
loopback port: for the tests of what the server itself does, around any small ASGI app."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from gateway.serving import uvicorn_options
from gateway.settings import Settings
from tests._wait import wait_until

__all__ = ["lifespan", "read_body", "served"]


async def read_body(receive) -> bytes:
    """A test app's whole request body, read from ASGI `http.request` messages."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def lifespan(receive, send) -> None:
    """The lifespan protocol's happy path, for apps that have nothing to start."""
    while (await receive())["type"] != "lifespan.shutdown":
        await send({"type": "lifespan.startup.complete"})
    await send({"type": "lifespan.shutdown.complete"})


@contextmanager
def served(app, settings: Settings) -> Iterator[tuple[int, uvicorn.Server]]:
    """(port, server) while `app` is served with `settings`' options; stopped on exit."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    srv = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", **uvicorn_options(settings)))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_until(lambda: srv.started, "the server to start")
        yield sock.getsockname()[1], srv
    finally:
        srv.should_exit = True
        thread.join(10)
        sock.close()
