"""A malformed request that follows valid ones in the same socket read (gateway/serving.py,
`_Limited.send_400_response`): the valid ones are answered first, in order, then uvicorn's 400, then
the connection closes. It used to get the 400 at once, and a close that took the earlier answers
with it. A bare ASGI app under uvicorn with the gateway's protocols, over raw sockets; and the
gateway itself, as the probe that found it sent it.
"""

from __future__ import annotations

import asyncio

import orjson
import pytest

from gateway.settings import Settings
from tests._uvicorn import lifespan, read_body, served
from tests.security._rawhttp import connect, parse, read_until_closed

PARSERS = ["httptools", "h11"]
BOGUS = b"BOGUS\r\n\r\n"  # neither parser reads a request line in it
BAD_REQUEST = (b"http/1.1 400 bad request\r\n", b"content-type: text/plain; charset=utf-8\r\n",
               b"connection: close\r\n", b"invalid http request received.")  # uvicorn's, as either parser sends it


async def _app(scope, receive, send) -> None:
    """Answers with the length of the body it read; `/slow` first waits half a second."""
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    body = await read_body(receive)
    if scope["path"] == "/slow":
        await asyncio.sleep(0.5)
    answer = b"%s %d" % (scope["path"].encode(), len(body))
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(answer))]})
    await send({"type": "http.response.body", "body": answer})


@pytest.fixture(scope="module", params=PARSERS)
def port(request):
    with served(_app, Settings(http_parser=request.param, header_timeout_s=2.0)) as (port, _):
        yield port


def _post(path: str, body: bytes, length: int | None = None) -> bytes:
    return (b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (path.encode(), len(body) if length is None else length, body))


def _responses(raw: bytes) -> list[tuple[int, bytes]]:
    """(status, body) of each response in `raw`, in order. h11 frames its 400 by the close, or
    chunked after an earlier request on the connection."""
    out = []
    while raw:
        status, headers, rest = parse(raw)
        if headers.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                size_line, _, rest = rest.partition(b"\r\n")
                size = int(size_line, 16)
                body, rest = body + rest[:size], rest[size + 2:]
                if not size:
                    break
            out.append((status, body))
            raw = rest
            continue
        size = int(headers.get("content-length", len(rest)))
        out.append((status, rest[:size]))
        raw = rest[size:]
    return out


def _exchange(port: int, payload: bytes) -> tuple[bytes, str]:
    with connect(port) as sock:
        sock.sendall(payload)  # one write: the kernel hands it to the server in one read
        return read_until_closed(sock, 5.0)


@pytest.mark.parametrize("path", ["/quick", "/slow"])
def test_a_malformed_request_after_a_valid_one_in_the_same_read_is_answered_after_it(port, path):
    raw, ended = _exchange(port, _post(path, b'{"a": 1}') + BOGUS)
    assert ended == "eof", raw
    assert _responses(raw) == [(200, path.encode() + b" 8"), (400, b"Invalid HTTP request received.")], raw
    last = raw[raw.index(b"HTTP/1.1 400"):].lower()
    assert all(part in last for part in BAD_REQUEST), last


def test_every_pipelined_request_before_a_malformed_one_is_answered_in_order(port):
    raw, ended = _exchange(port, _post("/slow", b"{}") + _post("/quick", b'{"b": 2}') + _post("/slow", b"") + BOGUS)
    assert ended == "eof", raw
    assert _responses(raw) == [(200, b"/slow 2"), (200, b"/quick 8"), (200, b"/slow 0"),
                               (400, b"Invalid HTTP request received.")], raw


@pytest.mark.parametrize("before", [["/slow"], ["/slow", "/quick"]])
def test_a_queued_request_whose_body_is_malformed_is_refused_after_the_ones_before_it(port, before):
    # Its head was read and queued behind the others' answers; its chunked body is not a chunk size.
    bad = b"POST /bad HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\nxx\r\n0\r\n\r\n"
    raw, ended = _exchange(port, b"".join(_post(path, b"{}") for path in before) + bad)
    assert ended == "eof", raw
    assert _responses(raw) == [*((200, path.encode() + b" 2") for path in before),
                               (400, b"Invalid HTTP request received.")], raw


def test_a_content_length_short_of_the_body_answers_the_request_then_refuses_the_surplus(port):
    # The declared length ends the first request early; what is left over is read as a next
    # request, and a malformed one (the probe's t4d.py, with a line end for h11, which otherwise
    # waits for the rest of a request line).
    body = b'{"model": "m", "max_tokens": 3}'
    raw, ended = _exchange(port, _post("/quick", body + b"\r\n\r\n", length=len(body) - 5))
    assert ended == "eof", raw
    assert _responses(raw) == [(200, b"/quick %d" % (len(body) - 5)), (400, b"Invalid HTTP request received.")], raw


def test_a_malformed_request_alone_is_still_refused_at_once(port):
    raw, ended = _exchange(port, BOGUS)
    assert ended in ("eof", "reset")
    assert _responses(raw) == [(400, b"Invalid HTTP request received.")]


# --- the gateway, as the probe found it (t4e.py) ---------------------------------------------------

def test_the_gateway_answers_a_chat_request_before_the_malformed_one_that_followed_it(gateway_factory):
    gw = gateway_factory(transport="openai")
    body = orjson.dumps({"model": "auto", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3})
    raw, ended = _exchange(gw.port, _post("/v1/chat/completions", body) + BOGUS)
    assert ended == "eof", raw
    (first_status, first), (second_status, second) = _responses(raw)
    assert first_status == 200, first
    assert orjson.loads(first)["object"] == "chat.completion"
    assert (second_status, second) == (400, b"Invalid HTTP request received.")
