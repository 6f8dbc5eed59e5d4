"""Bare ASGI plumbing for the hot route: read a body, send bytes, watch for a client going away.

The chat route is the one every LLM call takes, so it skips the framework's per-request machinery
(routing, dependency solving, request/response objects); see docs/performance.md for what that
saves. Everything here is a thin layer over the ASGI messages themselves.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from starlette.datastructures import Headers

from gateway import errors

__all__ = [
    "HANGUP_HOOK", "REQUEST_ID", "ClientGone", "Hangup", "Receive", "RequestHeaders", "Scope", "Send", "new_request_id",
    "parse_json", "read_body", "request_id", "send_bytes", "send_error", "sse_start",
]

#: Scope key of the request's id, set by the app before any middleware or route runs.
REQUEST_ID = "gateway.request_id"
#: Scope key of the server's hook, where the server has one (gateway/serving.py's protocols):
#: `watch_hangup(scope, watcher) -> bool` and `unwatch_hangup(watcher)` (see `Hangup`), and
#: `busy()`, and `first_event_written()`, which sends a stream's first event at once unless it is.
HANGUP_HOOK = "gateway.hangup_hook"

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_JSON_HEADERS = ((b"content-type", b"application/json"),)
_SSE_HEADERS = ((b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"))


class RequestHeaders(Headers):
    """Starlette's `Headers` over a request's raw list, with a `get` that is one dict lookup.

    `Mapping.get` went through `__getitem__`, which lower-cases and encodes the name and then
    scans every header, for each of the handful of headers a request's decision reads. The index
    (each name's first value, as `__getitem__` finds it) is built on the first `get`; the raw list
    must not change after that, and nothing changes it once the route has the request.
    """

    _index: dict[bytes, bytes] | None = None

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        index = self._index
        if index is None:
            # Reversed, so that a repeated name keeps its first value.
            index = self._index = dict(reversed(self._list))
        value = index.get(key.lower().encode("latin-1"))
        return default if value is None else value.decode("latin-1")


def new_request_id() -> str:
    # 32 random hex digits, as `uuid4().hex` gave, without building a UUID (2.0 -> 0.5 us, timeit).
    return "req_" + os.urandom(16).hex()


def request_id(scope: Scope) -> str:
    """The id the app gave this request (a fresh one for an app mounted without `GatewayApp`)."""
    rid = scope.get(REQUEST_ID)
    if rid is None:
        rid = scope[REQUEST_ID] = new_request_id()
    return rid


class ClientGone(Exception):
    """The client disconnected before its request body arrived in full."""


async def read_body(receive: Receive) -> bytes:
    first = await receive()
    if first["type"] == "http.disconnect":
        raise ClientGone
    body = first.get("body", b"")
    if not first.get("more_body"):
        return body
    parts = [body]
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(parts)


def parse_json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.InvalidRequestError(f"The request body is not valid JSON: {exc}", param="body") from None


def _encode(headers: Mapping[str, str] | None) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]


async def send_bytes(send: Send, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> None:
    raw = [*_JSON_HEADERS, (b"content-length", str(len(body)).encode()), *_encode(headers)]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def send_error(send: Send, exc: errors.GatewayError,
                     render: Callable[[errors.GatewayError], dict] = errors.error_body) -> None:
    """`exc` as an error response; `render` is `errors.error_body` (OpenAI's shape) or, on the
    Anthropic-format route, `errors.anthropic_error_body`."""
    await send_bytes(send, exc.status, orjson.dumps(render(exc)), exc.headers)


class Hangup:
    """Cancels the request's task when the client disconnects.

    uvicorn neither cancels an app whose client went away nor fails its writes (ASGI 2.4: they
    are dropped), so a slow upstream would otherwise be waited for, and paid for, on behalf of
    nobody. `absorb` then tells the handler's `except CancelledError` that the cancellation was
    ours to swallow. `close` it before the response's last message: a finished response reads as a
    disconnect too.

    The gateway's own server says when a request's client disconnects (`HANGUP_HOOK` in the scope,
    gateway/serving.py): then nothing runs until it does. Elsewhere (another server, a test
    transport) a watcher task waits for `http.disconnect` from `receive()`, started only after
    `delay_s`: most answers that come back faster never pay for a task, and an LLM call that is
    worth cancelling runs for far longer than that. A task, its coroutines and its wait held
    ~2 KiB for as long as a stream ran.
    """

    __slots__ = ("_hook", "_receive", "_task", "_timer", "_watcher", "gone")

    def __init__(self, receive: Receive, scope: Scope | None = None, delay_s: float = 0.05) -> None:
        self.gone = False
        self._receive = receive
        self._task = asyncio.current_task()
        self._watcher: asyncio.Task | None = None
        self._timer: asyncio.TimerHandle | None = None
        hook = scope.get(HANGUP_HOOK) if scope is not None else None
        if hook is not None and self._task is not None and hook.watch_hangup(scope, self):
            self._hook = hook
        else:
            self._hook = None
            self._timer = asyncio.get_running_loop().call_later(delay_s, self._start)

    def hung_up(self) -> None:
        """The client is gone (the server's hook, or the watcher, says so): cancel the request."""
        self.gone = True
        self._hook = self._watcher = None
        if self._task is not None:
            self._task.cancel()

    def _start(self) -> None:
        self._timer = None
        self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass
        self.hung_up()

    def close(self) -> None:
        if self._hook is not None:
            self._hook.unwatch_hangup(self)
            self._hook = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None

    def absorb(self) -> bool:
        """In an `except CancelledError`: True (and the cancellation undone) if it was a hang-up."""
        if not self.gone or self._task is None:
            return False
        self._task.uncancel()
        return True


def sse_start(headers: Mapping[str, str]) -> dict[str, Any]:
    """The `http.response.start` message of an SSE stream with `headers`; its events follow as
    `http.response.body` messages with `more_body`, which the route relays itself (a helper that
    awaited them would hold its frame for as long as the stream runs)."""
    return {"type": "http.response.start", "status": 200, "headers": [*_SSE_HEADERS, *_encode(headers)]}
