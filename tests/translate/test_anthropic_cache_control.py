"""Anthropic's prompt-cache marks through the Messages translation: each `cache_control` lands where
litellm's Anthropic translation reads it back, and a request without any translates as before."""

from __future__ import annotations

import pytest

from gateway import errors
from gateway.translate.anthropic import to_chat

EPH = {"type": "ephemeral"}
HOUR = {"type": "ephemeral", "ttl": "1h"}
SCHEMA = {"type": "object", "properties": {}}


def _chat(**body):
    chat, _ = to_chat({"model": "auto", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}], **body})
    return chat


def test_a_marked_system_prompt_becomes_text_parts_that_keep_the_mark():
    chat = _chat(system=[{"type": "text", "text": "a", "cache_control": EPH}, {"type": "text", "text": "b"}])
    assert chat["messages"][0] == {"role": "system", "content": [{"type": "text", "text": "a", "cache_control": EPH},
                                                                 {"type": "text", "text": "b"}]}


@pytest.mark.parametrize("system", ["sys", [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
                                    [{"type": "text", "text": "a", "cache_control": None}]])
def test_an_unmarked_system_prompt_is_one_string_as_before(system):
    assert isinstance(_chat(system=system)["messages"][0]["content"], str)


def test_user_blocks_keep_their_marks():
    chat = _chat(messages=[{"role": "user", "content": [
        {"type": "text", "text": "look", "cache_control": EPH},
        {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}, "cache_control": HOUR},
        {"type": "document", "source": {"type": "text", "data": "doc"}, "cache_control": EPH},
        {"type": "text", "text": "plain"},
    ]}])
    assert chat["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "look", "cache_control": EPH},
        {"type": "image_url", "image_url": {"url": "https://x/y.png"}, "cache_control": HOUR},
        {"type": "text", "text": "doc", "cache_control": EPH},
        {"type": "text", "text": "plain"},
    ]}]


def test_tool_turns_keep_their_marks():
    chat = _chat(messages=[
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [{"type": "text", "text": "calling", "cache_control": EPH},
                                          {"type": "tool_use", "id": "t1", "name": "f", "input": {},
                                           "cache_control": EPH},
                                          {"type": "tool_use", "id": "t2", "name": "g", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": "21 C", "cache_control": EPH},
            {"type": "tool_result", "tool_use_id": "t2",
             "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b", "cache_control": HOUR}]},
        ]},
    ])
    assistant, first, second = chat["messages"][1:]
    # Text parts only because one is marked; calls carry their own.
    assert assistant["content"] == [{"type": "text", "text": "calling", "cache_control": EPH}]
    assert [c.get("cache_control") for c in assistant["tool_calls"]] == [EPH, None]
    # On the tool message (litellm's tool_result block), the content stays a string.
    assert first == {"role": "tool", "tool_call_id": "t1", "content": "21 C", "cache_control": EPH}
    assert second == {"role": "tool", "tool_call_id": "t2", "content": "a\nb", "cache_control": HOUR}


def test_an_unmarked_assistant_turn_is_one_string_as_before():
    chat = _chat(messages=[{"role": "user", "content": "q"},
                           {"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
                           {"role": "user", "content": "again"}])
    assert chat["messages"][1] == {"role": "assistant", "content": "ab"}


def test_tools_keep_their_marks_beside_the_function():
    tools = [{"name": "a", "input_schema": SCHEMA}, {"name": "b", "input_schema": SCHEMA, "cache_control": EPH}]
    chat = _chat(tools=tools)
    assert chat["tools"] == [{"type": "function", "function": {"name": "a", "parameters": SCHEMA}},
                             {"type": "function", "function": {"name": "b", "parameters": SCHEMA}, "cache_control": EPH}]


@pytest.mark.parametrize("mark", ["ephemeral", {"type": "persistent"}, {"type": "ephemeral", "ttl": "2h"},
                                  {"type": "ephemeral", "scope": "x"}])
@pytest.mark.parametrize("where, body", [
    ("system.0", lambda m: {"system": [{"type": "text", "text": "s", "cache_control": m}]}),
    ("messages.0.content.0", lambda m: {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "t", "cache_control": m}]}]}),
    ("tools.0", lambda m: {"tools": [{"name": "a", "input_schema": SCHEMA, "cache_control": m}]}),
])
def test_a_mark_claude_would_refuse_is_the_clients_400_wherever_routed(mark, where, body):
    with pytest.raises(errors.InvalidRequestError) as info:
        _chat(**body(mark))
    assert info.value.param == f"{where}.cache_control"
