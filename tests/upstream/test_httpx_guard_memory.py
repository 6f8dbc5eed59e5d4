"""A request through litellm's HTTP clients leaves nothing for the cycle collector.

httpx's client binds each response's stream to the response (response.stream -> BoundAsyncStream
-> response), and that cycle held the whole request (a 900 KB prompt) and the read answer until a
full collection, which with a gateway's heap comes every few hundred requests: RSS grew by ~0.9 MB
a request. `GuardedTransport` breaks the cycle when the response is closed. Measured with the
collector off, so what a cycle holds shows up in tracemalloc instead of waiting for a collection.
"""

from __future__ import annotations

import asyncio
import tracemalloc

import httpx

from gateway.upstream.httpx_guard import GuardedTransport
from tests._retained import retained_bytes

MIB = 1024 * 1024
REQUESTS = 20


def _retained_after(requests: int, *, request_bytes: int, answer_bytes: int, stream: bool) -> int:
    """Bytes still allocated (tracemalloc) after `requests` calls whose responses were dropped."""

    def upstream(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=bytes([len(request.content) % 251]) * answer_bytes)

    async def run() -> int:
        guard = GuardedTransport(httpx.MockTransport(upstream), max_response_bytes=64 * MIB)
        async with httpx.AsyncClient(transport=guard) as client:
            await client.post("http://upstream.test/v1/chat", content=b"warm-up")
            start = tracemalloc.get_traced_memory()[0]
            for i in range(requests):
                body = bytes([i % 251]) * request_bytes  # a new prompt every request
                if stream:
                    async with client.stream("POST", "http://upstream.test/v1/chat", content=body) as response:
                        got = sum([len(chunk) async for chunk in response.aiter_bytes()])
                else:
                    response = await client.post("http://upstream.test/v1/chat", content=body)
                    got = len(response.content)
                assert response.status_code == 200 and got == answer_bytes
                del body, response
            return tracemalloc.get_traced_memory()[0] - start

    return retained_bytes(run)


def test_a_read_response_frees_the_request_body_at_once():
    # Before the fix: ~20 MiB (every prompt, held by its response's cycle).
    assert _retained_after(REQUESTS, request_bytes=MIB, answer_bytes=1024, stream=False) < 2 * MIB


def test_a_read_response_frees_its_answer_at_once():
    assert _retained_after(REQUESTS, request_bytes=1024, answer_bytes=MIB, stream=False) < 2 * MIB


def test_a_streamed_response_frees_the_request_body_once_closed():
    assert _retained_after(REQUESTS, request_bytes=MIB, answer_bytes=64 * 1024, stream=True) < 2 * MIB


def test_a_closed_response_still_answers_what_was_read():
    async def run() -> None:
        guard = GuardedTransport(httpx.MockTransport(lambda r: httpx.Response(200, json={"ok": True})),
                                 max_response_bytes=MIB)
        async with httpx.AsyncClient(transport=guard) as client:
            response = await client.post("http://upstream.test/v1/chat", content=b"x" * 1000)
            assert response.is_closed and response.json() == {"ok": True}
            assert await response.aread() == b'{"ok":true}'
            await response.aclose()  # a second close is harmless
            assert response.elapsed.total_seconds() >= 0  # set by httpx as the stream closed

    asyncio.run(run())
