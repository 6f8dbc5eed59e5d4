"""A valid OpenAI body adapted to a provider: what changes, what never does, and the notes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.upstream.adapt import ParamRules, adapt, rules_for

ANTHROPIC_TAKES = frozenset({"stream", "stop", "temperature", "top_p", "max_tokens", "max_completion_tokens", "tools",
                             "tool_choice", "parallel_tool_calls", "response_format", "user"})
ANTHROPIC = rules_for("anthropic", "anthropic/claude-haiku-4-5", supported=ANTHROPIC_TAKES, translated=True,
                      max_output_tokens=64_000)
MSG = [{"role": "user", "content": "hi"}]


def test_openai_compatible_deployments_are_never_touched():
    # Only cache marks are ever taken out for them (tests/upstream/test_adapt_cache_control.py).
    rules = rules_for("openai", "openai/claude-3-5-sonnet", supported=None, translated=False, max_output_tokens=1)
    assert rules == ParamRules(provider="openai", drop_cache_control=True, extras_only=True)
    body = {"model": "m", "messages": MSG, "temperature": 2.0, "seed": 1, "n": 3, "top_k": 4}
    for r in (None, rules):
        out, notes = adapt(body, r)
        assert out is body and notes == ()


CASES = [
    # (name, body beyond model/messages, expected changes, note fragments)
    ("temperature clamped", {"temperature": 1.5, "max_tokens": 10}, {"temperature": 1.0},
     ["temperature 1.5 clamped to 1 (anthropic accepts 0 to 1)"]),
    ("in range untouched", {"temperature": 0.7, "max_tokens": 10}, {}, []),
    ("sampling extras dropped", {"seed": 7, "frequency_penalty": 0.5, "max_tokens": 10},
     {"seed": None, "frequency_penalty": None}, ["dropped seed, frequency_penalty (not supported by anthropic)"]),
    ("trivial n and logprobs dropped", {"n": 1, "logprobs": False, "max_tokens": 10}, {"n": None, "logprobs": None},
     ["dropped n, logprobs"]),
    ("n above one kept for selection to refuse", {"n": 2, "max_tokens": 10}, {}, []),
    ("max_tokens sent when missing", {}, {"max_tokens": 64_000}, ["max_tokens 64000 sent (anthropic requires one"]),
    ("max_completion_tokens counts", {"max_completion_tokens": 5}, {}, []),
    ("json mode as a schema", {"response_format": {"type": "json_object"}, "max_tokens": 10},
     {"response_format": {"type": "json_schema", "json_schema": {"name": "json_object", "schema": {"type": "object"}}}},
     ["response_format json_object sent as a JSON schema"]),
    ("a schema passes", {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}},
                         "max_tokens": 10}, {}, []),
]


@pytest.mark.parametrize("extra, changes, notes", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_anthropic(extra, changes, notes):
    body = {"model": "claude", "messages": MSG, **extra}
    out, said = adapt(body, ANTHROPIC)
    expected = {k: v for k, v in {**body, **changes}.items() if v is not None}
    assert out == expected
    assert len(said) == len(notes) and all(n in s for n, s in zip(notes, said, strict=True))
    if not notes:
        assert out is body  # nothing to change: the same object, no copy
    assert body == {"model": "claude", "messages": MSG, **extra}  # the client's body is never mutated


def test_claude_on_bedrock_gets_anthropics_rules():
    rules = rules_for("bedrock", "bedrock/eu.anthropic.claude-sonnet-4-5", supported=frozenset({"temperature"}),
                      translated=True, max_output_tokens=8192)
    assert rules.ranges and rules.default_max_tokens == 8192 and rules.json_object_as_schema


def test_a_provider_without_a_parameter_table_passes_every_openai_parameter():
    rules = rules_for("gemini", "gemini/x", supported=None, translated=True, max_output_tokens=10)
    body = {"model": "m", "messages": MSG, "seed": 1, "logit_bias": {"1": 2}, "top_k": 3}
    assert adapt(body, rules) == (body, ())
    assert rules_for("mistral", "mistral/x", supported=None, translated=False, max_output_tokens=10) == \
        ParamRules(provider="mistral", drop_cache_control=True, extras_only=True)


@pytest.mark.parametrize(("rules", "kept", "dropped"), [
    # OpenAI's own API refuses what is not in its schema; a compatible server may take it.
    (rules_for("openai", "openai/gpt-4o", supported=None, translated=False, max_output_tokens=1, openai_api=True),
     set(), {"top_k", "min_p", "repetition_penalty"}),
    (rules_for("openai", "openai/llama", supported=None, translated=False, max_output_tokens=1), None, set()),
    (rules_for("azure", "azure/gpt-4o", supported=frozenset({"temperature"}), translated=False, max_output_tokens=1),
     set(), {"top_k", "min_p", "repetition_penalty"}),
    # Anthropic's and Gemini's APIs take top_k (litellm passes it on), not the others.
    (ANTHROPIC, {"top_k"}, {"min_p", "repetition_penalty"}),
    (rules_for("gemini", "gemini/x", supported=frozenset({"temperature"}), translated=True, max_output_tokens=1),
     {"top_k"}, {"min_p", "repetition_penalty"}),
])
def test_sampling_extras_reach_only_a_provider_that_takes_them(rules, kept, dropped):
    body = {"model": "m", "messages": MSG, "max_tokens": 5, "top_k": 5, "min_p": 0.1, "repetition_penalty": 1.1}
    out, notes = adapt(body, rules)
    assert set(body) - set(out) == dropped and (kept is None or kept <= set(out))
    assert bool(notes) == bool(dropped)


@pytest.mark.parametrize("messages, sent", [
    ([{"role": "developer", "content": "Be brief.", "name": "ops"}, {"role": "user", "content": "hi"}],
     [{"role": "system", "content": "Be brief.", "name": "ops"}, {"role": "user", "content": "hi"}]),
    (MSG, MSG),  # nothing to change: the same body, no note
    ([{"role": "system", "content": "s"}, {"role": "developer", "content": "d"}],
     [{"role": "system", "content": "s"}, {"role": "system", "content": "d"}]),
])
def test_azure_direct_sends_developer_messages_as_system(messages, sent):
    # As litellm's Azure config does for GPT models (gateway/catalog.py says which deployments).
    rules = rules_for("azure", "azure/gpt-4o", supported=None, translated=False, max_output_tokens=10,
                      developer_as_system=True)
    body = {"model": "m", "messages": messages}
    out, notes = adapt(body, rules)
    assert out["messages"] == sent and bool(notes) == (out is not body) == (sent != messages)
    assert adapt(out, rules) == (out, ())


_params = st.fixed_dictionaries({}, optional={
    "temperature": st.floats(0, 2), "top_p": st.floats(0, 1), "seed": st.integers(0, 10),
    "n": st.integers(1, 4), "logprobs": st.booleans(), "user": st.text(max_size=5),
    "max_tokens": st.integers(1, 100), "stop": st.just(["x"]), "presence_penalty": st.floats(-2, 2),
    "response_format": st.sampled_from([{"type": "json_object"}, {"type": "text"}]),
    "tools": st.just([{"type": "function", "function": {"name": "f"}}]),
})


@given(_params)
def test_invariants(extra):
    body = {"model": "claude", "messages": MSG, **extra}
    out, notes = adapt(body, ANTHROPIC)
    # Whatever changes, the answer's meaning does not: messages, tools, stop and n > 1 stay.
    for key in ("messages", "tools", "stop", "model"):
        assert out.get(key) == body.get(key)
    if body.get("n", 1) > 1:
        assert out["n"] == body["n"]
    # The result is within the provider's limits, and adapting again changes nothing.
    assert 0 <= out.get("temperature", 0) <= 1 and out.get("max_tokens")
    assert all(k in ANTHROPIC_TAKES or k in ("model", "messages") or (k in ("n", "logprobs") and out[k])
               for k in out)
    again, more = adapt(out, ANTHROPIC)
    assert again == out and more == ()
    assert bool(notes) == (out is not body)


def test_rules_are_immutable():
    with pytest.raises(AttributeError):
        ANTHROPIC.provider = "x"  # type: ignore[misc]
    assert isinstance(ANTHROPIC, ParamRules)


O1 = rules_for("openai", "openai/o1", supported=frozenset({"max_tokens", "max_completion_tokens", "temperature", "stream",
                                                          "tools", "reasoning_effort", "seed"}),
               translated=False, max_output_tokens=1, openai_api=True, reasoning=True)


@pytest.mark.parametrize(("extra", "sent", "notes"), [
    ({"max_tokens": 50}, {"max_completion_tokens": 50}, ["max_tokens sent as max_completion_tokens"]),
    ({"max_tokens": 50, "max_completion_tokens": 40}, {"max_completion_tokens": 40}, ["dropped max_tokens"]),
    ({"temperature": 0.2, "top_p": 0.5, "presence_penalty": 1}, {},
     ["dropped top_p, presence_penalty", "dropped temperature 0.2"]),
    ({"temperature": 1, "seed": 3, "max_completion_tokens": 9}, {"temperature": 1, "seed": 3, "max_completion_tokens": 9}, []),
])
def test_openai_reasoning_models_get_what_they_take(extra, sent, notes):
    body = {"model": "o1", "messages": MSG, **extra}
    out, said = adapt(body, O1)
    assert {k: v for k, v in out.items() if k not in ("model", "messages")} == sent
    assert len(said) == len(notes) and all(n in s for n, s in zip(notes, said, strict=True))
