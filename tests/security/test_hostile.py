"""Hostile requests get clean 4xx OpenAI errors naming what was wrong, and nothing reaches upstream.

Everything goes over real HTTP to a gateway with keys configured; raw sockets where an HTTP client
would refuse to send the bytes.
"""

from __future__ import annotations

import socket

import httpx
import pytest

from gateway.core.context import FORBIDDEN_PARAMS

from .conftest import MASTER, auth, chat, sim_bodies
from tests import loopback

_MSG = [{"role": "user", "content": "hi"}]

# (body, status, param the error names, words the message contains)
CASES = [
    ([1, 2], 400, "body", "JSON object"),
    ({"messages": _MSG}, 400, "model", "model"),
    ({"model": 7, "messages": _MSG}, 400, "model", "string"),
    ({"model": "auto"}, 400, "messages", "non-empty"),
    ({"model": "auto", "messages": []}, 400, "messages", "non-empty"),
    ({"model": "auto", "messages": "hi"}, 400, "messages", "array"),
    ({"model": "auto", "messages": ["hi"]}, 400, "messages[0]", "object"),
    ({"model": "auto", "messages": [{"role": "root", "content": "x"}]}, 400, "messages[0].role", "root"),
    ({"model": "auto", "messages": [{"content": "x"}]}, 400, "messages[0].role", "role"),
    ({"model": "auto", "messages": [{"role": "user", "content": 5}]}, 400, "messages[0].content", "string"),
    ({"model": "auto", "messages": [{"role": "user", "content": [5]}]}, 400, "messages[0].content[0]", "type"),
    ({"model": "auto", "messages": [{"role": "user", "content": [{"type": "exe"}]}]}, 400,
     "messages[0].content[0].type", "exe"),
    ({"model": "auto", "messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]}, 400,
     "messages[0].content[0].text", "string"),
    ({"model": "auto", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": 3}]}]}, 400,
     "messages[0].content[0].image_url", "url"),
    ({"model": "auto", "messages": [{"role": "user", "content": "x", "name": ["a"]}]}, 400, "messages[0].name", "string"),
    ({"model": "auto", "messages": [{"role": "assistant", "content": None, "tool_calls": [{"function": "f"}]}]},
     400, "messages[0].tool_calls", "tool_calls"),
    (chat(n=10**6), 400, "n", "'n'"),
    (chat(n=0), 400, "n", "'n'"),
    (chat(n=True), 400, "n", "'n'"),
    (chat(max_tokens=-5), 400, "max_tokens", "positive"),
    (chat(max_tokens=0), 400, "max_tokens", "positive"),
    (chat(max_tokens=10**12), 400, "max_tokens", "at most"),
    (chat(max_tokens="100"), 400, "max_tokens", "integer"),
    (chat(max_completion_tokens=1.5), 400, "max_completion_tokens", "integer"),
    (chat(temperature=9), 400, "temperature", "between"),
    (chat(temperature="hot"), 400, "temperature", "number"),
    (chat(top_p=-1), 400, "top_p", "between"),
    (chat(presence_penalty=1e308), 400, "presence_penalty", "between"),
    (chat(stop=["a", "b", "c", "d", "e"]), 400, "stop", "at most 4"),
    (chat(stop=7), 400, "stop", "string"),
    (chat(stream="yes"), 400, "stream", "boolean"),
    (chat(stream_options="x"), 400, "stream_options", "object"),
    (chat(seed="abc"), 400, "seed", "integer"),
    (chat(top_logprobs=1000), 400, "top_logprobs", "between"),
    (chat(tool_choice="maybe"), 400, "tool_choice", "auto"),
    (chat(tool_choice={"function": "f"}), 400, "tool_choice", "function"),
    (chat(tools="all"), 400, "tools", "array"),
    (chat(tools=[{"type": "function"}]), 400, "tools[0]", "function"),
    (chat(response_format="json"), 400, "response_format", "object"),
    (chat(logit_bias=[1]), 400, "logit_bias", "object"),
    (chat(frobnicate=1), 400, "frobnicate", "Unrecognized"),
    ({"model": "no-such-model", "messages": _MSG}, 404, "model", "does not exist"),
]
# Provider-control parameters: refused by name, including every prefix family.
CONTROL = sorted(FORBIDDEN_PARAMS) + [
    "aws_access_key_id", "aws_region_name", "vertex_project", "vertex_credentials", "azure_ad_token_provider",
    "litellm_logging_obj", "watsonx_api_key", "metadata", "client", "extra_body", "drop_params", "ssl_verify",
]


def _post(gw, body, path="/chat/completions") -> httpx.Response:
    return loopback.post(gw.base_url + path, json=body, headers=auth(MASTER), timeout=10)


@pytest.mark.parametrize("body,status,param,words", CASES, ids=[f"{c[2]}-{i}" for i, c in enumerate(CASES)])
def test_hostile_body(secure_gateway, body, status, param, words):
    for path in ("/chat/completions", "/selection/explain"):
        resp = _post(secure_gateway, body, path)
        assert resp.status_code == status, resp.text
        err = resp.json()["error"]
        assert err["param"] == param and words in err["message"], err
        assert err["type"] == "invalid_request_error"


@pytest.mark.parametrize("param", CONTROL)
def test_provider_control_params_are_refused(secure_gateway, simulator, param):
    marker = f"control-{param}"
    resp = _post(secure_gateway, chat(marker, **{param: "http://evil.example/v1"}))
    assert resp.status_code == 400, resp.text
    err = resp.json()["error"]
    assert err["param"] == param and param in err["message"]
    assert marker not in str(sim_bodies(simulator))  # nothing was forwarded


@pytest.mark.parametrize("raw", [b"{", b"", b"null", b"\xff\xfe", b'{"model": "auto", "messages": [', b"[]" * 10])
def test_malformed_json(secure_gateway, raw):
    resp = loopback.post(secure_gateway.base_url + "/chat/completions", content=raw,
                         headers={**auth(MASTER), "content-type": "application/json"})
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == "body"


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br", "zstd", "gzip, identity"])
def test_a_compressed_body_is_refused_as_such_on_every_route(secure_gateway, simulator, coding):
    # Read as it is, a gzip body failed as JSON "not valid UTF-8": a 400 about bytes the client
    # never wrote. It is a 415 naming the header, with the codings a request may use (RFC 7694).
    import gzip

    raw = gzip.compress(b'{"model":"auto","messages":[{"role":"user","content":"compressed"}]}')
    for path in ("/chat/completions", "/responses", "/embeddings", "/selection/explain", "/feedback", "/messages"):
        resp = loopback.post(secure_gateway.base_url + path, content=raw,
                             headers={**auth(MASTER), "content-type": "application/json", "content-encoding": coding})
        assert resp.status_code == 415, (path, resp.text)
        assert resp.headers["accept-encoding"] == "identity"
        err = resp.json()["error"]
        assert coding in err["message"] and err["type"] == "invalid_request_error", (path, err)
        if path != "/messages":  # Anthropic's error shape has no param or code
            assert (err["param"], err["code"]) == ("content-encoding", "unsupported_content_encoding")
    assert "compressed" not in str(sim_bodies(simulator))  # nothing was forwarded
    # Identity is no coding at all: served.
    resp = loopback.post(secure_gateway.base_url + "/chat/completions", json=chat(),
                         headers={**auth(MASTER), "content-encoding": "identity"})
    assert resp.status_code == 200, resp.text


def test_body_limit_declared_streamed_and_lying(secure_factory):
    gw = secure_factory(max_body_bytes=64 * 1024)
    url = gw.base_url + "/chat/completions"
    big = chat("x" * 100_000)
    resp = loopback.post(url, json=big, headers=auth(MASTER))
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "payload_too_large"

    def chunks():  # no Content-Length: chunked transfer encoding
        for _ in range(50):
            yield b"x" * 8192

    for path in ("/chat/completions", "/selection/explain", "/feedback"):
        resp = loopback.post(gw.base_url + path, content=chunks(),
                             headers={**auth(MASTER), "content-type": "application/json"})
        assert resp.status_code == 413, (path, resp.text)
    # Content-Length claims a small body, then far more arrives: the parser reads only what was
    # declared, so the surplus can never be buffered as this request's body.
    body = b'{"model":"auto"}' + b" " * 200_000
    reply = _raw(gw.port, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + MASTER.encode()
                 + b"\r\nContent-Type: application/json\r\nContent-Length: 16\r\nConnection: close\r\n\r\n" + body)
    assert reply.startswith(b"HTTP/1.1 400") and b"messages" in reply
    # Content-Length claims more than the limit: refused before a byte of body is read.
    reply = _raw(gw.port, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + MASTER.encode()
                 + b"\r\nContent-Type: application/json\r\nContent-Length: 999999999\r\n\r\n{")
    assert reply.startswith(b"HTTP/1.1 413") and b"payload_too_large" in reply
    assert loopback.post(url, json=chat(), headers=auth(MASTER)).status_code == 200  # still serving


def _raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        out = b""
        while b"\r\n\r\n" not in out or not _complete(out):
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    return out


def _complete(reply: bytes) -> bool:
    head, _, body = reply.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


_REQ = (b"POST /v1/selection/explain HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + MASTER.encode()
        + b"\r\nContent-Type: application/json\r\nConnection: close\r\n")
_BODY = b'{"model":"auto","messages":[{"role":"user","content":"hi"}]}'


@pytest.mark.parametrize("header", [
    b"X-Pipeline-Id: a\rb", b"X-Pipeline-Id: a\nb", b"X-Pipeline-Id: a\x00b", b"X-Task-Domain: a\x01b",
    b"X-Pipeline-Id: a\x7fb", b"X-Pipeline-Id: a\r\n b", b"Authorization: Bearer x\r\nInjected: 1\rx",
])
def test_control_characters_in_headers_get_a_400(secure_gateway, header):
    # The HTTP parser (httptools or h11 under uvicorn) refuses these before the app runs: a plain
    # 400 and a closed connection. The middleware refuses the same bytes should a parser pass them
    # (see test_middleware_refuses_control_characters).
    reply = _raw(secure_gateway.port, _REQ + header + b"\r\nContent-Length: %d\r\n\r\n" % len(_BODY) + _BODY)
    assert reply.startswith(b"HTTP/1.1 400"), reply[:200]
    assert b"connection: close" in reply.lower()


@pytest.mark.parametrize("name,size,status,param", [
    (b"X-Pipeline-Id", 1000, 400, "x-pipeline-id"),
    (b"X-Selection-Strategy", 500, 400, "x-selection-strategy"),
    (b"X-Task-Domain", 500, 400, "x-task-domain"),
    (b"Api-Key", 5000, 400, "api-key"),
    (b"X-Other", 40_000, 431, "headers"),
])
def test_long_headers(secure_gateway, name, size, status, param):
    resp = loopback.post(secure_gateway.base_url + "/selection/explain", content=_BODY,
                         headers={**auth(MASTER), name.decode(): "a" * size})
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["param"] == param


def test_repeated_headers_are_ambiguous(secure_gateway):
    reply = _raw(secure_gateway.port, _REQ + b"X-Pipeline-Id: a\r\nX-Pipeline-Id: b\r\nContent-Length: %d\r\n\r\n"
                 % len(_BODY) + _BODY)
    assert reply.startswith(b"HTTP/1.1 400") and b"more than once" in reply


def test_middleware_refuses_control_characters():
    import asyncio

    from gateway.security.keys import KeyRing
    from gateway.security.middleware import SecurityMiddleware

    async def inner(scope, receive, send):
        raise AssertionError("must not run")

    for value in (b"a\r\nb", b"a\x00", b"\x1b[31m"):
        sent: list[dict] = []

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "GET", "path": "/v1/models", "client": ("127.0.0.1", 1),
                 "headers": [(b"x-pipeline-id", value)]}
        asyncio.run(SecurityMiddleware(inner, keyring=KeyRing())(scope, None, send))
        assert sent[0]["status"] == 400 and b"control characters" in sent[1]["body"]


def test_middleware_refuses_exactly_the_c0_controls_and_del():
    # The check deletes the refused bytes and compares lengths: the same set as the expression
    # `[\x00-\x08\x0a-\x1f\x7f]` it replaced, every byte tried.
    import asyncio
    import re

    from gateway.security.keys import KeyRing
    from gateway.security.middleware import SecurityMiddleware

    refused = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
    reached: list[int] = []

    async def inner(scope, receive, send):
        reached.append(scope["headers"][0][1][1])

    async def send(message):
        pass

    for byte in range(256):
        scope = {"type": "http", "method": "GET", "path": "/v1/models", "client": ("127.0.0.1", 1),
                 "headers": [(b"x-pipeline-id", bytes([0x61, byte, 0x7a]))]}
        asyncio.run(SecurityMiddleware(inner, keyring=KeyRing())(scope, None, send))
    assert reached == [b for b in range(256) if not refused.search(bytes([b]))]


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/v1/feedback/"), ("POST", "/v1/selection/explain/"), ("POST", "/v1/completions/"),
    ("GET", "/v1/gateway/stats/"), ("GET", "/metrics/"), ("GET", "/healthz/"), ("GET", "/readyz/"),
    ("GET", "/dashboard/"), ("POST", "/v1/chat/completions/"),
])
def test_a_trailing_slash_is_a_json_404_never_a_redirect(secure_gateway, method, path):
    # A redirect would be built from the client's Host header: an open redirect with an empty body.
    resp = loopback.request(method, secure_gateway.url + path, json={}, follow_redirects=False,
                            headers={**auth(MASTER), "Host": "evil.example"})
    assert resp.status_code == 404 and "location" not in resp.headers, (resp.status_code, resp.headers)
    assert resp.json()["error"]["code"] == "unknown_url" and "evil.example" not in resp.text
