"""The body clock (gateway/_limited.py, `_Limited.body_clock`, checked by the server's sweep in
gateway/_keep_alive.py): a request body that stops arriving gets a 408 in the route's error shape and
a close, while a slow upload that keeps coming is served. Before it, a body shorter than its
Content-Length held the connection for as long as the client liked (200 s observed, no answer).

Over raw sockets, against a real gateway (both parsers) and a bare ASGI app under uvicorn with the
gateway's protocols.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import orjson
import pytest

from gateway.settings import Settings
from gateway.tools.harness import GatewayThread
from tests._uvicorn import lifespan, served
from tests.conftest import SIM_KEY
from tests.security._rawhttp import HEALTHZ, connect, parse, read_response, read_until_closed
from tests.security.conftest import MASTER
from tests.security.test_connection_limits import _start

WINDOW = 1.0  # GATEWAY_HEADER_TIMEOUT_S, the body clock's window too (default 10 s)
RATE = 1024  # bytes a second a body must keep bringing (_limited._BODY_WINDOW_BYTES_PER_S)
SLACK = 4.0  # scheduling slack on a busy machine, on top of every deadline
PARSERS = ["httptools", "h11"]


@pytest.fixture(scope="module", params=PARSERS)
def gw(request, simulator, tmp_path_factory) -> Iterator[GatewayThread]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SIM_TEST_KEY", SIM_KEY)
        gw = _start(tmp_path_factory.mktemp("body-clock"), simulator, http_parser=request.param,
                    header_timeout_s=WINDOW, keep_alive_s=3.0)
        try:
            yield gw
        finally:
            gw.stop()


def _head(path: str, length: int) -> bytes:
    return (b"POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % (path.encode(), MASTER.encode(), length))


def _chat(content: str) -> bytes:
    return orjson.dumps({"model": "auto", "messages": [{"role": "user", "content": content}], "max_tokens": 3})


def _refused(raw: bytes) -> tuple[dict[str, str], dict]:
    status, headers, body = parse(raw)
    assert status == 408, raw[:300]
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    assert headers["content-length"] == str(len(body))
    assert headers["x-gateway-request-id"].startswith("req_")  # the request's own id: it is its answer
    return headers, orjson.loads(body)


def _trickle(sock: socket.socket, stop: threading.Event, every: float) -> None:
    try:
        while not stop.wait(every):
            sock.sendall(b" ")
    except OSError:
        pass


# --- a body that stops arriving ------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/responses", "/v1/embeddings", "/v1/feedback",
                                  "/v1/messages"])
def test_a_body_short_of_its_content_length_gets_408_and_a_close(gw, path):
    body = _chat("hello")
    with connect(gw.port) as sock:
        sock.sendall(_head(path, len(body) + 50) + body)  # the probe's t4f.py: 50 bytes never come
        started = time.monotonic()
        raw, ended = read_until_closed(sock, WINDOW * 1.25 + SLACK)
        elapsed = time.monotonic() - started
    assert ended in ("eof", "reset"), f"still open after {elapsed:.1f} s"
    assert elapsed >= WINDOW * 0.9
    _, error = _refused(raw)
    if path == "/v1/messages":  # Anthropic's clients read Anthropic's shape (errors.renderer_for)
        assert error["type"] == "error" and "stopped arriving" in error["error"]["message"]
        assert error["error"]["type"] == "timeout_error"
    else:
        assert error["error"]["code"] == "request_timeout" and error["error"]["param"] == "body"
        assert error["error"]["type"] == "timeout_error"
    with connect(gw.port) as sock:  # and the gateway goes on serving
        sock.sendall(HEALTHZ)
        assert read_response(sock)[0] == 200


def test_a_body_trickled_slower_than_the_clock_allows_gets_408(gw):
    # Slowloris on the body: a byte every 0.2 s keeps the connection busy, never the pace.
    stop = threading.Event()
    with connect(gw.port) as sock:
        sock.sendall(_head("/v1/chat/completions", 100_000) + b'{"model": "auto", "messages": [')
        started = time.monotonic()
        threading.Thread(target=_trickle, args=(sock, stop, 0.2), daemon=True).start()
        raw, ended = read_until_closed(sock, WINDOW * 1.25 + SLACK)
        elapsed = time.monotonic() - started
        stop.set()
    assert ended in ("eof", "reset"), f"still open after {elapsed:.1f} s"
    assert elapsed >= WINDOW * 0.9
    _, error = _refused(raw)
    assert error["error"]["code"] == "request_timeout"


def test_the_next_requests_body_on_a_keep_alive_connection_is_on_the_clock_too(gw):
    body = _chat("hello")
    with connect(gw.port) as sock:
        sock.sendall(HEALTHZ)
        assert read_response(sock)[0] == 200
        sock.sendall(_head("/v1/chat/completions", len(body)) + body[:10])
        started = time.monotonic()
        raw, ended = read_until_closed(sock, WINDOW * 1.25 + SLACK)
        elapsed = time.monotonic() - started
    assert ended in ("eof", "reset")
    assert WINDOW * 0.9 <= elapsed
    _refused(raw)


# --- bodies that keep coming ---------------------------------------------------------------------

def test_a_slow_upload_that_keeps_coming_is_served_past_the_window(gw):
    # ~48 KiB at ~20 KiB/s: well over the clock's pace, and over twice its window long.
    body = _chat("slow link " * 4800)
    with connect(gw.port) as sock:
        sock.sendall(_head("/v1/chat/completions", len(body)))
        started = time.monotonic()
        for i in range(0, len(body), 2048):
            sock.sendall(body[i:i + 2048])
            time.sleep(0.1)
        assert time.monotonic() - started > 2 * WINDOW
        status, _, reply = read_response(sock, SLACK)
    assert status == 200, reply
    assert orjson.loads(reply)["object"] == "chat.completion"


def test_a_request_answered_slower_than_the_window_is_not_cut(gw):
    # The body is in: what the route does with it afterwards is on no clock of the server's.
    body = _chat(f"Slow answer. [sim:delay_ms={int(WINDOW * 2000)}]")
    with connect(gw.port) as sock:
        sock.sendall(_head("/v1/chat/completions", len(body)))
        time.sleep(0.05)
        sock.sendall(body)  # apart from its head: on the clock until it is complete
        status, _, reply = read_response(sock, WINDOW * 2 + SLACK)
    assert status == 200, reply


# --- what the clock costs, and what it does not count ----------------------------------------------

_BIG = 300 * 1024  # over uvicorn's 64 KiB high-water mark: reading pauses until the app takes it


async def _slow_reader(scope, receive, send) -> None:
    """`/late` reads its body only after twice the window; others at once. Answers its length."""
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    if scope["path"] == "/late":
        await asyncio.sleep(2 * WINDOW)
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    answer = b"%d" % size
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(answer))]})
    await send({"type": "http.response.body", "body": answer})


@pytest.fixture(params=PARSERS)
def bare(request):
    with served(_slow_reader, Settings(http_parser=request.param, header_timeout_s=WINDOW)) as (port, srv):
        yield port, srv


def _post(path: str, length: int) -> bytes:
    return b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (path.encode(), length)


def test_a_body_the_app_has_not_taken_yet_is_not_held_against_the_client(bare):
    # The whole body is sent at once; the server stops reading at the high-water mark while the app
    # is busy for two windows: the client is not the one that stopped.
    port, _ = bare
    with connect(port) as sock:
        sock.sendall(_post("/late", _BIG) + b"x" * _BIG)
        status, _, reply = read_response(sock, 2 * WINDOW + SLACK)
    assert (status, reply) == (200, b"%d" % _BIG)


def test_a_pipelined_requests_body_is_on_the_clock_once_its_turn_comes(bare):
    # Its head arrives while the request before it is answered (h11 holds it unparsed until then).
    port, _ = bare
    with connect(port) as sock:
        sock.sendall(_post("/now", 2) + b"hi" + _post("/now", 10) + b"hel")
        started = time.monotonic()
        raw, ended = read_until_closed(sock, WINDOW * 1.25 + SLACK)
        elapsed = time.monotonic() - started
    assert ended in ("eof", "reset"), f"still open after {elapsed:.1f} s"
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n"), raw[:200]
    assert elapsed >= WINDOW * 0.9
    status, headers, body = parse(raw[raw.index(b"HTTP/1.1 408"):])
    assert (status, headers["connection"], orjson.loads(body)["error"]["param"]) == (408, "close", "body")


def test_only_a_body_that_did_not_come_with_its_head_is_on_the_clock(bare):
    # A request that arrives in one read costs the clock nothing; one whose body came apart is
    # noted in the server's sweep and forgotten at its next pass once complete.
    port, srv = bare
    sweep = srv.config.http.keywords["sweep"]
    with connect(port) as sock:
        for _ in range(3):
            sock.sendall(_post("/now", 5) + b"hello")
            assert read_response(sock)[2] == b"5"
        assert sweep.bodies() == 0
        sock.sendall(_post("/now", 5) + b"he")
        time.sleep(0.05)
        sock.sendall(b"llo")
        assert read_response(sock)[2] == b"5"
    deadline = time.monotonic() + WINDOW + SLACK
    while sweep.bodies() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sweep.bodies() == 0
