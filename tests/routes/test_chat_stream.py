"""`POST /v1/chat/completions` streams (gateway/routes/chat.py `_sse`): what each write holds when
an upstream read brings a burst of events. When the server sends the first output at once (it is
not busy), events are taken one at a time until it and the one that carries it ends the first write;
after it, and always on a busy server, a burst goes out in one write."""

from __future__ import annotations

import time
from types import SimpleNamespace

from gateway.asgi import sse
from gateway.core.pipeline import ServedStream
from gateway.routes.chat import _sse
from gateway.upstream.forwarder import StreamStart


class _Burst:
    """Events that one upstream read brought at once, offered as `StreamEvents` offers them to a
    relay: readable without waiting (`ready`, `take_ready`) or one at a time."""

    def __init__(self, items: list[tuple[bytes, dict]]) -> None:
        self._items = items

    def ready(self) -> bool:
        return bool(self._items)

    def take_ready(self) -> list[tuple[bytes, dict]]:
        items, self._items = self._items, []
        return items

    def __aiter__(self) -> _Burst:
        return self

    async def __anext__(self) -> tuple[bytes, dict]:
        if not self._items:
            raise StopAsyncIteration
        return self._items.pop(0)

    async def aclose(self) -> None:
        self._items = []


class _Pipeline:
    def _finish(self, admitted, status, **_) -> None:
        pass


def _chunk(delta: dict, finish: str | None = None) -> tuple[bytes, dict]:
    chunk = {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return sse.encode_chunk(chunk), chunk


def _stream(first: tuple[bytes, dict], rest: list[tuple[bytes, dict]], alone: bool = True) -> ServedStream:
    dep = SimpleNamespace(name="a", cost=lambda usage: 0.0)
    start = StreamStart(dep, first, _Burst(rest), time.perf_counter(), 1.0)
    admitted = SimpleNamespace(call=SimpleNamespace(started=start.started),
                               decision=SimpleNamespace(ctx=SimpleNamespace(input_tokens=0)))
    stream = ServedStream(_Pipeline(), admitted, start, True, 600)
    stream.first_output_alone = alone  # what the route sets when the server is not busy
    return stream


ROLE = _chunk({"role": "assistant", "content": ""})
WORDS = [_chunk({"content": w}) for w in ("The", " router", " routes", ".")]
END = _chunk({}, "stop")


async def test_the_first_token_ends_the_first_write_and_the_rest_of_its_burst_follows_in_one():
    writes = [w async for w in _sse(_stream(ROLE, [*WORDS, END]))]
    assert writes == [ROLE[0] + WORDS[0][0], b"".join(e for e, _ in (*WORDS[1:], END)), sse.DONE]


async def test_a_first_event_with_output_goes_out_alone():
    writes = [w async for w in _sse(_stream(WORDS[0], [*WORDS[1:], END]))]
    assert writes == [WORDS[0][0], b"".join(e for e, _ in (*WORDS[1:], END)), sse.DONE]


async def test_tool_calls_and_a_finish_count_as_output():
    call = _chunk({"tool_calls": [{"index": 0, "id": "t", "type": "function", "function": {"name": "f", "arguments": ""}}]})
    writes = [w async for w in _sse(_stream(ROLE, [call, *WORDS]))]
    assert writes[0] == ROLE[0] + call[0]
    writes = [w async for w in _sse(_stream(ROLE, [END, *WORDS]))]
    assert writes[0] == ROLE[0] + END[0]


async def test_a_busy_server_keeps_the_first_burst_in_one_write():
    writes = [w async for w in _sse(_stream(ROLE, [*WORDS, END], alone=False))]
    assert writes == [b"".join(e for e, _ in (ROLE, *WORDS, END)), sse.DONE]
