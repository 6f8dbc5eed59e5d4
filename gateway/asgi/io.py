"""Bare ASGI plumbing for the hot route: read a body, send bytes, watch for a client going away.

The chat route is the one every LLM call takes, so it skips the framework's per-request machinery
(routing, dependency solving, request/response objects); see docs/performance.md for what that
saves. Everything here is a thin layer over the ASGI messages themselves.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import orjson

from gateway import errors
from gateway.aio import aclose

__all__ = [
    "REQUEST_ID", "ClientGone", "Hangup", "Receive", "Scope", "Send", "new_request_id", "parse_json", "read_body",
    "request_id", "send_bytes", "send_error", "send_stream",
]

#: Scope key of the request's id, set by the app before any middleware or route runs.
REQUEST_ID = "gateway.request_id"

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_JSON_HEADERS = ((b"content-type", b"application/json"),)
_SSE_HEADERS = ((b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"))


def new_request_id() -> str:
    return "req_" + uuid.uuid4().hex


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
    nobody. A watcher task waits for `http.disconnect`; `absorb` then tells the handler's
    `except CancelledError` that the cancellation was ours to swallow. `close` it before the
    response's last message: a finished response reads as a disconnect too.

    The watcher starts only after `delay_s`: most answers that come back faster never pay for a
    task, and an LLM call that is worth cancelling runs for far longer than that.
    """

    __slots__ = ("gone", "_receive", "_task", "_timer", "_watcher")

    def __init__(self, receive: Receive, delay_s: float = 0.05) -> None:
        self.gone = False
        self._receive = receive
        self._task = asyncio.current_task()
        self._watcher: asyncio.Task | None = None
        self._timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(delay_s, self._start)

    def _start(self) -> None:
        self._timer = None
        self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass
        self.gone = True
        self._watcher = None
        if self._task is not None:
            self._task.cancel()

    def close(self) -> None:
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


async def send_stream(send: Send, headers: Mapping[str, str], events: AsyncIterator[bytes], hangup: Hangup) -> None:
    """Relay `events` as an SSE response; a hang-up cancels it (see `Hangup`), and closing the
    event iterator then releases the upstream response."""
    try:
        await send({"type": "http.response.start", "status": 200, "headers": [*_SSE_HEADERS, *_encode(headers)]})
        async for event in events:
            await send({"type": "http.response.body", "body": event, "more_body": True})
            del event  # not held while the next event is awaited (a slow stream idles there)
        hangup.close()
        await send({"type": "http.response.body", "body": b""})
    finally:
        await aclose(events)
