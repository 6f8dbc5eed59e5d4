"""`GatewayApp`: FastAPI for the management routes, with hot routes dispatched ahead of it.

FastAPI's per-request machinery (its middleware chain, routing, dependency solving and
request/response objects) cost about a quarter of the gateway's CPU per proxied call (profile in
docs/performance.md). The routes every LLM call takes are therefore plain ASGI apps matched by exact
path before FastAPI's stack; the rest (models, explain, stats, dashboard, metrics, health) keep the
framework. Middleware added with `app.add_middleware` wraps *both*, so authentication and limits
cannot be bypassed by the fast path.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.asgi.io import REQUEST_ID, ClientGone, new_request_id

__all__ = ["GatewayApp"]


# The layers below are plain callables returning the next layer's coroutine, not coroutines of
# their own: the caller awaits that one directly, so an open stream holds no frame for them (each
# frame, with its send closure, was ~0.3 KiB for as long as a stream ran), and a request's task
# resumes through fewer frames at every suspension. Between uvicorn and a fast route there are two
# coroutines left: `_Outermost` (an exception needs a frame to be caught in) and the security
# middleware's body limit.


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
    it is held while the response is under way); it notes whether the response has started."""

    __slots__ = ("_scope", "_send", "started")

    def __init__(self, send: Send, scope: Scope) -> None:
        self._send = send
        self._scope = scope
        self.started = False

    def __call__(self, message: dict) -> Awaitable[None]:
        if message["type"] == "http.response.start":
            self.started = True
            header = (b"x-gateway-request-id", self._scope[REQUEST_ID].encode())
            message["headers"] = [*message.get("headers", ()), header]
        return self._send(message)


class _Outermost:
    """Gives every request its id (`scope["gateway.request_id"]`) and every response, errors and
    refusals by any layer included, its `x-gateway-request-id` header, so any answer can be found
    in the logs; and turns an exception that escapes every layer into a 500, as Starlette's
    `ServerErrorMiddleware` does (the handler's response when nothing was sent yet, then re-raised
    for the server to log).

    One coroutine for both, and `send` passed down as a plain callable: Starlette's middleware
    wrapped `send` in a coroutine of its own, created for every message of every response.
    """

    def __init__(self, app: ASGIApp, errors: ServerErrorMiddleware) -> None:
        self._app = app
        self._errors = errors  # not in the chain: its handler, debug page and fallback are used from here

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._errors(scope, receive, send)
            return
        scope[REQUEST_ID] = new_request_id()
        stamped = _Stamped(send, scope)
        try:
            await self._app(scope, receive, stamped)
        except Exception as exc:
            response = await self._response(scope, exc)
            if not stamped.started:
                await response(scope, receive, stamped)
            raise

    async def _response(self, scope: Scope, exc: Exception) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
        """What `ServerErrorMiddleware` would answer (starlette/middleware/errors.py)."""
        middleware, request = self._errors, Request(scope)
        if middleware.debug:
            return middleware.debug_response(request, exc)
        if middleware.handler is None:
            return middleware.error_response(request, exc)
        if _is_async(middleware.handler):
            return await middleware.handler(request, exc)
        return await run_in_threadpool(middleware.handler, request, exc)


def _is_async(handler: Any) -> bool:
    while isinstance(handler, functools.partial):
        handler = handler.func
    return inspect.iscoroutinefunction(handler) or (callable(handler) and inspect.iscoroutinefunction(handler.__call__))


def _marked_coroutine_function(func: Callable) -> Callable:
    """Mark a plain function that returns a coroutine as a coroutine function.

    Servers pick the ASGI version from `iscoroutinefunction(app.__call__)` (uvicorn's `auto`
    interface), and a plain method would be taken for ASGI 2. `inspect.markcoroutinefunction`
    says so from Python 3.12; before it, asyncio's own marker attribute did.
    """
    mark = getattr(inspect, "markcoroutinefunction", None)
    if mark is not None:
        return mark(func)
    func._is_coroutine = asyncio.coroutines._is_coroutine  # type: ignore[attr-defined]
    return func


async def _client_gone(request: Request, exc: Exception) -> Response:
    """A framework route's body read (`asgi.read_body`) found its client gone: no error of the
    gateway's, and nobody to answer (a server drops what is sent to a gone client)."""
    return Response(status_code=499)


class GatewayApp(FastAPI):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._fast_routes: dict[str, ASGIApp] = {}
        # As the fast routes do: a client that hangs up before its body is in is not logged as an
        # unhandled error (with its traceback, by the app's catch-all handler and by the server).
        self.exception_handlers.setdefault(ClientGone, _client_gone)

    @_marked_coroutine_function
    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:  # type: ignore[override]
        # FastAPI's and Starlette's `__call__` each await the next layer in a coroutine of their
        # own, resumed at every suspension of every request; for HTTP (without FastAPI's own
        # telemetry) this does what the two do and returns the middleware stack's coroutine.
        telemetry = getattr(self, "_native_telemetry", None)  # FastAPI >= 0.165's own spans
        if scope["type"] != "http" or (telemetry is not None and telemetry.enabled()):
            return super().__call__(scope, receive, send)
        if self.root_path:
            scope["root_path"] = self.root_path
        scope["app"] = self
        stack = self.middleware_stack
        if stack is None:
            stack = self.middleware_stack = self.build_middleware_stack()
        return stack(scope, receive, send)

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
        return _Outermost(app, ServerErrorMiddleware(app, handler=handler, debug=self.debug))
