"""Prompt-cache marks (`cache_control`) against each kind of deployment: kept for the ones litellm
translates (it sends them to a provider that caches), removed for every deployment that takes
OpenAI's body, without touching the client's body, and without a copy when there is none."""

from __future__ import annotations

import copy

import pytest

from gateway.upstream.adapt import adapt, rules_for

EPH = {"type": "ephemeral"}
CLAUDE = rules_for("anthropic", "anthropic/claude-haiku-4-5", supported=frozenset({"max_tokens", "tools"}),
                   translated=True, max_output_tokens=64_000)
BEDROCK = rules_for("bedrock", "bedrock/eu.anthropic.claude-sonnet-4-5", supported=frozenset({"max_tokens"}),
                    translated=True, max_output_tokens=8192)
OPENAI = rules_for("openai", "openai/gpt-4o", supported=None, translated=False, max_output_tokens=1, openai_api=True)
COMPATIBLE = rules_for("openai", "openai/llama", supported=None, translated=False, max_output_tokens=1)
AZURE = rules_for("azure", "azure/gpt-4o", supported=frozenset({"temperature", "max_tokens", "tools"}),
                  translated=False, max_output_tokens=1, developer_as_system=True)
O1 = rules_for("openai", "openai/o1", supported=frozenset({"max_tokens", "max_completion_tokens"}), translated=False,
               max_output_tokens=1, openai_api=True, reasoning=True)
GROQ = rules_for("groq", "groq/llama", supported=None, translated=False, max_output_tokens=1)

MARKED = {
    "model": "m", "max_tokens": 10,
    "messages": [
        {"role": "system", "content": [{"type": "text", "text": "long", "cache_control": EPH}]},
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": [{"type": "text", "text": "a", "cache_control": EPH}],
         "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{}"},
                         "cache_control": EPH}]},
        {"role": "tool", "tool_call_id": "t1", "content": "r", "cache_control": EPH},
        {"role": "user", "content": [{"type": "text", "text": "more"},
                                     {"type": "image_url", "image_url": {"url": "https://x/y.png"},
                                      "cache_control": EPH}]},
    ],
    "tools": [{"type": "function", "function": {"name": "f", "cache_control": EPH}},
              {"type": "function", "function": {"name": "g"}, "cache_control": EPH}],
}


def _marks(value) -> int:
    if isinstance(value, dict):
        return ("cache_control" in value) + sum(_marks(v) for v in value.values())
    if isinstance(value, list):
        return sum(_marks(v) for v in value)
    return 0


@pytest.mark.parametrize("rules", [CLAUDE, BEDROCK], ids=["anthropic", "bedrock"])
def test_claude_through_litellm_keeps_every_mark(rules):
    out, notes = adapt(MARKED, rules)
    assert _marks(out) == _marks(MARKED) == 7 and out["messages"] == MARKED["messages"] and notes == ()


@pytest.mark.parametrize("rules", [OPENAI, COMPATIBLE, AZURE, O1, GROQ], ids=["openai", "compatible", "azure", "o1",
                                                                         "groq"])
def test_every_openai_format_deployment_gets_no_mark(rules):
    before = copy.deepcopy(MARKED)
    out, notes = adapt(MARKED, rules)
    assert _marks(out) == 0
    assert f"dropped cache_control (not supported by {rules.provider})" in notes
    assert MARKED == before  # the client's body is never changed: another attempt may go to Claude
    # Only the marks went: the same messages and tools otherwise.
    strip = lambda v: {k: strip(x) for k, x in v.items() if k != "cache_control"} if isinstance(v, dict) \
        else [strip(x) for x in v] if isinstance(v, list) else v  # noqa: E731
    assert strip(out["messages"]) == strip(MARKED["messages"]) and out["tools"] == strip(MARKED["tools"])
    assert adapt(out, rules)[0] == out and "dropped cache_control" not in " ".join(adapt(out, rules)[1])


def test_only_what_carries_a_mark_is_copied():
    body = {"model": "m", "messages": [{"role": "system", "content": "s"},
                                       {"role": "user", "content": [{"type": "text", "text": "t", "cache_control": EPH}]}],
            "tools": [{"type": "function", "function": {"name": "f"}}]}
    out, _ = adapt(body, OPENAI)
    assert out["messages"][0] is body["messages"][0] and out["tools"] is body["tools"]
    assert out["messages"][1] == {"role": "user", "content": [{"type": "text", "text": "t"}]}


@pytest.mark.parametrize("rules", [OPENAI, COMPATIBLE, AZURE, GROQ], ids=["openai", "compatible", "azure", "groq"])
@pytest.mark.parametrize("body", [
    {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
    {"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]},
                                {"role": "assistant", "content": None,
                                 "tool_calls": [{"id": "t", "type": "function",
                                                 "function": {"name": "f", "arguments": "{}"}}]},
                                {"role": "tool", "tool_call_id": "t", "content": "r"}],
     "tools": [{"type": "function", "function": {"name": "f"}}]},
], ids=["plain", "parts-and-tools"])
def test_a_body_without_marks_is_the_same_object(rules, body):
    out, notes = adapt(body, rules)
    assert out is body and not any("cache_control" in n for n in notes)


def test_a_body_of_another_shape_is_not_an_error():
    # adapt serves bodies the chat validation has seen; one it has not must still not raise.
    body = {"model": "m", "messages": ["text", None, {"role": "user", "content": [1, "x"]}], "tools": [None]}
    assert adapt(body, OPENAI) == (body, ())
