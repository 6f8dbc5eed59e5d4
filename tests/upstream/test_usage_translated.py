"""Hostile usage through the Responses and Messages translations, with the real SDKs: the answer is
served, a stream ends with its terminal event, and the usage the client reads is non-negative ints,
as on chat. Before: a stream was cut after its text (no `response.completed` or `message_stop`),
a plain Responses answer was a 502 after it was billed, and Messages relayed negative counts."""

from __future__ import annotations

import anthropic
import openai
import pytest

from .conftest import WIRE

_MODES = ["usage-string", "usage-negative", "usage-float", "usage-huge", "usage-details", "usage-list"]


def _counts(usage: object, *names: str) -> list[object]:
    return [getattr(usage, name) for name in names]


@pytest.mark.parametrize("mode", _MODES)
@pytest.mark.parametrize("stream", [False, True])
def test_responses(gw, mode, stream):
    client = openai.OpenAI(base_url=gw.thread.base_url, api_key="k", max_retries=0, timeout=30)
    prompt = f"say hello [hostile:{mode}]"
    if stream:
        events = list(client.responses.create(model=WIRE, input=prompt, stream=True))
        assert events[-1].type == "response.completed", [e.type for e in events]
        response = events[-1].response
    else:
        response = client.responses.create(model=WIRE, input=prompt)
    assert response.output_text.startswith("hello")
    counts = _counts(response.usage, "input_tokens", "output_tokens", "total_tokens")
    counts += [response.usage.output_tokens_details.reasoning_tokens, response.usage.input_tokens_details.cached_tokens]
    assert all(type(n) is int and 0 <= n < 1 << 32 for n in counts), response.usage


@pytest.mark.parametrize("mode", _MODES)
@pytest.mark.parametrize("stream", [False, True])
def test_messages(gw, mode, stream):
    client = anthropic.Anthropic(base_url=gw.thread.base_url.removesuffix("/v1"), api_key="k", max_retries=0,
                                 timeout=30)
    kwargs = dict(model=WIRE, max_tokens=50, messages=[{"role": "user", "content": f"say hello [hostile:{mode}]"}])
    if stream:
        with client.messages.stream(**kwargs) as events:
            types = [e.type for e in events]
            message = events.get_final_message()
        assert types[-1] == "message_stop", types
    else:
        message = client.messages.create(**kwargs)
    assert message.content[0].text.startswith("hello")
    counts = _counts(message.usage, "input_tokens", "output_tokens", "cache_read_input_tokens")
    assert all(type(n) is int and 0 <= n < 1 << 32 for n in counts), message.usage


@pytest.mark.parametrize("mode", ["usage-negative", "usage-huge", "usage-details"])
def test_a_chat_stream_relays_only_clean_usage(gw, mode):
    client = openai.OpenAI(base_url=gw.thread.base_url, api_key="k", max_retries=0, timeout=30)
    chunks = list(client.chat.completions.create(
        model=WIRE, stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": f"say hello [hostile:{mode}]"}]))
    usage = chunks[-1].usage
    assert all(type(n) is int and 0 <= n < 1 << 32 for n in (usage.prompt_tokens, usage.completion_tokens))
