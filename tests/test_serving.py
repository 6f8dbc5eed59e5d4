"""`gateway.serving`: the uvicorn options every server start uses, and when a finished response
and a stream's first event leave."""

from __future__ import annotations

import pickle
import socket
import time

import pytest
import uvicorn

from gateway import _corked
from gateway.asgi import HANGUP_HOOK
from gateway.serving import (
    ConnectionLimits,
    H11Limited,
    HttpToolsLimited,
    uvicorn_options,
)
from gateway.settings import Settings
from tests._uvicorn import lifespan, read_body, served


@pytest.mark.parametrize(("parser", "cls"), [("httptools", HttpToolsLimited), ("h11", H11Limited)])
def test_options_carry_the_settings_to_the_chosen_protocol(parser, cls):
    settings = Settings(http_parser=parser, max_header_bytes=4096, header_timeout_s=2.5, max_connections=7,
                        keep_alive_s=9)
    options = uvicorn_options(settings)
    assert options["http"].func is cls
    assert options["http"].keywords["limits"] == ConnectionLimits(4096, 2.5, 7)
    assert options["timeout_keep_alive"] == 9
    # h11's own cap must never answer before the gateway's 431.
    assert options["h11_max_incomplete_event_size"] > 4096


def test_a_workers_config_pickles_with_the_limits():
    # `gateway serve --workers N` hands its uvicorn.Config to spawned processes.
    config = uvicorn.Config("gateway.app:create_app", factory=True, workers=2,
                            **uvicorn_options(Settings(max_connections=11)))
    copy = pickle.loads(pickle.dumps(config))
    assert copy.http.func is HttpToolsLimited
    assert copy.http.keywords["limits"].max_connections == 11


# -- when a finished response and a stream's first event leave -------------------------------------

_BLOCK_S = 0.6


async def _answers_then_blocks(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    if scope["path"] == "/quick":  # answered at once: a completion, for a busy server
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    if scope["path"] == "/plain":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]})
        await send({"type": "http.response.body", "body": b"first"})
        # Work after the answer in the same loop pass (the gateway's accounting is queued behind it).
        time.sleep(_BLOCK_S)  # noqa: ASYNC251 - the loop pass, blocked on purpose
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
    await send({"type": "http.response.body", "body": b"data: first\n\n", "more_body": True})
    # What the model route does after writing a stream's first event (gateway/routes/model_route.py).
    scope[HANGUP_HOOK].first_event_written()
    time.sleep(_BLOCK_S)  # noqa: ASYNC251 - the rest of a burst, relayed in the same loop pass
    await send({"type": "http.response.body", "body": b"data: rest\n\n", "more_body": True})
    await send({"type": "http.response.body", "body": b""})


def _wait_for_first(port: int, path: str) -> float:
    """Seconds from the request to its first bytes of content; returns once the server's blocked
    loop pass is over (the next request is not kept waiting by this one's)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        t0 = time.perf_counter()
        s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while b"first" not in data:
            chunk = s.recv(4096)
            assert chunk, f"closed mid-response: {data!r}"
            data += chunk
        waited = time.perf_counter() - t0
    time.sleep(max(0.0, _BLOCK_S - waited) + 0.1)
    return waited


@pytest.mark.parametrize("parser", ["httptools", "h11"])
def test_an_answer_leaves_before_the_loop_pass_ends_unless_the_server_is_busy(parser, monkeypatch):
    with served(_answers_then_blocks, Settings(http_parser=parser)) as (port, _):
        # Idle: a finished response, and a stream's first event, leave before the rest of the pass runs.
        assert _wait_for_first(port, "/plain") < _BLOCK_S / 2
        assert _wait_for_first(port, "/stream") < _BLOCK_S / 2
        # Busy: its last few responses completed within the window (widened here, so that a slow
        # test machine cannot make it idle); a pass's writes stay corked to its end.
        monkeypatch.setattr(_corked, "BUSY_WINDOW_S", 600.0)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            for _ in range(_corked.BUSY_RESPONSES):
                s.sendall(b"GET /quick HTTP/1.1\r\nHost: x\r\n\r\n")
                assert s.recv(4096).startswith(b"HTTP/1.1 204")
        assert _wait_for_first(port, "/plain") >= _BLOCK_S
        assert _wait_for_first(port, "/stream") >= _BLOCK_S


def test_busy_is_the_pace_of_completions_not_what_is_open():
    busy = _corked.Busy()
    assert not busy.busy(0.0)
    for i in range(_corked.BUSY_RESPONSES):
        assert not busy.busy(i * 0.0001)
        busy.completed(i * 0.0001)
    assert busy.busy(0.0005)
    assert not busy.busy(0.0001 + _corked.BUSY_WINDOW_S)  # the oldest of the last few is out of the window
    busy.completed(1.0)
    assert not busy.busy(1.0)


async def _echo_body(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    body = await read_body(receive)
    query = scope["query_string"] + b"|" + scope["path"].encode() + b"|" + scope["raw_path"]
    out = body + b"|" + query
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(out))]})
    await send({"type": "http.response.body", "body": out})


def _read_response(s: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        assert chunk, f"closed mid-response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    while len(body) < length:
        body += s.recv(4096)
    return head + b"\r\n\r\n" + body


@pytest.mark.parametrize("parser", ["httptools", "h11"])
def test_expect_continue_chunked_bodies_and_the_url_reach_the_app_as_uvicorn_hands_them(parser):
    """The request-side steps the gateway's protocols fold in (serving.py): `Expect:
    100-continue` answered when the app first reads, a chunked body, an escaped path and a query."""
    with served(_echo_body, Settings(http_parser=parser)) as (port, _):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"POST /a%20b?x=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
            assert s.recv(4096).startswith(b"HTTP/1.1 100 Continue\r\n")
            s.sendall(b"hello")
            assert _read_response(s).endswith(b"\r\n\r\nhello|x=1|/a b|/a%20b")
            s.sendall(b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")  # the same connection, kept alive
            assert _read_response(s).endswith(b"\r\n\r\nabcde||/c|/c")
