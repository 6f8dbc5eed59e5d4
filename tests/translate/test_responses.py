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


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(st.lists(_piece, max_size=12))
def test_any_chat_stream_becomes_a_valid_responses_stream(pieces):
    _, request = to_chat({"model": "auto", "input": "hi"})
    translator = ResponsesStream(request, "dep")
    raw = translator.start() + b"".join(translator.feed(c) for c in _chunks(pieces)) + translator.finish()
    events = _parse(raw)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
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
