"""`LeanProxyHeaders` (gateway/_proxy_headers.py): uvicorn's proxy-headers layer, with no coroutine of
its own for a request without forwarded headers, and the same outcome for every request."""

from __future__ import annotations

import asyncio
import http.client
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from gateway._proxy_headers import LeanProxyHeaders, lean_proxy_headers
from gateway.settings import Settings
from tests._uvicorn import lifespan, served


class _Seen:
    """An app that notes the scope it was called with."""

    def __init__(self) -> None:
        self.scope: dict | None = None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        self.scope = dict(scope)


def _outcome(cls: type, trusted: str, scope: dict) -> dict | None:
    app = _Seen()
    layer = ProxyHeadersMiddleware(app, trusted_hosts=trusted)
    layer.__class__ = cls
    asyncio.run(layer({**scope, "headers": list(scope["headers"])}, None, None))
    return app.scope


_NAMES = st.sampled_from([b"x-forwarded-for", b"x-forwarded-proto", b"host", b"x-forwarded-host", b"authorization"])
_VALUES = st.sampled_from([b"203.0.113.9", b"10.1.2.3, 203.0.113.9", b"[2001:db8::1]:443", b"", b"https", b"wss",
                           b"ftp", b"127.0.0.1:5", b"garbage"])


@settings(max_examples=300, deadline=None)
@given(headers=st.lists(st.tuples(_NAMES, _VALUES), max_size=4),
       client=st.sampled_from([("127.0.0.1", 5000), ("203.0.113.7", 1), ("10.9.8.7", 2), None]),
       trusted=st.sampled_from(["127.0.0.1", "*", "10.0.0.0/8, 127.0.0.1", "192.0.2.1"]),
       kind=st.sampled_from(["http", "websocket"]))
def test_the_app_sees_what_uvicorns_layer_hands_it(headers: list, client: Any, trusted: str, kind: str) -> None:
    scope = {"type": kind, "scheme": "http", "client": client, "headers": headers}
    assert _outcome(LeanProxyHeaders, trusted, scope) == _outcome(ProxyHeadersMiddleware, trusted, scope)


def test_without_forwarded_headers_the_apps_own_coroutine_is_handed_back() -> None:
    inner = _Seen()
    layer = ProxyHeadersMiddleware(inner)
    lean_proxy_headers(layer)
    assert type(layer) is LeanProxyHeaders
    plain = layer({"type": "http", "client": ("127.0.0.1", 1), "headers": [(b"host", b"x")]}, None, None)
    forwarded = layer({"type": "http", "client": ("127.0.0.1", 1), "headers": [(b"x-forwarded-for", b"1.2.3.4")]},
                      None, None)
    try:
        assert plain.cr_code is _Seen.__call__.__code__  # no frame of the layer's own in between
        assert forwarded.cr_code is ProxyHeadersMiddleware.__call__.__code__  # uvicorn's, for the rewrite
    finally:
        plain.close()
        forwarded.close()
    lean_proxy_headers(inner)  # anything else is left as it is
    assert type(inner) is _Seen


async def _echo_client(scope: dict, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    body = json.dumps({"client": scope["client"][0], "scheme": scope["scheme"]}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


@pytest.mark.parametrize("parser", ["httptools", "h11"])
def test_a_served_request_is_rewritten_only_when_it_carries_the_headers(parser: str) -> None:
    """Through a real server with the gateway's protocols: a loopback client is trusted, as by
    uvicorn's default, so its forwarded address (a local reverse proxy's client) replaces its own
    (which the gateway's loopback-only rule then refuses); a plain request keeps its own."""
    with served(_echo_client, Settings(http_parser=parser)) as (port, _):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        seen = []
        for headers in ({}, {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}, {}):
            conn.request("GET", "/", headers=headers)
            seen.append(json.loads(conn.getresponse().read()))
        conn.close()
    assert seen == [{"client": "127.0.0.1", "scheme": "http"}, {"client": "203.0.113.9", "scheme": "https"},
                    {"client": "127.0.0.1", "scheme": "http"}]
