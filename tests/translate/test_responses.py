"""Responses API <-> chat completions, without HTTP: the request table, the answer, and (with
hypothesis) the stream: for any chat stream of text and tool-call pieces, the events follow the
protocol, match OpenAI's schema, and the official SDK's own accumulator rebuilds the answer."""

from __future__ import annotations

import json

import openai
import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import ResponseStreamEvent

from gateway import errors
from gateway.translate.responses import _REFUSED, to_chat, to_response
from gateway.translate.responses_stream import ResponsesStream

WEATHER = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}
_EVENT = pydantic.TypeAdapter(ResponseStreamEvent)


@pytest.mark.parametrize("body, messages", [
    ({"input": "hi"}, [{"role": "user", "content": "hi"}]),
    ({"input": "hi", "instructions": "sys"}, [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}]),
    ({"input": [{"role": "user", "content": [{"type": "input_text", "text": "a"},
                                             {"type": "input_file", "file_data": "data:application/pdf;base64,AA==",
                                              "filename": "a.pdf"}]}]},
     [{"role": "user", "content": [{"type": "text", "text": "a"},
                                   {"type": "file", "file": {"file_data": "data:application/pdf;base64,AA==",
                                                             "filename": "a.pdf"}}]}]),
    # One assistant turn: its text and its parallel calls; then both outputs; replayed reasoning is skipped.
    ({"input": [{"role": "user", "content": "q"},
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "let me see"}]},
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                {"type": "function_call", "call_id": "c2", "name": "g", "arguments": "{\"x\":1}"},
                {"type": "function_call_output", "call_id": "c1", "output": "one"},
                {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "two"}]}]},
     [{"role": "user", "content": "q"},
      {"role": "assistant", "content": "let me see", "tool_calls": [
          {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
          {"id": "c2", "type": "function", "function": {"name": "g", "arguments": "{\"x\":1}"}}]},
      {"role": "tool", "tool_call_id": "c1", "content": "one"},
      {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "two"}]}]),
])
def test_input_becomes_chat_messages(body, messages):
    chat, _ = to_chat({"model": "auto", **body})
    assert chat["messages"] == messages


@pytest.mark.parametrize("body, expected", [
    ({"max_output_tokens": 50}, {"max_completion_tokens": 50}),
    ({"temperature": 0.2, "top_p": 0.5, "user": "u", "parallel_tool_calls": False},
     {"temperature": 0.2, "top_p": 0.5, "user": "u", "parallel_tool_calls": False}),
    ({"tools": [WEATHER], "tool_choice": {"type": "function", "name": "get_weather"}},
     {"tools": [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER["parameters"]}}],
      "tool_choice": {"type": "function", "function": {"name": "get_weather"}}}),
    ({"text": {"format": {"type": "json_schema", "name": "A", "schema": {"type": "object"}, "strict": True},
               "verbosity": "low"}},
     {"response_format": {"type": "json_schema", "json_schema": {"name": "A", "schema": {"type": "object"},
                                                                 "strict": True}}, "verbosity": "low"}),
    ({"text": {"format": {"type": "json_object"}}}, {"response_format": {"type": "json_object"}}),
    ({"reasoning": {"effort": "low", "summary": "auto"}}, {"reasoning_effort": "low"}),
    ({"top_logprobs": 3}, {"logprobs": True, "top_logprobs": 3}),
    ({"include": ["message.output_text.logprobs"]}, {"logprobs": True}),
    ({"metadata": {"a": "b"}, "truncation": "auto", "store": False, "max_tool_calls": 3, "background": False},
     {}),
])
def test_parameters_become_chat_parameters(body, expected):
    chat, _ = to_chat({"model": "auto", "input": "hi", **body})
    assert {k: v for k, v in chat.items() if k not in ("model", "messages")} == expected


@pytest.mark.parametrize("param", sorted(_REFUSED))
def test_stateful_parameters_are_refused_by_name(param):
    with pytest.raises(errors.InvalidRequestError) as info:
        to_chat({"model": "auto", "input": "hi", param: "x"})
    assert info.value.param == param and "not supported" in info.value.message


def test_answer_maps_text_calls_status_and_usage(responses_schema):
    _, request = to_chat({"model": "auto", "input": "hi", "tools": [WEATHER], "max_output_tokens": 9})
    completion = {"choices": [{"index": 0, "finish_reason": "length", "message": {
        "role": "assistant", "content": "partial", "refusal": None,
        "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 9, "total_tokens": 19,
                  "prompt_tokens_details": {"cached_tokens": 4}, "completion_tokens_details": {"reasoning_tokens": 2}}}
    response = to_response(request, completion, "dep")
    responses_schema.validate("Response", response)
    assert response["status"] == "incomplete" and response["incomplete_details"] == {"reason": "max_output_tokens"}
    assert [o["type"] for o in response["output"]] == ["message", "function_call"]
    assert response["output"][1]["call_id"] == "call_1"
    # The item the limit cut off is incomplete too (a client reading items tells it from a finished one).
    assert [o["status"] for o in response["output"]] == ["completed", "incomplete"]
    assert response["usage"]["input_tokens_details"]["cached_tokens"] == 4
    assert response["usage"]["output_tokens_details"]["reasoning_tokens"] == 2
    assert response["model"] == "dep" and response["max_output_tokens"] == 9 and response["tools"][0]["name"] == "get_weather"


# -- streams -------------------------------------------------------------------------------------------

_piece = st.one_of(
    st.tuples(st.just("text"), st.text(min_size=1, max_size=5)),
    st.tuples(st.just("call"), st.integers(0, 2), st.text(min_size=1, max_size=4)),
)


def _chunks(pieces: list) -> list[dict]:
    """A chat stream: text first (as models send it), then tool-call pieces in any interleaving."""
    out, opened = [], set()
    for piece in sorted(pieces, key=lambda p: p[0] != "text"):
        if piece[0] == "text":
            delta = {"content": piece[1]}
        else:
            _, index, args = piece
            call = {"index": index, "function": {"arguments": args}}
            if index not in opened:
                opened.add(index)
                call.update(id=f"call_{index}", type="function", function={"name": f"f{index}", "arguments": args})
            delta = {"tool_calls": [call]}
        out.append({"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}]})
    finish = "tool_calls" if opened else "stop"
    out.append({"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    out.append({"id": "c", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}})
    return out


def _parse(raw: bytes) -> list[dict]:
    events = []
    for block in raw.decode().strip().split("\n\n"):
        name, data = (line.split(": ", 1)[1] for line in block.split("\n"))
        event = json.loads(data)
        assert event["type"] == name
        events.append(event)
    return events


def _assert_items_one_at_a_time(events: list[dict]) -> None:
    """OpenAI's stream protocol, as a client that tracks the current item reads it: one item open
    at a time, each delta before its item's done events, which carry the whole text or arguments
    and the parts in the order they were added; the final Response repeats the done items."""
    open_item, deltas, parts, done_items = None, {}, {}, []
    for event in events:
        kind, at = event["type"].removeprefix("response."), event.get("output_index")
        if kind == "output_item.added":
            assert open_item is None and at == len(done_items)
            open_item = at
        elif kind == "output_item.done":
            assert at == open_item
            assert [p["type"] for p in event["item"].get("content", ())] == parts.get(at, [])
            done_items.append(event["item"])
            open_item = None
        elif at is not None:
            assert at == open_item, f"{kind} for item {at} while item {open_item} is open"
            key = (at, event.get("content_index"))
            if kind == "content_part.added":
                assert event["content_index"] == len(parts.setdefault(at, []))
                parts[at].append(event["part"]["type"])
            elif kind.endswith(".delta"):
                deltas[key] = deltas.get(key, "") + event["delta"]
            elif kind == "function_call_arguments.done":
                assert event["arguments"] == deltas.get(key, "")
            elif kind in ("output_text.done", "refusal.done"):
                assert event.get("text", event.get("refusal")) == deltas.get(key, "")
            elif kind == "content_part.done":
                assert event["part"]["type"] == parts[at][event["content_index"]]
    assert open_item is None
    if events[-1]["type"] in ("response.completed", "response.incomplete"):
        assert events[-1]["response"]["output"] == done_items


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(st.lists(_piece, max_size=12))
def test_any_chat_stream_becomes_a_valid_responses_stream(pieces):
    _, request = to_chat({"model": "auto", "input": "hi"})
    translator = ResponsesStream(request, "dep")
    raw = translator.start() + b"".join(translator.feed(c) for c in _chunks(pieces)) + translator.finish()
    events = _parse(raw)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    _assert_items_one_at_a_time(events)
    state = ResponseStreamState(input_tools=[], text_format=openai.omit)  # the official SDK's accumulator
    for event in events:
        state.handle_event(_EVENT.validate_python(event))
    final = state._completed_response
    assert final is not None and final.status == "completed"
    text = "".join(p[1] for p in pieces if p[0] == "text")
    assert final.output_text == text
    calls = {item.call_id: item.arguments for item in final.output if item.type == "function_call"}
    for index in {p[1] for p in pieces if p[0] == "call"}:
        assert calls[f"call_{index}"] == "".join(p[2] for p in pieces if p[0] == "call" and p[1] == index)
    assert final.usage.total_tokens == 8


def test_a_stream_that_breaks_ends_with_error_and_failed(responses_schema):
    _, request = to_chat({"model": "auto", "input": "hi"})
    translator = ResponsesStream(request, "dep")
    raw = translator.start() + translator.feed({"choices": [{"index": 0, "delta": {"content": "par"}}]})
    raw += translator.fail(errors.BadGatewayError("deployment dep broke the stream"))
    events = _parse(raw)
    for event in events:
        responses_schema.validate("ResponseStreamEvent", event)
    assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]
    assert events[-1]["response"]["status"] == "failed"
    assert events[-1]["response"]["error"]["code"] == "server_error"


def test_length_finish_makes_the_stream_incomplete():
    _, request = to_chat({"model": "auto", "input": "hi"})
    translator = ResponsesStream(request, "dep")
    translator.start()
    translator.feed({"choices": [{"index": 0, "delta": {"content": "abc"}, "finish_reason": "length"}]})
    events = _parse(translator.finish())
    last = events[-1]
    assert last["type"] == "response.incomplete" and last["response"]["incomplete_details"]["reason"] == "max_output_tokens"
    done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    assert [i["status"] for i in done] == ["incomplete"] and last["response"]["output"][0]["status"] == "incomplete"


def test_parallel_calls_are_items_one_at_a_time():
    # Chat sends parallel calls one after another; each item is done before the next is added, as
    # OpenAI streams them (a client tracking "the current item" must not see two open at once).
    _, request = to_chat({"model": "auto", "input": "hi"})
    translator = ResponsesStream(request, "dep")
    pieces = [("text", "Checking."), ("call", 0, '{"city":'), ("call", 0, '"Oslo"}'), ("call", 1, '{"city":'),
              ("call", 1, '"Rome"}')]
    events = _parse(translator.start() + b"".join(translator.feed(c) for c in _chunks(pieces)) + translator.finish())
    flow = [(e["type"].removeprefix("response."), e.get("output_index")) for e in events
            if e["type"].startswith(("response.output_item", "response.function_call_arguments"))]
    assert flow == [("output_item.added", 0), ("output_item.done", 0),
                    ("output_item.added", 1), ("function_call_arguments.delta", 1),
                    ("function_call_arguments.delta", 1), ("function_call_arguments.done", 1), ("output_item.done", 1),
                    ("output_item.added", 2), ("function_call_arguments.delta", 2),
                    ("function_call_arguments.delta", 2), ("function_call_arguments.done", 2), ("output_item.done", 2)]
    final = events[-1]["response"]["output"]
    assert [(o["type"], o.get("arguments")) for o in final] == [
        ("message", None), ("function_call", '{"city":"Oslo"}'), ("function_call", '{"city":"Rome"}')]


def _chunk(delta: dict, finish: str | None = None) -> dict:
    return {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta,
                                                                      "finish_reason": finish}]}


def _call(index: int, args: str, name: str | None = None) -> dict:
    call = {"index": index, "function": {"arguments": args}}
    if name:
        call.update(id=f"call_{index}", type="function", function={"name": name, "arguments": args})
    return call


#: Two parallel calls opened by one chunk, then their argument deltas alternating (as some
#: OpenAI-wire servers stream them).
INTERLEAVED = [
    _chunk({"role": "assistant", "tool_calls": [_call(0, "", "get_weather"), _call(1, "", "get_time")]}),
    _chunk({"tool_calls": [_call(0, '{"city":')]}), _chunk({"tool_calls": [_call(1, '{"tz":')]}),
    _chunk({"tool_calls": [_call(0, '"Paris"}')]}), _chunk({"tool_calls": [_call(1, '"UTC"}')]}),
    _chunk({}, "tool_calls"),
    {"id": "c", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}},
]


def _stream(chunks: list[dict]) -> list[dict]:
    _, request = to_chat({"model": "auto", "input": "hi"})
    translator = ResponsesStream(request, "dep")
    return _parse(translator.start() + b"".join(translator.feed(c) for c in chunks) + translator.finish())


def test_interleaved_call_deltas_stay_within_their_items(responses_schema):
    events = _stream(INTERLEAVED)
    for event in events:
        responses_schema.validate("ResponseStreamEvent", event)
    _assert_items_one_at_a_time(events)
    flow = [(e["type"].removeprefix("response."), e.get("output_index"), e.get("delta", e.get("arguments")))
            for e in events if e["type"].startswith(("response.output_item", "response.function_call_arguments"))]
    # The first call streams as its deltas come; the second, held meanwhile, follows it whole.
    assert flow == [("output_item.added", 0, None), ("function_call_arguments.delta", 0, '{"city":'),
                    ("function_call_arguments.delta", 0, '"Paris"}'),
                    ("function_call_arguments.done", 0, '{"city":"Paris"}'), ("output_item.done", 0, None),
                    ("output_item.added", 1, None), ("function_call_arguments.delta", 1, '{"tz":'),
                    ("function_call_arguments.delta", 1, '"UTC"}'),
                    ("function_call_arguments.done", 1, '{"tz":"UTC"}'), ("output_item.done", 1, None)]
    state = ResponseStreamState(input_tools=[], text_format=openai.omit)  # the official SDK's accumulator
    for event in events:
        state.handle_event(_EVENT.validate_python(event))
    final = state._completed_response
    assert [(o.call_id, o.name, o.arguments) for o in final.output] == [
        ("call_0", "get_weather", '{"city":"Paris"}'), ("call_1", "get_time", '{"tz":"UTC"}')]


def test_a_refusal_then_text_keeps_its_parts_in_arrival_order():
    events = _stream([_chunk({"role": "assistant", "refusal": "No."}), _chunk({"content": "But here is text."}),
                      _chunk({}, "stop")])
    _assert_items_one_at_a_time(events)
    added = [(e["content_index"], e["part"]["type"]) for e in events if e["type"] == "response.content_part.added"]
    done = [(e["content_index"], e["part"]) for e in events if e["type"] == "response.content_part.done"]
    assert added == [(0, "refusal"), (1, "output_text")]
    assert done == [(0, {"type": "refusal", "refusal": "No."}),
                    (1, {"type": "output_text", "text": "But here is text.", "annotations": [], "logprobs": []})]
    item = next(e["item"] for e in events if e["type"] == "response.output_item.done")
    assert [p["type"] for p in item["content"]] == ["refusal", "output_text"]
    assert events[-1]["response"]["output"] == [item]


def test_cache_writes_reach_the_usage_details():
    _, request = to_chat({"model": "auto", "input": "hi"})
    response = to_response(request, {"choices": [{"finish_reason": "stop", "message": {"content": "ok"}}], "usage": {
        "prompt_tokens": 4012, "completion_tokens": 2, "cache_creation_input_tokens": 4004,
        "prompt_tokens_details": {"cached_tokens": 0, "cache_creation_tokens": 4004}}}, "dep")
    assert response["usage"]["input_tokens_details"] == {"cached_tokens": 0, "cache_write_tokens": 4004}
