"""uvicorn's `ProxyHeadersMiddleware` without a coroutine of its own for a request it leaves alone.

uvicorn wraps every app in `ProxyHeadersMiddleware` (its `proxy_headers` option, on by default):
for a client it trusts (`--forwarded-allow-ips`, 127.0.0.1 by default) it takes the client's
address and scheme from `X-Forwarded-For` and `X-Forwarded-Proto`, which is how the gateway's
loopback-only rule sees the real client behind a local reverse proxy. Its `__call__` is a
coroutine that awaits the app: one more frame for every request, resumed at every suspension of
it (each event of a stream), and held for as long as it runs, even when the request has neither
header and nothing is rewritten, as for every request a client sends directly.

`LeanProxyHeaders` is that class with a plain `__call__`: a request that carries either header
goes through uvicorn's own `__call__` (its trust rules and parsing, unchanged); any other request,
which uvicorn's would pass on untouched, gets the app's coroutine itself.
"""

from __future__ import annotations

from typing import Any

from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

__all__ = ["LeanProxyHeaders", "lean_proxy_headers"]

# The only headers uvicorn's middleware reads (names arrive lower-cased from either parser).
_FORWARDED = (b"x-forwarded-for", b"x-forwarded-proto")


class LeanProxyHeaders(ProxyHeadersMiddleware):
    """Same attributes as uvicorn's: an instance of it is retagged (`lean_proxy_headers`)."""

    def __call__(self, scope: Any, receive: Any, send: Any) -> Any:  # type: ignore[override]
        if scope["type"] != "lifespan":
            for name, _ in scope["headers"]:
                if name in _FORWARDED:
                    return ProxyHeadersMiddleware.__call__(self, scope, receive, send)
        return self.app(scope, receive, send)


def lean_proxy_headers(app: Any) -> None:
    """Make uvicorn's proxy-headers layer around the server's app `app` (if it is one) the lean one.

    uvicorn builds the layer once per server (`Config.load`) and shares it between connections,
    so the first connection's protocol retags it, in place, for all of them."""
    if type(app) is ProxyHeadersMiddleware:
        app.__class__ = LeanProxyHeaders
