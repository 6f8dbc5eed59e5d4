"""Anthropic Messages <-> chat completions, without HTTP: the request table, the answer, the error
shape, and (with hypothesis) the stream: for any chat stream of text and tool-call pieces, the events
match Anthropic's schema and the official SDK's accumulator rebuilds the answer."""

from __future__ import annotations

import json

import pytest
from anthropic.lib.streaming._messages import accumulate_event
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway import errors
from gateway.translate.anthropic import _REFUSED, to_chat, to_message, usage
from gateway.translate.anthropic_stream import AnthropicStream
from tests.translate.test_responses import INTERLEAVED, _chunk, _chunks

TOOL = {"name": "get_weather", "description": "d", "input_schema": {"type": "object", "properties": {}}}


def _chat(**body):
    chat, _ = to_chat({"model": "auto", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}], **body})
    return chat


@pytest.mark.parametrize("body, expected", [
    ({"system": "sys"}, {"messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}]}),
    ({"system": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
     {"messages": [{"role": "system", "content": "a\n\nb"}, {"role": "user", "content": "hi"}]}),
    ({"stop_sequences": ["X"], "temperature": 0.5, "top_p": 0.9, "top_k": 5, "metadata": {"user_id": "u"}},
     {"stop": ["X"], "temperature": 0.5, "top_p": 0.9, "top_k": 5, "user": "u"}),
    ({"tools": [TOOL], "tool_choice": {"type": "any", "disable_parallel_tool_use": True}},
     {"tools": [{"type": "function", "function": {"name": "get_weather", "parameters": TOOL["input_schema"],
                                                  "description": "d"}}],
      "tool_choice": "required", "parallel_tool_calls": False}),
    ({"tools": [TOOL], "tool_choice": {"type": "tool", "name": "get_weather"}},
     {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}}),
    ({"tool_choice": {"type": "none"}}, {"tool_choice": "none"}),
    ({"output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}}},
     {"response_format": {"type": "json_schema", "json_schema": {"name": "output", "schema": {"type": "object"},
                                                                 "strict": True}}}),
    ({"thinking": {"type": "enabled", "budget_tokens": 1024}, "service_tier": "auto"}, {}),
])
def test_parameters_become_chat_parameters(body, expected):
    chat = _chat(**body)
    assert chat["max_completion_tokens"] == 10
    for key, value in expected.items():
        assert chat[key] == value, key


def test_turns_become_chat_messages():
    chat = _chat(messages=[
        {"role": "user", "content": [{"type": "text", "text": "look"},
                                     {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                                  "data": "AAA"}}]},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": "s"},
                                          {"type": "text", "text": "calling"},
                                          {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}},
                                          {"type": "tool_use", "id": "t2", "name": "g", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": "one"},
            {"type": "tool_result", "tool_use_id": "t2", "is_error": True,
             "content": [{"type": "text", "text": "bad"},
                         {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}]},
            {"type": "text", "text": "go on"}]},
    ])
    assert chat["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "look"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}}]},
        {"role": "assistant", "content": "calling", "tool_calls": [
            {"id": "t1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}},
            {"id": "t2", "type": "function", "function": {"name": "g", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "t1", "content": "one"},
        {"role": "tool", "tool_call_id": "t2", "content": "Error: bad"},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                                     {"type": "text", "text": "go on"}]},
    ]


@pytest.mark.parametrize("body, param", [
    *[({key: "x"}, key) for key in sorted(_REFUSED)],
    ({"max_tokens": None}, "max_tokens"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "system", "content": "x"}]}, "messages.0.role"),
    ({"messages": [{"role": "user", "content": [{"type": "server_tool_use"}]}]}, "messages.0.content.0.type"),
    ({"tools": [{"type": "bash_20250124", "name": "bash"}]}, "tools.0.type"),
    ({"stop_sequences": ["a", "b", "c", "d", "e"]}, "stop_sequences"),
    ({"tool_choice": {"type": "sometimes"}}, "tool_choice"),
    ({"unknown_thing": 1}, "unknown_thing"),
    # Anthropic's bounds, not chat's (temperature up to 2 there): what Anthropic refuses is refused
    # whichever model serves it.
    ({"temperature": 1.5}, "temperature"), ({"temperature": -0.1}, "temperature"), ({"temperature": "hot"}, "temperature"),
    ({"top_p": 1.01}, "top_p"), ({"top_k": -1}, "top_k"), ({"top_k": 2.5}, "top_k"), ({"top_k": True}, "top_k"),
])
def test_refusals_name_the_parameter(body, param):
    with pytest.raises(errors.InvalidRequestError) as info:
        to_chat({"model": "auto", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}], **body})
    assert info.value.param == param


@pytest.mark.parametrize("finish, stop_reason", [("stop", "end_turn"), ("length", "max_tokens"),
                                                 ("tool_calls", "tool_use"), ("content_filter", "refusal")])
def test_answer_maps_content_stop_reason_and_usage(finish, stop_reason, anthropic_schema):
    _, request = to_chat({"model": "auto", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]})
    message = to_message(request, {"choices": [{"finish_reason": finish, "message": {
        "role": "assistant", "content": "hello",
        "tool_calls": [{"id": "call_1", "function": {"name": "f", "arguments": '{"a": 1}'}}]}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 3, "prompt_tokens_details": {"cached_tokens": 4}}}, "dep")
    anthropic_schema.validate("Message", message)
    assert message["stop_reason"] == stop_reason and message["model"] == "dep"
    assert message["content"] == [{"type": "text", "text": "hello"},
                                  {"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}}]
    assert message["usage"] == {"input_tokens": 6, "output_tokens": 3, "cache_creation_input_tokens": 0,
                                "cache_read_input_tokens": 4}


@pytest.mark.parametrize("exc, status, kind", [
    (errors.InvalidRequestError("x", param="p"), 400, "invalid_request_error"),
    (errors.AuthenticationError("x"), 401, "authentication_error"),
    (errors.PermissionDeniedError("x"), 403, "permission_error"),
    (errors.NotFoundError("x"), 404, "not_found_error"),
    (errors.PayloadTooLargeError("x"), 413, "request_too_large"),
    (errors.NoFeasibleModelError("x"), 422, "invalid_request_error"),
    (errors.RateLimitError("x"), 429, "rate_limit_error"),
    (errors.InternalError("x"), 500, "api_error"),
    (errors.BadGatewayError("x"), 502, "api_error"),
    (errors.ServiceUnavailableError("x"), 503, "api_error"),
    (errors.ServiceUnavailableError("x", code="upstream_overloaded"), 503, "overloaded_error"),
    (errors.GatewayTimeoutError("x"), 504, "timeout_error"),
    (errors.RequestTimeoutError("x"), 408, "timeout_error"),  # the body clock: the same kind of failure
])
def test_error_shape(exc, status, kind, anthropic_schema):
    body = errors.anthropic_error_body(exc)
    assert exc.status == status and body == {"type": "error", "error": {"type": kind, "message": "x"}}
    if kind != "request_too_large":  # a real Anthropic type, missing from the SDK's union
        anthropic_schema.validate("ErrorResponse", body)


def _parse(raw: bytes) -> list[dict]:
    events = []
    for block in raw.decode().strip().split("\n\n"):
        name, data = (line.split(": ", 1)[1] for line in block.split("\n"))
        event = json.loads(data)
        assert event["type"] == name
        events.append(event)
    return events


def _assert_blocks_one_at_a_time(events: list[dict]) -> None:
    """Anthropic's stream protocol: blocks start in index order, one open at a time, and each
    delta is for the open block."""
    open_block, started = None, 0
    for event in events:
        if event["type"] == "content_block_start":
            assert open_block is None and event["index"] == started
            open_block, started = event["index"], started + 1
        elif event["type"] == "content_block_delta":
            assert event["index"] == open_block, f"delta for block {event['index']} while {open_block} is open"
        elif event["type"] == "content_block_stop":
            assert event["index"] == open_block
            open_block = None
    assert open_block is None


def _accumulate(events: list[dict]):
    snapshot, bufs = None, {}
    for event in events:
        snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=bufs)
    return snapshot


def _stream(chunks: list[dict]) -> list[dict]:
    _, request = to_chat({"model": "auto", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]})
    translator = AnthropicStream(request, "dep", input_tokens=7)
    return _parse(translator.start() + b"".join(translator.feed(c) for c in chunks) + translator.finish())


_call_args = st.dictionaries(st.sampled_from(["city", "n", "tags"]),
                             st.text(max_size=4) | st.integers(-5, 5) | st.lists(st.booleans(), max_size=2),
                             max_size=3)


def _interleave(queues: list[list], turns: list[int]) -> list:
    """The queues' pieces merged, each queue's in order, the turns choosing among the started ones
    (and the next): calls still begin in index order, as chat numbers them."""
    queues, out, started = [list(q) for q in queues], [], 0
    for turn in turns:
        live = [i for i in range(min(started + 1, len(queues))) if queues[i]]
        if not live:
            break
        i = live[turn % len(live)]
        started = max(started, i + 1)
        out.append(queues[i].pop(0))
    return out + [piece for queue in queues for piece in queue]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(texts=st.lists(st.text(min_size=1, max_size=5), max_size=5), calls=st.lists(_call_args, max_size=3),
       cut=st.integers(1, 6), turns=st.lists(st.integers(0, 2), max_size=20))
def test_any_chat_stream_becomes_a_valid_messages_stream(texts, calls, cut, turns, anthropic_schema):
    # Text first, then each call's JSON arguments in pieces, as chat streams send them: one call
    # after another, or (as some servers do) parallel calls' pieces interleaved.
    pieces = [("text", t) for t in texts]
    pieces += _interleave([[("call", index, raw[i:i + cut]) for i in range(0, len(raw), cut)]
                           for index, raw in enumerate(json.dumps(args) for args in calls)], turns)
    _, request = to_chat({"model": "auto", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]})
    translator = AnthropicStream(request, "dep", input_tokens=7)
    raw = translator.start() + b"".join(translator.feed(c) for c in _chunks(pieces)) + translator.finish()
    snapshot, bufs = None, {}
    _assert_blocks_one_at_a_time(_parse(raw))
    for event in _parse(raw):
        anthropic_schema.validate("MessageStreamEvent", event)
        snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=bufs)
    assert "".join(b.text for b in snapshot.content if b.type == "text") == "".join(texts)
    uses = [b for b in snapshot.content if b.type == "tool_use"]
    assert [(u.id, u.name, u.input) for u in uses] == [(f"call_{i}", f"f{i}", args) for i, args in enumerate(calls)]
    assert snapshot.stop_reason == ("tool_use" if calls else "end_turn")
    assert (snapshot.usage.input_tokens, snapshot.usage.output_tokens) == (3, 5)


def test_a_stream_that_breaks_ends_with_an_error_event(anthropic_schema):
    event = _parse(AnthropicStream.fail(errors.RateLimitError("slow down")))[0]
    assert event == {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}


def test_parallel_calls_are_blocks_one_at_a_time():
    # Each block is stopped before the next starts, as Anthropic streams them.
    _, request = to_chat({"model": "auto", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]})
    translator = AnthropicStream(request, "dep", input_tokens=7)
    pieces = [("text", "Checking."), ("call", 0, '{"city":'), ("call", 0, '"Oslo"}'), ("call", 1, '{"city":'),
              ("call", 1, '"Rome"}')]
    events = _parse(translator.start() + b"".join(translator.feed(c) for c in _chunks(pieces)) + translator.finish())
    flow = [(e["type"].removeprefix("content_block_"), e["index"]) for e in events if e["type"].startswith("content_block")]
    assert flow == [("start", 0), ("delta", 0), ("stop", 0), ("start", 1), ("delta", 1), ("delta", 1), ("stop", 1),
                    ("start", 2), ("delta", 2), ("delta", 2), ("stop", 2)]
    snapshot, bufs = None, {}
    for event in events:
        snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=bufs)
    assert [b.input for b in snapshot.content if b.type == "tool_use"] == [{"city": "Oslo"}, {"city": "Rome"}]


def test_interleaved_call_deltas_stay_within_their_blocks(anthropic_schema):
    events = _stream(INTERLEAVED)
    for event in events:
        anthropic_schema.validate("MessageStreamEvent", event)
    _assert_blocks_one_at_a_time(events)
    flow = [(e["type"].removeprefix("content_block_"), e["index"], e.get("delta", {}).get("partial_json"))
            for e in events if e["type"].startswith("content_block")]
    # The first call streams as its deltas come; the second, held meanwhile, follows it whole.
    assert flow == [("start", 0, None), ("delta", 0, '{"city":'), ("delta", 0, '"Paris"}'), ("stop", 0, None),
                    ("start", 1, None), ("delta", 1, '{"tz":'), ("delta", 1, '"UTC"}'), ("stop", 1, None)]
    snapshot = _accumulate(events)  # the anthropic SDK's own accumulator (MessageStream's)
    assert [(b.id, b.name, b.input) for b in snapshot.content] == [
        ("call_0", "get_weather", {"city": "Paris"}), ("call_1", "get_time", {"tz": "UTC"})]
    assert snapshot.stop_reason == "tool_use"


_CUT_CALL = {"id": "call_l", "type": "function", "function": {"name": "get_weather", "arguments": '{"ci'}}


def test_a_call_cut_off_by_the_limit_has_the_same_empty_input_streamed_or_not():
    _, request = to_chat({"model": "auto", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]})
    message = to_message(request, {"choices": [{"finish_reason": "length", "message": {
        "role": "assistant", "content": None, "tool_calls": [_CUT_CALL]}}]}, "dep")
    streamed = _accumulate(_stream([_chunk({"role": "assistant", "tool_calls": [{"index": 0, **_CUT_CALL}]}),
                                    _chunk({}, "length")]))
    assert message["content"] == [{"type": "tool_use", "id": "call_l", "name": "get_weather", "input": {}}]
    assert [(b.type, b.id, b.name, b.input) for b in streamed.content] == [("tool_use", "call_l", "get_weather", {})]
    assert message["stop_reason"] == streamed.stop_reason == "max_tokens"


def test_a_chat_refusal_is_a_refusal_streamed_or_not(anthropic_schema):
    _, request = to_chat({"model": "auto", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]})
    message = to_message(request, {"choices": [{"finish_reason": "stop", "message": {
        "role": "assistant", "content": None, "refusal": "I can't help with that."}}]}, "dep")
    anthropic_schema.validate("Message", message)
    events = _stream([_chunk({"role": "assistant", "content": None, "refusal": ""}), _chunk({"refusal": "I can't"}),
                      _chunk({"refusal": " help with that."}), _chunk({}, "stop")])
    for event in events:
        anthropic_schema.validate("MessageStreamEvent", event)
    streamed = _accumulate(events)
    assert message["content"] == [{"type": "text", "text": "I can't help with that."}]
    assert [(b.type, b.text) for b in streamed.content] == [("text", "I can't help with that.")]
    assert message["stop_reason"] == streamed.stop_reason == "refusal"


@pytest.mark.parametrize("chat_usage", [
    # litellm's spellings for an Anthropic answer, and OpenAI's
    {"prompt_tokens": 4012, "completion_tokens": 2, "cache_creation_input_tokens": 4004,
     "prompt_tokens_details": {"cached_tokens": 0, "cache_creation_tokens": 4004}},
    {"prompt_tokens": 4012, "completion_tokens": 2, "prompt_tokens_details": {"cache_write_tokens": 4004}},
])
def test_cache_writes_are_counted_apart_from_input_tokens(chat_usage):
    assert usage(chat_usage) == {"input_tokens": 8, "output_tokens": 2, "cache_creation_input_tokens": 4004,
                                 "cache_read_input_tokens": 0}
