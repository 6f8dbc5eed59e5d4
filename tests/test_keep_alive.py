"""Idle keep-alive connections are closed by the server's sweep (gateway/_keep_alive.py): after the
keep-alive timeout, not before, and not while a request is being answered; a connection that
sends its next request in time stays open. uvicorn on loopback with the gateway's protocols."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from gateway.settings import Settings
from tests._uvicorn import lifespan, served
from tests._wait import wait_until

_KEEP_ALIVE_S = 0.4
_TASK_NAMES: list[str] = []


async def _app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    _TASK_NAMES.append(asyncio.current_task().get_name())
    if scope["path"] == "/slow":
        await asyncio.sleep(3 * _KEEP_ALIVE_S)  # longer than the timeout, while answering
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
def server():
    with served(_app, Settings(keep_alive_s=_KEEP_ALIVE_S)) as (port, srv):
        yield port, srv


def _ask(s: socket.socket, path: str = "/") -> None:
    s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while not data.endswith(b"\r\n\r\nok"):
        chunk = s.recv(4096)
        assert chunk, f"closed mid-response: {data!r}"
        data += chunk


def _closed_after(s: socket.socket, limit_s: float) -> float:
    """Seconds until the server closes `s` (fails past `limit_s`)."""
    start = time.monotonic()
    s.settimeout(limit_s)
    assert s.recv(1) == b""
    return time.monotonic() - start


def test_an_idle_connection_is_closed_after_the_timeout(server):
    port, srv = server
    with socket.create_connection(("127.0.0.1", port)) as s:
        _ask(s)
        waited = _closed_after(s, 5)
    # Not before the timeout; at most a sweep interval (a quarter of it) after, plus scheduling.
    assert _KEEP_ALIVE_S * 0.95 <= waited <= _KEEP_ALIVE_S * 1.25 + 0.5
    wait_until(lambda: not srv.server_state.connections, "the connection to be gone")


def test_requests_in_time_keep_the_connection_and_answering_is_not_idle(server):
    port, _ = server
    with socket.create_connection(("127.0.0.1", port)) as s:
        for _ in range(4):
            _ask(s)
            time.sleep(_KEEP_ALIVE_S / 2)
        _ask(s, "/slow")  # answered after three timeouts: still the same connection
        _ask(s)


def test_the_sweep_forgets_closed_connections(server):
    port, srv = server
    sweep = srv.config.http.keywords["sweep"]
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(5)]
    for s in socks:
        _ask(s)
    wait_until(lambda: len(sweep) == 5, "five idle connections")
    for s in socks:
        s.close()
    wait_until(lambda: len(sweep) == 0, "the closed connections to be forgotten")


def test_request_tasks_are_named_without_a_counter(server):
    # gateway/serving.py names them: a default name ("Task-123") is formatted for every request.
    port, _ = server
    _TASK_NAMES.clear()
    with socket.create_connection(("127.0.0.1", port)) as s:
        _ask(s)
        _ask(s)
    assert _TASK_NAMES == ["gateway-request", "gateway-request"]
