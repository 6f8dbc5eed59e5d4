"""The body checks' shortcut: a body with none of the keys they read skips them, so the set of
those keys must hold every key they read, and a bad value of each must still be refused."""

from __future__ import annotations

import inspect
import re

import pytest

from gateway.core import context
from gateway.errors import InvalidRequestError

_BASE = {"model": "auto", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}


def test_every_key_the_checks_read_is_in_the_shortcut_set() -> None:
    read = set(re.findall(r'body\.get\("([a-z_]+)"\)', inspect.getsource(context._check_sampling)))
    read |= {key for key, _, _ in context._RANGES} | {key for key, _, _ in context._TYPED} | set(context._FREE_FORM)
    assert read <= context._CHECKED_KEYS


@pytest.mark.parametrize(("key", "bad"), [
    ("temperature", 3.5), ("top_p", -1), ("stop", 5), ("seed", "x"), ("user", 1), ("logprobs", "yes"),
    ("top_logprobs", 99), ("tool_choice", "sometimes"), ("response_format", {"type": 1}), ("metadata", []),
    ("top_k", True), ("logit_bias", [1]), ("stream_options", "on"), ("parallel_tool_calls", 1),
])
def test_a_bad_value_beside_max_tokens_is_still_refused(key: str, bad: object) -> None:
    with pytest.raises(InvalidRequestError) as info:
        context.validate_body({**_BASE, key: bad})
    assert info.value.param == key


def test_a_plain_body_passes() -> None:
    context.validate_body(dict(_BASE))


@pytest.mark.parametrize(("extra", "param"), [
    ({"top_logprobs": 2}, "top_logprobs"), ({"top_logprobs": 2, "logprobs": False}, "top_logprobs"),
    ({"stream_options": {"include_usage": True}}, "stream_options"),
    ({"stream_options": {"include_usage": True}, "stream": False}, "stream_options"),
    ({"tool_choice": "required"}, "tool_choice"), ({"tool_choice": {"type": "function", "function": {"name": "f"}}},
                                                   "tool_choice"),
    ({"parallel_tool_calls": False}, "parallel_tool_calls"), ({"parallel_tool_calls": True, "tools": []},
                                                              "parallel_tool_calls"),
])
def test_what_openai_takes_only_beside_another_parameter_is_refused_alone(extra: dict, param: str) -> None:
    # Some providers would take these alone; OpenAI's API, the gateway's contract, does not.
    with pytest.raises(InvalidRequestError) as info:
        context.validate_body({**_BASE, **extra})
    assert info.value.param == param and "only allowed when" in info.value.message


@pytest.mark.parametrize("extra", [
    {"top_logprobs": 2, "logprobs": True}, {"stream_options": {"include_usage": True}, "stream": True},
    {"tool_choice": "none"}, {"tool_choice": "auto", "tools": [{"type": "function", "function": {"name": "f"}}]},
    {"parallel_tool_calls": False, "tools": [{"type": "function", "function": {"name": "f"}}]},
])
def test_with_its_companion_it_passes(extra: dict) -> None:
    context.validate_body({**_BASE, **extra})


_CALL = {"role": "assistant", "content": None,
         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                        {"id": "c2", "type": "function", "function": {"name": "g", "arguments": "{}"}}]}
_USER = {"role": "user", "content": "hi"}


def _answer(call_id: str) -> dict:
    return {"role": "tool", "tool_call_id": call_id, "content": "ok"}


@pytest.mark.parametrize(("messages", "param", "words"), [
    ([_USER, _answer("c1")], "messages[1].role", "must be a response to a preceeding message"),
    ([_USER, _CALL, _answer("c1"), _answer("zz")], "messages[3].role", "must be a response"),
    ([_USER, _CALL, _answer("c1"), _answer("c1")], "messages[3].role", "must be a response"),  # answered twice
    ([_USER, _CALL, _answer("c1"), _USER], "messages", "did not have response messages: c2"),
    ([_USER, _CALL], "messages", "did not have response messages: c1, c2"),
    ([_USER, {**_CALL, "tool_calls": [{"id": ["x"], "function": {"name": "f", "arguments": "{}"}}]}, _answer("x")],
     "messages[2].role", "must be a response"),  # an id that is no string answers nothing (and is no 500)
])
def test_tool_messages_and_calls_are_paired_as_openai_pairs_them(messages: list, param: str, words: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        context.validate_body({**_BASE, "messages": messages})
    assert info.value.param == param and words in info.value.message


def test_a_paired_conversation_passes() -> None:
    context.validate_body({**_BASE, "messages": [_USER, _CALL, _answer("c2"), _answer("c1"),
                                                 {"role": "assistant", "content": "done"}, _USER]})
