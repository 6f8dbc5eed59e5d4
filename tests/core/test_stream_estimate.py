"""A stream that ends without usage is priced from the text it relayed: the events' bytes less an
event's envelope each (measured on the first event with text), two additions an event instead of
a look into every event's choices."""

from __future__ import annotations

import time
from types import SimpleNamespace

import orjson
import pytest

from gateway.core.pipeline import ServedStream
from gateway.upstream.forwarder import StreamStart


def _event(delta: dict, finish: str | None = None) -> tuple[bytes, dict]:
    chunk = {"id": "chatcmpl-abc", "object": "chat.completion.chunk", "created": 1_796_000_000, "model": "dep",
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + orjson.dumps(chunk) + b"\n\n", chunk


def _stream() -> ServedStream:
    start = StreamStart(SimpleNamespace(name="dep"), None, None, time.perf_counter(), 1.0)
    admitted = SimpleNamespace(call=SimpleNamespace(started=start.started),
                               decision=SimpleNamespace(ctx=SimpleNamespace(input_tokens=0)))
    return ServedStream(SimpleNamespace(), admitted, start, False, 600)


@pytest.mark.parametrize("words", [["Hello", " there", ",", " how", " are", " you", "?"],
                                   ["a"] * 40, ["The quick brown fox", " jumps over the lazy dog."]])
def test_the_text_relayed_is_estimated_from_bytes(words):
    stream = _stream()
    events = [_event({"role": "assistant", "content": ""}), *(_event({"content": w}) for w in words),
              _event({}, "stop")]
    for event in events:
        stream._seen(event)
    text = sum(map(len, words))
    # The role and finish events carry a slightly smaller envelope: a few characters over, never under.
    assert text <= stream._output_chars() <= text + 2 * 20


def test_a_first_text_event_that_also_carries_the_role_does_not_zero_the_estimate():
    # litellm's first chunk with text also says `"role": "assistant"`: as the only sample, its
    # larger envelope was taken off every event and the estimate came out 0 (a hang-up priced at
    # the prompt alone).
    stream = _stream()
    words = ["Once", " upon", " a", " time", " there", " was", " a", " router", "."]
    events = [_event({"role": "assistant", "content": words[0]}), *(_event({"content": w}) for w in words[1:]),
              _event({}, "stop")]
    for event in events:
        stream._seen(event)
    text = sum(map(len, words))
    assert text <= stream._output_chars() <= text + 2 * 20


def test_tool_call_arguments_count_and_nothing_relayed_is_nothing():
    assert _stream()._output_chars() == 0
    stream = _stream()
    call = {"tool_calls": [{"index": 0, "id": "c", "type": "function", "function": {"name": "f", "arguments": ""}}]}
    stream._seen(_event(call))
    for piece in ('{"city":', ' "Oslo"}'):
        stream._seen(_event({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
    assert stream._output_chars() >= len('{"city": "Oslo"}') - 2
