"""A prompt near a context window over real HTTP, on each chat route, with the real SDKs: the
gateway counts it (OpenAI's tokenizer, in a thread) instead of refusing it on the estimate, and the
simulator, which counts the same way, serves it. sim-tiny's window is 8,192 tokens
(tests/conftest.py)."""

from __future__ import annotations

import anthropic
import openai
import pytest

from gateway import _cl100k as cl100k

# ~33,000 characters of prose: estimated at ~8,300 tokens (over the window with any output), 6,000-odd counted.
_PROSE = "The quick brown fox jumps over the lazy dog while the committee reviews the annual budget report. " * 340


def _sent_to(simulator) -> dict[str, int]:
    return {name: s.requests for name, s in simulator.state.stats.items()}


def test_chat_and_responses_serve_a_prompt_the_estimate_would_refuse(gateway_factory, simulator):
    gw = gateway_factory()
    client = openai.OpenAI(base_url=gw.base_url, api_key="k", max_retries=0, timeout=60)
    before = _sent_to(simulator).get("sim-tiny", 0)
    chat = client.chat.completions.create(model="sim-tiny", max_tokens=100,
                                          messages=[{"role": "user", "content": _PROSE}])
    assert chat.model == "sim-tiny" and chat.choices[0].message.content
    assert abs(chat.usage.prompt_tokens - cl100k.count(_PROSE)) < 20  # the simulator counted it as the gateway did
    response = client.responses.create(model="sim-tiny", input=_PROSE, max_output_tokens=100)
    assert response.status == "completed" and response.output_text
    assert _sent_to(simulator)["sim-tiny"] == before + 2


def test_messages_serve_it_and_count_tokens_gives_the_count(gateway_factory, simulator):
    gw = gateway_factory()
    client = anthropic.Anthropic(base_url=gw.base_url.removesuffix("/v1"), api_key="k", max_retries=0, timeout=60)
    messages = [{"role": "user", "content": _PROSE}]
    message = client.messages.create(model="sim-tiny", max_tokens=100, messages=messages)
    assert message.content[0].text
    counted = client.messages.count_tokens(model="sim-tiny", messages=messages).input_tokens
    assert counted == cl100k.count(_PROSE) + 3 + 4  # the text's tokens and the message's framing
    short = client.messages.count_tokens(model="sim-tiny", messages=[{"role": "user", "content": "hello there"}])
    assert short.input_tokens == len("hello there") // 4 + 3 + 4  # far from a window: the estimate


def test_what_does_not_fit_when_counted_is_refused_before_any_call(gateway_factory, simulator):
    gw = gateway_factory()
    client = openai.OpenAI(base_url=gw.base_url, api_key="k", max_retries=0, timeout=60)
    text = "数据处理系统需要可靠的设计与测试。" * 1500  # estimated ~6,400 tokens; counted far over 8,192
    before = _sent_to(simulator).get("sim-tiny", 0)
    with pytest.raises(openai.UnprocessableEntityError) as info:
        client.chat.completions.create(model="sim-tiny", max_tokens=100, messages=[{"role": "user", "content": text}])
    assert info.value.body["code"] == "no_feasible_model" and "context: needs" in info.value.body["message"]
    assert _sent_to(simulator).get("sim-tiny", 0) == before
