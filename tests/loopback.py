"""httpx's one-call API (`get`, `post`, `request`, `stream`, ...) for the tests' plain-HTTP calls
to the servers they start on loopback.

Each call is exactly `httpx.post(...)`: a new client and a new connection, no cookies kept between
calls, the environment honoured. Only TLS set-up is shared: httpx builds an SSL context for every
client, loading the whole CA bundle (about 20 ms of CPU) though no test speaks TLS, and with
thousands of such calls that was a fifth of the suite's CPU time. Here every client gets one
context, made once per process.
"""

from __future__ import annotations

from typing import Any

import httpx

__all__ = ["TLS", "client", "delete", "get", "head", "patch", "post", "put", "request", "stream"]

#: httpx's default context (the same certificates it would load), made once.
TLS = httpx.create_ssl_context()


def request(method: str, url: str, **kwargs: Any) -> httpx.Response:
    kwargs.setdefault("verify", TLS)
    return httpx.request(method, url, **kwargs)


def get(url: str, **kwargs: Any) -> httpx.Response:
    return request("GET", url, **kwargs)


def head(url: str, **kwargs: Any) -> httpx.Response:
    return request("HEAD", url, **kwargs)


def post(url: str, **kwargs: Any) -> httpx.Response:
    return request("POST", url, **kwargs)


def put(url: str, **kwargs: Any) -> httpx.Response:
    return request("PUT", url, **kwargs)


def patch(url: str, **kwargs: Any) -> httpx.Response:
    return request("PATCH", url, **kwargs)


def delete(url: str, **kwargs: Any) -> httpx.Response:
    return request("DELETE", url, **kwargs)


def stream(method: str, url: str, **kwargs: Any):  # noqa: ANN201 - httpx.stream's context manager
    kwargs.setdefault("verify", TLS)
    return httpx.stream(method, url, **kwargs)


def client(**kwargs: Any) -> httpx.Client:
    """`httpx.Client(...)` with the shared TLS context."""
    kwargs.setdefault("verify", TLS)
    return httpx.Client(**kwargs)
