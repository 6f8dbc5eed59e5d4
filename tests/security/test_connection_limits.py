"""Connection limits, over raw sockets against a real gateway on loopback (gateway/serving.py).

The attacks send no key: they are what an unauthenticated client can do before the security
middleware ever sees a request (a few checks that normal traffic is unaffected use the master
key). Each runs under both of uvicorn's HTTP parsers.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import orjson
import pytest

from gateway.settings import Settings
from gateway.tools.harness import GatewayThread, free_port
from tests._threads import PeakRss
from tests.conftest import ROOT, SIM_KEY, write_catalog

from ._rawhttp import (
    HEALTHZ, assert_error, connect, parse, poll, read_response, read_until_closed, served,
)
from .conftest import MASTER, key_specs

CAP = 16 * 1024  # GATEWAY_MAX_HEADER_BYTES for these tests (the default is 32 KiB)
HEAD_TIMEOUT = 1.0  # GATEWAY_HEADER_TIMEOUT_S (default 10 s)
KEEP_ALIVE = 3.0  # GATEWAY_KEEP_ALIVE_S (default 5 s)
MAX_CONNS = 6  # GATEWAY_MAX_CONNECTIONS for the cap tests (default 4096)
SLACK = 4.0  # scheduling slack on a busy machine, on top of every deadline
PARSERS = ["httptools", "h11"]


def _start(tmp, simulator, **settings: object) -> GatewayThread:
    path = write_catalog(tmp / "catalog.yaml", simulator.base_url, transport="openai",
                         top_level={"keys": key_specs()})
    (tmp / "policies").mkdir(exist_ok=True)
    settings = Settings(config=path, policies=tmp / "policies", port=0, master_key=MASTER, max_retries=0,
                        log_requests=False, **settings)
    return GatewayThread(settings).start()


@pytest.fixture(scope="module", params=PARSERS)
def gw(request, simulator, tmp_path_factory) -> Iterator[GatewayThread]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SIM_TEST_KEY", SIM_KEY)
        gw = _start(tmp_path_factory.mktemp("limits"), simulator, http_parser=request.param, max_header_bytes=CAP,
                    header_timeout_s=HEAD_TIMEOUT, keep_alive_s=KEEP_ALIVE)
        try:
            yield gw
        finally:
            gw.stop()


@pytest.fixture(scope="module", params=PARSERS)
def capped(request, simulator, tmp_path_factory) -> Iterator[GatewayThread]:
    # A long header timeout, so idle connections stay open for as long as the test holds them.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SIM_TEST_KEY", SIM_KEY)
        gw = _start(tmp_path_factory.mktemp("capped"), simulator, http_parser=request.param,
                    max_connections=MAX_CONNS, header_timeout_s=60.0, keep_alive_s=60.0)
        try:
            yield gw
        finally:
            gw.stop()


# --- header bytes -----------------------------------------------------------------------------

def _padded(size: int, *, target: bytes = b"/healthz") -> bytes:
    """A complete GET whose request line plus headers is exactly `size` bytes."""
    head = b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Fill: \r\n\r\n"
    return head.replace(b"X-Fill: ", b"X-Fill: " + b"a" * (size - len(head)))


OVERSIZED = {
    "one unterminated value": b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Fill: " + b"a" * (3 * CAP),
    "many small headers": b"GET /healthz HTTP/1.1\r\n" + b"".join(b"X-H%05d: v\r\n" % i for i in range(CAP // 8)),
    "a long request line": b"GET /" + b"a" * (2 * CAP),
    "complete, one byte over": _padded(CAP + 1),
}


@pytest.mark.parametrize("payload", OVERSIZED.values(), ids=OVERSIZED.keys())
def test_a_head_over_the_cap_gets_431_and_a_close(gw, payload):
    with connect(gw.port) as sock:
        sock.sendall(payload)
        raw, ended = read_until_closed(sock, SLACK)
    assert ended in ("eof", "reset"), "the connection must be closed after the 431"
    error = orjson.loads(parse(raw)[2])["error"]
    assert_error(raw, 431, "headers_too_large")
    assert error["param"] == "headers" and str(CAP) in error["message"]
    assert served(gw.port)


def test_a_head_of_exactly_the_cap_is_served(gw):
    with connect(gw.port) as sock:
        sock.sendall(_padded(CAP))
        assert read_response(sock)[0] == 200


def test_the_cap_holds_for_the_next_request_on_a_keep_alive_connection(gw):
    with connect(gw.port) as sock:
        sock.sendall(HEALTHZ)
        assert read_response(sock)[0] == 200
        sock.sendall(OVERSIZED["one unterminated value"])
        raw, ended = read_until_closed(sock, SLACK)
    assert ended in ("eof", "reset")
    assert_error(raw, 431, "headers_too_large")


def _chat_request(content: str, *, extra: bytes = b"") -> bytes:
    body = orjson.dumps({"model": "auto", "messages": [{"role": "user", "content": content}]})
    return (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s"
            % (MASTER.encode(), len(body), extra, body))


def test_an_oversized_head_pipelined_behind_a_slow_response_gets_431_after_it(gw):
    with connect(gw.port) as sock:
        sock.sendall(_chat_request("Slow. [sim:delay_ms=500]") + OVERSIZED["one unterminated value"])
        raw, ended = read_until_closed(sock, SLACK)
    assert ended in ("eof", "reset")
    first, _, second = raw.partition(b"HTTP/1.1 431")
    assert first.startswith(b"HTTP/1.1 200 OK\r\n"), "the response in progress must be delivered whole"
    assert orjson.loads(parse(first)[2])["object"] == "chat.completion"
    assert_error(b"HTTP/1.1 431" + second, 431, "headers_too_large")


# --- header timeout ---------------------------------------------------------------------------

def _trickle(sock: socket.socket, stop: threading.Event, opening: bytes = b"") -> None:
    # Slowloris: a byte every 0.2 s keeps the connection busy but never finishes anything.
    try:
        sock.sendall(opening)
        while not stop.wait(0.2):
            sock.sendall(b"a")
    except OSError:
        pass


def test_a_body_trickling_after_its_early_answer_gets_408(gw):
    # Declared far over the body limit: answered 413 at once, and the body is never read by the app.
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
            b"Content-Type: application/json\r\nContent-Length: 999999999\r\n\r\n" % MASTER.encode())
    stop = threading.Event()
    with connect(gw.port) as sock:
        sock.sendall(head)
        assert read_response(sock)[0] == 413
        started = time.monotonic()
        threading.Thread(target=_trickle, args=(sock, stop), daemon=True).start()
        raw, ended = read_until_closed(sock, HEAD_TIMEOUT + SLACK)
        elapsed = time.monotonic() - started
        stop.set()
    assert ended in ("eof", "reset"), f"still open after {elapsed:.1f} s"
    assert_error(raw, 408, "request_timeout")


@pytest.mark.parametrize("opening", [b"", b"POST /v1/chat/completions HTT", b"GET /healthz HTTP/1.1\r\nHost: x\r\n",
                                     "trickle"], ids=["silent", "partial line", "partial headers", "slowloris"])
def test_an_unfinished_head_gets_408_and_a_close_after_the_header_timeout(gw, opening):
    stop = threading.Event()
    with connect(gw.port) as sock:
        started = time.monotonic()
        if opening == "trickle":
            threading.Thread(target=_trickle, args=(sock, stop, b"GET /healthz HTTP/1.1\r\nX-Slow: "),
                             daemon=True).start()
        elif opening:
            sock.sendall(opening)
        raw, ended = read_until_closed(sock, HEAD_TIMEOUT + SLACK)
        elapsed = time.monotonic() - started
        stop.set()
    assert ended in ("eof", "reset"), f"still open after {elapsed:.1f} s"
    assert elapsed >= HEAD_TIMEOUT * 0.9
    headers = assert_error(raw, 408, "request_timeout")
    assert headers["content-length"] == str(len(parse(raw)[2]))


def test_idle_keep_alive_is_not_cut_by_the_header_timeout(gw):
    with connect(gw.port) as sock:
        sock.sendall(HEALTHZ)
        assert read_response(sock)[0] == 200
        time.sleep(HEAD_TIMEOUT * 1.5)  # longer than the header timeout, shorter than keep-alive
        sock.sendall(HEALTHZ)
        assert read_response(sock)[0] == 200


def test_idle_keep_alive_is_closed_by_the_keep_alive_timeout(gw):
    with connect(gw.port) as sock:
        sock.sendall(HEALTHZ)
        assert read_response(sock)[0] == 200
        started = time.monotonic()
        raw, ended = read_until_closed(sock, KEEP_ALIVE + SLACK)
    assert (raw, ended) == (b"", "eof")
    assert time.monotonic() - started >= KEEP_ALIVE * 0.9


def test_the_next_request_on_a_keep_alive_connection_has_the_header_timeout_from_its_first_byte(gw):
    with connect(gw.port) as sock:
        sock.sendall(HEALTHZ)
        assert read_response(sock)[0] == 200
        sock.sendall(b"GET /hea")
        started = time.monotonic()
        raw, ended = read_until_closed(sock, HEAD_TIMEOUT + SLACK)
        elapsed = time.monotonic() - started
    assert ended in ("eof", "reset")
    assert HEAD_TIMEOUT * 0.9 <= elapsed < KEEP_ALIVE  # the header clock, not the keep-alive one
    assert_error(raw, 408, "request_timeout")


def test_pipelined_requests_are_all_served(gw):
    body = orjson.dumps({"model": "auto", "messages": [{"role": "user", "content": "hi"}]})
    post = (b"POST /v1/selection/explain HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s") % (MASTER.encode(), len(body), body)
    last = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with connect(gw.port) as sock:
        sock.sendall(HEALTHZ + post + HEALTHZ + last)  # one write: every head after the first is pipelined
        raw, ended = read_until_closed(sock, SLACK)
    assert ended == "eof"
    assert raw.count(b"HTTP/1.1 200 OK\r\n") == 4, raw[:600]


def test_a_response_slower_than_the_header_timeout_is_not_cut(gw):
    with connect(gw.port) as sock:
        sock.sendall(_chat_request(f"Slow answer. [sim:delay_ms={int(HEAD_TIMEOUT * 1500)}]"))
        status, _, reply = read_response(sock, HEAD_TIMEOUT * 1.5 + SLACK)
        assert status == 200, reply
        assert orjson.loads(reply)["object"] == "chat.completion"


# --- floods: memory stays bounded and nothing is held ---------------------------------------

def _flood_one(port: int, limit: int, out: list) -> None:
    sent, chunk = 0, b"a" * 65536
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Fill: ")
            while sent < limit:
                sock.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass  # the gateway closed the connection: the secure outcome
        raw, ended = read_until_closed(sock, SLACK)
    out.append((sent, raw, ended))


def test_a_header_flood_keeps_memory_bounded(gw):
    conns, limit = 8, 16 << 20  # 8 keyless connections offering 16 MiB of one header value each
    outcomes: list = []
    with PeakRss() as rss:
        threads = [threading.Thread(target=_flood_one, args=(gw.port, limit, outcomes)) for _ in range(conns)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert len(outcomes) == conns
    for sent, raw, ended in outcomes:
        assert sent < limit, "the gateway kept reading an unterminated head"
        assert ended in ("eof", "reset")
        if raw:  # a reset may come before the 431 when the client was still sending
            assert_error(raw, 431, "headers_too_large")
    # Unbounded, the gateway would hold 128 MiB of header bytes; generous bound for noise.
    assert rss.growth_mib < 32, f"RSS grew {rss.growth_mib:.0f} MiB"
    assert served(gw.port)


@pytest.mark.parametrize("opening", [b"", b"POST /v1/chat/completions HTT"], ids=["idle", "partial line"])
def test_a_half_open_flood_is_released_after_the_header_timeout(gw, opening):
    socks = []
    try:
        with PeakRss() as rss:
            for _ in range(200):
                sock = connect(gw.port)
                socks.append(sock)
                if opening:
                    sock.sendall(opening)
            assert served(gw.port), "a flood below the connection cap must not stop others being served"
            assert poll(lambda: gw.open_connections == 0, HEAD_TIMEOUT + SLACK), \
                f"{gw.open_connections} connections still held"
        for sock in socks:
            raw, ended = read_until_closed(sock, SLACK)
            assert ended in ("eof", "reset")
            assert_error(raw, 408, "request_timeout")
        assert rss.growth_mib < 32, f"RSS grew {rss.growth_mib:.0f} MiB"
    finally:
        for sock in socks:
            sock.close()


# --- connection cap ---------------------------------------------------------------------------

def test_connections_beyond_the_cap_are_refused_while_open_ones_keep_working(capped):
    gw = capped
    working = connect(gw.port)
    idle = [connect(gw.port) for _ in range(MAX_CONNS - 1)]
    try:
        working.sendall(HEALTHZ)
        assert read_response(working)[0] == 200
        assert poll(lambda: gw.open_connections == MAX_CONNS, SLACK)

        # One more: answered 503 at once, before it sends anything, and closed.
        with connect(gw.port) as extra:
            raw, ended = read_until_closed(extra, SLACK)
        assert ended in ("eof", "reset")
        headers = assert_error(raw, 503, "too_many_connections")
        assert headers["retry-after"] == "1"
        # One that sends its request straight away is never served either.
        with connect(gw.port) as extra:
            try:
                extra.sendall(HEALTHZ)
            except OSError:
                pass
            raw, ended = read_until_closed(extra, SLACK)
        assert ended in ("eof", "reset")
        if raw:
            assert_error(raw, 503, "too_many_connections")
        assert gw.open_connections == MAX_CONNS

        # The connections already open are unaffected.
        working.sendall(HEALTHZ)
        assert read_response(working)[0] == 200

        # A freed slot is usable again.
        idle.pop().close()
        assert poll(lambda: gw.open_connections < MAX_CONNS, SLACK)
        assert served(gw.port)
    finally:
        working.close()
        for sock in idle:
            sock.close()


# --- every way the gateway is served ----------------------------------------------------------

@pytest.mark.parametrize("workers", [1, 2])
def test_gateway_serve_applies_the_limits(simulator, tmp_path, workers):
    port = free_port()
    config = write_catalog(tmp_path / "catalog.yaml", simulator.base_url, top_level={"keys": key_specs()})
    (tmp_path / "policies").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(SIM_TEST_KEY=SIM_KEY, GATEWAY_LOG_LEVEL="warning", GATEWAY_MAX_HEADER_BYTES=str(CAP),
               GATEWAY_HEADER_TIMEOUT_S=str(HEAD_TIMEOUT), PYTHONPATH=str(ROOT),
               GATEWAY_ALLOW_LOCAL_STATE="true")  # two workers without Redis
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--policies", str(tmp_path / "policies"),
         "--port", str(port), "--workers", str(workers)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        def up() -> bool:
            try:
                return served(port)
            except OSError:
                return False

        assert poll(up, 60), "gateway serve did not start"
        with connect(port) as sock:
            sock.sendall(OVERSIZED["one unterminated value"])
            raw, ended = read_until_closed(sock, SLACK)
        assert ended in ("eof", "reset")
        assert_error(raw, 431, "headers_too_large")
        with connect(port) as sock:
            raw, ended = read_until_closed(sock, HEAD_TIMEOUT + SLACK)
        assert ended in ("eof", "reset")
        assert_error(raw, 408, "request_timeout")
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
