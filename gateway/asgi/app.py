"""`GatewayApp`: FastAPI for the management routes, with hot routes dispatched ahead of it.

FastAPI's per-request machinery (its middleware chain, routing, dependency solving and
request/response objects) cost about a quarter of the gateway's CPU per proxied call (profile in
docs/performance.md). The routes every LLM call takes are therefore plain ASGI apps matched by exact
path before FastAPI's stack; the rest (models, explain, stats, dashboard, metrics, health) keep the
framework. Middleware added with `app.add_middleware` wraps *both*, so authentication and limits
cannot be bypassed by the fast path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.asgi.io import REQUEST_ID, new_request_id

__all__ = ["GatewayApp"]


# The layers below are plain callables returning the next layer's coroutine, not coroutines of
# their own: the caller awaits that one directly, so an open stream holds no frame for them (each
# frame, with its send closure, was ~0.3 KiB for as long as a stream ran).


class _Dispatch:
    def __init__(self, fast: dict[str, ASGIApp], rest: ASGIApp) -> None:
        self._fast = fast
        self._rest = rest

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] == "http":
            app = self._fast.get(scope["path"])
            if app is not None:
                return app(scope, receive, send)
        return self._rest(scope, receive, send)


class _Stamped:
    """`send`, with the request id's header added to the response's start (made then: nothing of
    it is held while the response is under way)."""

    __slots__ = ("_scope", "_send")

    def __init__(self, send: Send, scope: Scope) -> None:
        self._send = send
        self._scope = scope

    def __call__(self, message: dict) -> Awaitable[None]:
        if message["type"] == "http.response.start":
            header = (b"x-gateway-request-id", self._scope[REQUEST_ID].encode())
            message["headers"] = [*message.get("headers", ()), header]
        return self._send(message)


class _RequestId:
    """Gives every request its id (`scope["gateway.request_id"]`) and every response, errors and
    refusals by any layer included, its `x-gateway-request-id` header, so any answer can be found
    in the logs."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] != "http":
            return self._app(scope, receive, send)
        scope[REQUEST_ID] = new_request_id()
        return self._app(scope, receive, _Stamped(send, scope))


class GatewayApp(FastAPI):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._fast_routes: dict[str, ASGIApp] = {}

    def add_fast_route(self, path: str, app: ASGIApp) -> None:
        """Serve `path` (every method) with the raw ASGI `app`; it must render its own errors."""
        self._fast_routes[path] = app
        self.middleware_stack = None  # rebuilt on the next request, as add_middleware does

    def build_middleware_stack(self) -> ASGIApp:
        user = self.user_middleware
        self.user_middleware = []
        try:
            rest = super().build_middleware_stack()
        finally:
            self.user_middleware = user
        app: ASGIApp = _Dispatch(self._fast_routes, rest)
        for cls, args, kwargs in reversed(user):
            app = cls(app, *args, **kwargs)
        # Outermost: an exception escaping user middleware still becomes an OpenAI 500 body.
        handler: Callable | None = self.exception_handlers.get(Exception) or self.exception_handlers.get(500)
        return _RequestId(ServerErrorMiddleware(app, handler=handler, debug=self.debug))
