"""Bare ASGI plumbing for the hot route: read a body, send bytes, watch for a client going away.

The chat route is the one every LLM call takes, so it skips the framework's per-request machinery
(routing, dependency solving, request/response objects); see docs/performance.md for what that
saves. Everything here is a thin layer over the ASGI messages themselves.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import orjson

from gateway import errors

__all__ = ["Scope", "Receive", "Send", "read_body", "parse_json", "send_bytes", "send_error", "send_stream"]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_JSON_HEADERS = ((b"content-type", b"application/json"),)
_SSE_HEADERS = ((b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"))


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


async def send_error(send: Send, exc: errors.GatewayError) -> None:
    await send_bytes(send, exc.status, orjson.dumps(errors.error_body(exc)), exc.headers)


async def send_stream(
    receive: Receive, send: Send, headers: Mapping[str, str], events: AsyncIterator[bytes]
) -> bool:
    """Relay `events` as an SSE response; returns False when the client went away first.

    uvicorn drops writes to a closed connection silently (ASGI 2.4), so a stalled or slow upstream
    would otherwise keep being read for a client that is gone. A watcher task waits for
    `http.disconnect` and cancels the relay, which closes the upstream response in its `finally`.
    """
    relay = asyncio.current_task()
    gone = False

    async def watch() -> None:
        nonlocal gone
        while (await receive())["type"] != "http.disconnect":
            pass
        gone = True
        assert relay is not None
        relay.cancel()

    watcher = asyncio.create_task(watch())
    try:
        await send({"type": "http.response.start", "status": 200, "headers": [*_SSE_HEADERS, *_encode(headers)]})
        async for event in events:
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    except asyncio.CancelledError:
        if not gone:
            raise
        # Swallow only our own cancellation: the client is gone, nothing is left to send.
        relay.uncancel()  # type: ignore[union-attr]
        return False
    finally:
        watcher.cancel()
        await aclose(events)
    return True


async def aclose(events: AsyncIterator[bytes]) -> None:
    close = getattr(events, "aclose", None)
    if close is not None:
        await close()
