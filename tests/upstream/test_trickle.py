"""An upstream that trickles bytes is held to every time limit on the OpenAI-wire transport.

A byte now and then keeps a connection from ever being idle, and one that never completes a head
or a line keeps every reader that waits for a whole one waiting. docs/reliability.md promises
otherwise: the request deadline bounds a response head, a plain body and a stream until its first
event; a stream's total limit bounds it whether or not a newline ever comes; and a timeout names
the limit that fired. First the HTTP/1.1 client and the transport against a scripted loopback
server, then a gateway driven by the OpenAI SDK against a raw trickling upstream.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator

import openai
import pytest

from gateway import errors
from gateway.upstream import http1
from gateway.upstream.openai_wire import OpenAIWireTransport
from tests import loopback
from tests._threads import LoopbackServer

from .conftest import PROVIDER_KEY, WIRE, start_gateway
from .test_http1 import Script, post
from .test_stream_footprint import _deployment

HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n\r\n"


def _event(i: int) -> bytes:
    data = (b'data: {"id":"c","object":"chat.completion.chunk","model":"m",'
            b'"choices":[{"index":0,"delta":{"content":"%d"},"finish_reason":null}]}\n\n' % i)
    return b"%x\r\n%s\r\n" % (len(data), data)


def _dribble(parts: bytes, every: float) -> list:
    """`parts` one byte at a time, `every` seconds apart (a Script reply's parts)."""
    return [p for i in range(len(parts)) for p in (parts[i:i + 1], every)]


#: A space every 50 ms for 5 s, as chunks, inside a line that never ends: never idle, never a line.
SPACES = [b"1\r\n \r\n", 0.05] * 100


# -- the HTTP/1.1 client ----------------------------------------------------------------------------

async def test_a_trickled_head_is_cut_at_the_deadline_however_often_a_byte_comes():
    loop = asyncio.get_running_loop()
    async with Script(_dribble(HEAD, 0.05)) as url:  # ~4 s of head, never 0.3 s without a byte
        pool = http1.Pool()
        start = loop.time()
        with pytest.raises(TimeoutError) as raised:
            await post(pool, url, stream=True, timeout=0.5, idle_timeout=0.3)
        assert 0.45 <= loop.time() - start < 1.5
        assert type(raised.value).__name__ == "DeadlineExceeded"
        await pool.close()


async def test_silence_is_an_idle_timeout_and_the_deadline_a_deadline():
    async with Script([2.0, HEAD]) as url:
        pool = http1.Pool()
        with pytest.raises(TimeoutError) as raised:
            await post(pool, url, stream=True, timeout=5.0, idle_timeout=0.2)
        assert type(raised.value).__name__ == "IdleTimeout"
        await pool.close()


async def test_a_line_that_never_ends_is_cut_at_the_deadline_its_reader_set():
    """`Response.until` replaces the deadline `post` gave: later (a stream past its first event is
    no longer held to the request's deadline) or earlier, and with `sooner` only if earlier."""
    loop = asyncio.get_running_loop()
    async with Script([HEAD, _event(1), b"1\r\nd\r\n", *SPACES]) as url:
        pool = http1.Pool()
        resp = await post(pool, url, stream=True, timeout=0.3, idle_timeout=0.3)
        start = loop.time()
        assert resp.until(5.0, sooner=True) is False  # later than 0.3 s: not taken
        assert resp.until(0.8) is True
        assert (await resp.readlines(1 << 20))[0].startswith(b"data: ")
        with pytest.raises(TimeoutError) as raised:
            await resp.readlines(1 << 20)
        assert type(raised.value).__name__ == "DeadlineExceeded"
        assert 0.75 <= loop.time() - start < 1.5  # past the 0.3 s it was posted with, at 0.8 s
        resp.close()
        await pool.close()


# -- the OpenAI-wire transport ----------------------------------------------------------------------

async def _drain(events) -> tuple[int, errors.GatewayError]:
    """(events read, the error the stream ended with)."""
    count = 0
    with pytest.raises(errors.GatewayError) as raised:
        async with asyncio.timeout(10):  # the bug kept these open: never hang the suite on it
            async for _ in events:
                count += 1
    return count, raised.value


async def test_a_stream_trickling_a_line_that_never_ends_is_cut_at_its_total_limit():
    """Events for longer than the request's deadline (not held to it once the first is out), then
    `d` and a space every 50 ms: never idle, never a line. Cut at the stream's limit."""
    loop = asyncio.get_running_loop()
    events = [part for i in range(6) for part in (_event(i), 0.1)]
    async with Script([HEAD, *events, b"1\r\nd\r\n", *SPACES]) as url:
        transport = OpenAIWireTransport(stream_idle_timeout_s=0.4, stream_timeout_s=1.2)
        start = loop.time()
        stream = await transport.stream(_deployment(url), {"messages": []}, 0.3)
        count, exc = await _drain(stream)
        assert count == 6
        assert (exc.status, exc.code) == (504, "stream_time_limit") and "1.2 s" in exc.message
        assert 1.15 <= loop.time() - start < 2.0
        await transport.close()


async def test_a_trickled_head_is_cut_at_the_request_deadline():
    loop = asyncio.get_running_loop()
    async with Script(_dribble(HEAD, 0.05)) as url:
        transport = OpenAIWireTransport(stream_idle_timeout_s=0.3, stream_timeout_s=30)
        start = loop.time()
        with pytest.raises(errors.GatewayTimeoutError) as raised:
            await transport.stream(_deployment(url), {"messages": []}, 0.5)
        assert 0.45 <= loop.time() - start < 1.5
        assert raised.value.code == "upstream_timeout"
        assert raised.value.message == "deployment dep did not answer within 0.5s"
        await transport.close()


async def test_a_stream_trickling_before_its_first_event_is_cut_at_the_request_deadline():
    loop = asyncio.get_running_loop()
    async with Script([HEAD, b"1\r\nd\r\n", *SPACES]) as url:
        transport = OpenAIWireTransport(stream_idle_timeout_s=0.3, stream_timeout_s=30)
        start = loop.time()
        stream = await transport.stream(_deployment(url), {"messages": []}, 0.6)
        count, exc = await _drain(stream)
        assert count == 0 and (exc.status, exc.code) == (504, "upstream_timeout")
        assert "first" in exc.message
        assert 0.55 <= loop.time() - start < 1.5
        await transport.close()


async def test_a_stream_limit_shorter_than_the_request_deadline_holds_before_the_first_event():
    loop = asyncio.get_running_loop()
    async with Script([HEAD, b"1\r\nd\r\n", *SPACES]) as url:
        transport = OpenAIWireTransport(stream_idle_timeout_s=0.3, stream_timeout_s=0.6)
        start = loop.time()
        stream = await transport.stream(_deployment(url), {"messages": []}, 5.0)
        count, exc = await _drain(stream)
        assert count == 0 and exc.code == "stream_time_limit"
        assert 0.55 <= loop.time() - start < 1.5
        await transport.close()


async def test_a_silent_stream_names_the_idle_limit_not_the_request_deadline():
    async with Script([3.0, HEAD]) as url:
        transport = OpenAIWireTransport(stream_idle_timeout_s=0.3, stream_timeout_s=30)
        with pytest.raises(errors.GatewayTimeoutError) as raised:
            await transport.stream(_deployment(url), {"messages": []}, 5.0)
        assert raised.value.message == "deployment dep sent no response headers within 0.3s"
        await transport.close()


async def test_a_connect_that_times_out_names_the_connect_limit(monkeypatch):
    async def never(*args, **kwargs):
        await asyncio.sleep(10)

    monkeypatch.setattr(asyncio.get_running_loop(), "create_connection", never)
    transport = OpenAIWireTransport(connect_timeout_s=0.2)
    with pytest.raises(errors.GatewayTimeoutError) as raised:
        await transport.stream(_deployment("http://127.0.0.1:9/v1/chat/completions"), {"messages": []}, 5.0)
    assert raised.value.message == "could not connect to deployment dep within 0.2s"
    await transport.close()


async def test_streams_on_one_connection_still_share_one_watchdog(monkeypatch):
    """A guard, not the bug: the deadline rides on the connection's one watchdog, so neither a
    stream nor its first event (which moves the deadline to the stream's limit) arms a timer."""
    loop = asyncio.get_running_loop()
    armed: list[str] = []
    call_at = loop.call_at
    monkeypatch.setattr(loop, "call_at",
                        lambda when, cb, *a, **k: armed.append(getattr(cb, "__name__", "")) or call_at(when, cb, *a, **k))
    done = b"data: [DONE]\n\n"
    reply = HEAD + b"".join(_event(i) for i in range(5)) + b"%x\r\n%s\r\n0\r\n\r\n" % (len(done), done)
    async with Script(*([reply] for _ in range(20))) as url:
        transport = OpenAIWireTransport(stream_idle_timeout_s=5, stream_timeout_s=60)
        for _ in range(20):
            stream = await transport.stream(_deployment(url), {"messages": []}, 30.0)
            assert len([e async for e in stream]) == 5
        await transport.close()
    assert armed.count("_on_watch") == 1


# -- end to end: the OpenAI SDK, a gateway, a trickling upstream ------------------------------------

_MARKER = re.compile(rb"\[trickle:([a-z]+)\]")


class Trickler(LoopbackServer):
    """A raw upstream on loopback, in a thread. `[trickle:head]` in the body: the response head one
    byte every 100 ms; `[trickle:noline]`: two events, then `d` and a space every 100 ms. Each until
    the gateway hangs up (30 s at most)."""

    def __init__(self) -> None:
        super().__init__("trickler")
        self.modes: list[str] = []

    async def _open(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
            found = _MARKER.search(await reader.readexactly(length))
            mode = found.group(1).decode() if found else "none"
            self.modes.append(mode)
            if mode == "head":
                parts = _dribble(HEAD, 0.1)
            elif mode == "noline":
                parts = [HEAD + _event(1) + _event(2) + b"1\r\nd\r\n", *[b"1\r\n \r\n", 0.1] * 300]
            else:
                parts = [HEAD + b"0\r\n\r\n"]
            for part in parts:
                if isinstance(part, float):
                    await asyncio.sleep(part)
                else:
                    writer.write(part)
                    await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the gateway hung up, or the server stops (its thread's loop ends with the module)
        finally:
            writer.close()


#: The gateway's limits: the request's deadline 1 s, the idle limit 0.5 s (a byte every 0.1 s never
#: trips it), a stream's total limit 2 s.
REQUEST_S, IDLE_S, STREAM_S = 1.0, 0.5, 2.0


@pytest.fixture(scope="module")
def trickling(tmp_path_factory) -> Iterator[tuple[Trickler, openai.OpenAI]]:
    mp = pytest.MonkeyPatch()
    mp.setenv("HOSTILE_PROVIDER_KEY", PROVIDER_KEY)
    with Trickler() as upstream:
        gw = start_gateway(upstream, tmp_path_factory.mktemp("trickle"), request_timeout_s=REQUEST_S,
                           stream_idle_timeout_s=IDLE_S, stream_timeout_s=STREAM_S)
        client = openai.OpenAI(base_url=gw.thread.base_url, api_key="k", max_retries=0, timeout=30)
        try:
            yield upstream, client
        finally:
            client.close()
            gw.thread.stop()
            mp.undo()


def _prompt(mode: str) -> list[dict]:
    return [{"role": "user", "content": f"say hello [trickle:{mode}]"}]


def test_sdk_chat_stream_trickling_a_line_ends_at_the_stream_limit(trickling):
    _, client = trickling
    start = time.monotonic()
    stream = client.chat.completions.create(model=WIRE, messages=_prompt("noline"), stream=True)
    chunks = []
    with pytest.raises(openai.APIError) as raised:
        for chunk in stream:
            chunks.append(chunk)
    assert [c.choices[0].delta.content for c in chunks] == ["1", "2"]
    assert raised.value.body["code"] == "stream_time_limit"
    assert STREAM_S - 0.1 <= time.monotonic() - start < STREAM_S + 1.5


def test_sdk_responses_stream_trickling_a_line_ends_at_the_stream_limit(trickling):
    _, client = trickling
    start = time.monotonic()
    events = list(client.responses.create(model=WIRE, input=_prompt("noline"), stream=True))
    assert [e.type for e in events][-2:] == ["error", "response.failed"]
    assert events[-2].code == "stream_time_limit"
    assert STREAM_S - 0.1 <= time.monotonic() - start < STREAM_S + 1.5


def test_sdk_chat_stream_with_a_trickled_head_ends_at_the_request_deadline(trickling):
    _, client = trickling
    start = time.monotonic()
    with pytest.raises(openai.APIStatusError) as raised:
        client.chat.completions.create(model=WIRE, messages=_prompt("head"), stream=True)
    assert raised.value.status_code == 504
    assert raised.value.body["code"] == "upstream_timeout"
    assert f"did not answer within {REQUEST_S:.1f}s" in raised.value.body["message"]
    assert REQUEST_S - 0.1 <= time.monotonic() - start < REQUEST_S + 1.5


def test_messages_stream_with_a_trickled_head_ends_at_the_request_deadline(trickling):
    upstream, client = trickling
    start = time.monotonic()
    resp = loopback.post(str(client.base_url).rstrip("/") + "/messages", timeout=30, json={
        "model": WIRE, "max_tokens": 16, "stream": True, "messages": _prompt("head")})
    assert resp.status_code == 504
    assert resp.json()["error"]["type"] == "timeout_error"
    assert REQUEST_S - 0.1 <= time.monotonic() - start < REQUEST_S + 1.5
    assert "head" in upstream.modes
