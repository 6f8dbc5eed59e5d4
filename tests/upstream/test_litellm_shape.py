"""What litellm's adapter hands on of litellm's own members: empty bookkeeping is dropped, a member
that says something stays, and OpenAI's nullable members are kept as nulls (table-driven)."""

from __future__ import annotations

import orjson
import pytest

from gateway.upstream.litellm_adapter import _conform_response, _event

FILTERS = {"hate": {"filtered": False, "severity": "safe"}}


@pytest.mark.parametrize("extra, kept", [
    ({"provider_specific_fields": {}}, {}),
    ({"provider_specific_fields": {"citations": None, "thinking_blocks": None}}, {}),
    ({"images": [], "thinking_blocks": []}, {}),
    ({"provider_specific_fields": {"content_filter_results": FILTERS}},
     {"provider_specific_fields": {"content_filter_results": FILTERS}}),
    ({"thinking_blocks": [{"type": "thinking", "thinking": "hm"}], "images": []},
     {"thinking_blocks": [{"type": "thinking", "thinking": "hm"}]}),
])
def test_an_answer_keeps_what_says_something(extra, kept):
    out = _conform_response({"id": "x", "object": "chat.completion", "created": 1, "model": "m",
                             "vertex_ai_grounding_metadata": [], "choices": [
                                 {"index": 0, "finish_reason": "stop", **extra,
                                  "message": {"role": "assistant", "content": "hi", **extra}}]})
    choice = out["choices"][0]
    assert "vertex_ai_grounding_metadata" not in out
    assert {k: v for k, v in choice.items() if k in extra} == kept
    assert {k: v for k, v in choice["message"].items() if k in extra} == kept
    assert choice["message"]["refusal"] is None and choice["logprobs"] is None  # OpenAI's nullables stay


def test_a_chunk_drops_empty_bookkeeping_and_keeps_content():
    raw, out = _event({"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [
        {"index": 0, "provider_specific_fields": {}, "delta": {"content": "", "thinking_blocks": [],
                                                            "reasoning_content": "why"}}]}, "public")
    delta = out["choices"][0]["delta"]
    assert delta == {"content": "", "reasoning_content": "why"}
    assert "provider_specific_fields" not in out["choices"][0] and out["choices"][0]["finish_reason"] is None
    assert orjson.loads(raw[len(b"data: "):]) == out and out["model"] == "public"
