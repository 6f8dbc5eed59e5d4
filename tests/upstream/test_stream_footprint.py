"""What an open upstream stream holds while it waits for its next event: thousands of slow streams
wait there at once (bench/perf/stream_heap.py measures the whole)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from gateway import errors
from gateway.upstream import http1
from gateway.upstream.openai_wire import OpenAIWireTransport

from .test_http1 import Script, chunked, post


async def test_a_waiting_read_holds_a_future_not_another_coroutine():
    async with Script([chunked(b"data: 1\n\n", end=False), 0.5, b"5\r\ndata:\r\n", 0.2, b"0\r\n\r\n"]) as url:
        pool = http1.Pool()
        resp = await post(pool, url, stream=True, timeout=None, idle_timeout=5)
        assert await resp.readlines(100) == [b"data: 1", b""]
        reading = resp.readlines(100)
        waiting = asyncio.ensure_future(reading)
        await asyncio.sleep(0.05)
        assert not asyncio.iscoroutine(reading.cr_await)  # the future itself (its iterator), no `_wait` frame
        # A cancelled wait leaves the response readable, and the next news wakes the next reader.
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert await resp.readlines(100) == [b"data:"]
        resp.release()
        await pool.close()


async def test_a_failure_met_while_waiting_is_raised_to_the_reader_and_after():
    async with Script([chunked(b"data: 1\n", end=False), 1.0]) as url:
        pool = http1.Pool()
        resp = await post(pool, url, stream=True, timeout=None, idle_timeout=0.3)
        assert await resp.readlines(100) == [b"data: 1"]
        with pytest.raises(TimeoutError):
            await resp.readlines(100)
        with pytest.raises(TimeoutError):
            await resp.readline(100)
        await pool.close()


def _deployment(url: str) -> SimpleNamespace:
    return SimpleNamespace(name="dep", api_base=url.removesuffix("/chat/completions"), upstream_model="m",
                           api_key="k", provider_kwargs={}, url_query="", key_header="")


async def test_a_stream_keeps_nothing_of_its_head_and_an_error_event_reads_as_its_body_says():
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nRetry-After: 7\r\nX-Request-Id: abc\r\n\r\n"
    error = b'data: {"error":{"message":"overloaded","code":"x"}}\n\n'
    async with Script([head + b"%x\r\n%s\r\n" % (len(error), error), 0.2]) as url:
        transport = OpenAIWireTransport()
        events = await transport.stream(_deployment(url), {"messages": []}, 5.0)
        assert events._resp.headers == {}
        with pytest.raises(errors.GatewayError) as raised:
            await anext(events)
        # The event's body has no status of its own: a 500, as through litellm; the head's
        # Retry-After was not kept, so none is relayed.
        assert raised.value.status == 500 and "Retry-After" not in raised.value.headers
        await events.aclose()
        await transport.close()
