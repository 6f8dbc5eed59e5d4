"""The simulator's Anthropic Messages wire, over raw HTTP (every body checked against the types of
the official `anthropic` SDK, which are generated from Anthropic's API spec) and through the SDK
itself."""

from __future__ import annotations

import json
import time
from typing import Any

import anthropic
import jsonschema
import pydantic
import pytest
from anthropic.types import Message, RawMessageStreamEvent

from gateway.simulator import ModelProfile, SimulatorProfile, SimulatorThread
from gateway.simulator._text import count_tokens, filler_text

KEY = "sk-ant-sim"
HEADERS = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
OUT = 7
EVENT = pydantic.TypeAdapter(RawMessageStreamEvent)
WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "units": {"type": "string", "enum": ["metric", "imperial"]}},
        "required": ["city", "units"],
    },
}


def _profile() -> SimulatorProfile:
    return SimulatorProfile(
        api_key=KEY,
        models={
            "claude-sonnet-4-5": ModelProfile(output_tokens=OUT, context_window=200_000),
            "small": ModelProfile(output_tokens=OUT, context_window=64),
        },
    )


def _body(text: str = "Hello there", **extra: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-5-20250929", "max_tokens": 1024,
            "messages": [{"role": "user", "content": text}], **extra}


async def _post(http, sim, body: Any, headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    async with http.post(f"{sim.url}/v1/messages", json=body, headers=HEADERS if headers is None else headers) as r:
        doc = await r.json(content_type=None)
        if r.status == 200:
            Message.model_validate(doc)
        else:
            assert set(doc) == {"type", "error", "request_id"} and doc["type"] == "error"
            assert set(doc["error"]) == {"type", "message"} and r.headers["request-id"] == doc["request_id"]
        return r.status, doc, r.headers


def _events(raw: str) -> list[dict[str, Any]]:
    """Anthropic SSE: each event's name equals its data's type; every event is a valid stream event."""
    out = []
    for block in raw.split("\n\n"):
        if not block.strip():
            continue
        name_line, data_line = block.split("\n")
        assert name_line.startswith("event: ") and data_line.startswith("data: ")
        doc = json.loads(data_line[len("data: "):])
        assert doc["type"] == name_line[len("event: "):]
        if doc["type"] not in ("ping", "error"):
            EVENT.validate_python(doc)
        out.append(doc)
    return out


async def _stream(http, sim, body: dict[str, Any]) -> list[dict[str, Any]]:
    async with http.post(f"{sim.url}/v1/messages", json={**body, "stream": True}, headers=HEADERS) as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/event-stream")
        return _events(await r.text())


# --------------------------------------------------------------------------- replies


async def test_plain_message(sim, http):
    status, doc, _ = await _post(http, sim, _body(system=[{"type": "text", "text": "Be brief."}]))
    assert status == 200
    assert doc["id"].startswith("msg_") and doc["type"] == "message" and doc["role"] == "assistant"
    assert doc["model"] == "claude-sonnet-4-5-20250929"  # echoed as asked; served by the undated profile
    assert doc["content"] == [{"type": "text", "text": filler_text(OUT)}]
    assert doc["stop_reason"] == "end_turn" and doc["stop_sequence"] is None
    usage = doc["usage"]
    assert usage["input_tokens"] == count_tokens("Be brief.") + count_tokens("Hello there")
    assert usage["output_tokens"] == OUT
    assert usage["cache_creation_input_tokens"] == usage["cache_read_input_tokens"] == 0
    assert sim.state.stats["claude-sonnet-4-5"].requests == 1


async def test_stream_events(sim, http):
    events = await _stream(http, sim, _body())
    kinds = [e["type"] for e in events]
    assert kinds[:3] == ["message_start", "content_block_start", "ping"]
    assert kinds[3:-3] == ["content_block_delta"] * OUT
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    start = events[0]["message"]
    assert start["content"] == [] and start["stop_reason"] is None and start["usage"]["input_tokens"] == 2
    assert all(e["delta"]["type"] == "text_delta" for e in events[3:-3])
    assert "".join(e["delta"]["text"] for e in events[3:-3]) == filler_text(OUT)
    assert events[-2]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert events[-2]["usage"]["output_tokens"] == OUT


async def test_stop_reasons(sim, http):
    _, doc, _ = await _post(http, sim, _body(stop_sequences=[" answer"]))
    assert doc["content"][0]["text"] == "The quick"
    assert (doc["stop_reason"], doc["stop_sequence"]) == ("stop_sequence", " answer")
    _, doc, _ = await _post(http, sim, _body(max_tokens=2))
    assert doc["stop_reason"] == "max_tokens" and doc["usage"]["output_tokens"] == 2
    events = await _stream(http, sim, _body(stop_sequences=[" answer"]))
    assert events[-2]["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": " answer"}


async def test_tool_use_and_tool_result(sim, http):
    _, doc, _ = await _post(http, sim, _body("Weather in Oslo?", tools=[WEATHER], tool_choice={"type": "any"}))
    (block,) = doc["content"]
    assert block["type"] == "tool_use" and block["id"].startswith("toolu_") and block["name"] == "get_weather"
    jsonschema.validate(block["input"], WEATHER["input_schema"])
    assert doc["stop_reason"] == "tool_use"

    events = await _stream(http, sim, _body("Weather in Oslo?", tools=[WEATHER]))
    assert events[1]["content_block"] == {**block, "input": {}}
    partial = "".join(e["delta"]["partial_json"] for e in events if e["type"] == "content_block_delta")
    assert json.loads(partial) == block["input"]
    assert events[-2]["delta"]["stop_reason"] == "tool_use"

    turn = [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": [block]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block["id"], "content": "cold"}]},
    ]
    _, doc, _ = await _post(http, sim, {**_body(), "messages": turn, "tools": [WEATHER]})
    assert doc["content"][0]["type"] == "text" and doc["stop_reason"] == "end_turn"
    # A result for a call that was never made, or a call left unanswered, is a 400 as at Anthropic.
    stray = {"type": "tool_result", "tool_use_id": "toolu_x", "content": "?"}
    wrong = [*turn[:2], {"role": "user", "content": [stray]}]
    status, doc, _ = await _post(http, sim, {**_body(), "messages": wrong, "tools": [WEATHER]})
    assert status == 400 and "toolu_x" in doc["error"]["message"]
    status, doc, _ = await _post(http, sim, {**_body(), "messages": [*turn[:2], {"role": "user", "content": "and?"}]})
    assert status == 400 and "tool_result" in doc["error"]["message"]


async def test_structured_output(sim, http):
    schema = {"type": "object", "properties": {"n": {"type": "integer"}, "s": {"type": "string"}},
              "required": ["n", "s"], "additionalProperties": False}
    _, doc, _ = await _post(http, sim, _body(output_format={"type": "json_schema", "schema": schema}))
    jsonschema.validate(json.loads(doc["content"][0]["text"]), schema)


# --------------------------------------------------------------------------- refusals and faults


@pytest.mark.parametrize(
    ("change", "status", "kind", "words"),
    [
        ({"drop": "max_tokens"}, 400, "invalid_request_error", "max_tokens: Field required"),
        ({"set": {"n": 2}}, 400, "invalid_request_error", "n: Extra inputs are not permitted"),
        ({"set": {"temperature": 1.5}}, 400, "invalid_request_error", "temperature"),
        ({"set": {"tool_choice": {"type": "auto"}}}, 400, "invalid_request_error", "tool_choice"),
        ({"set": {"model": "claude-nope"}}, 404, "not_found_error", "model: claude-nope"),
        ({"set": {"model": "small"}, "text": "word " * 80}, 400, "invalid_request_error", "prompt is too long"),
        ({"headers": {"anthropic-version": "2023-06-01"}}, 401, "authentication_error", "x-api-key"),
        ({"headers": {"x-api-key": "wrong", "anthropic-version": "2023-06-01"}}, 401, "authentication_error", ""),
        ({"headers": {"x-api-key": KEY}}, 400, "invalid_request_error", "anthropic-version"),
        ({"text": "hi [sim:status=529]"}, 529, "overloaded_error", "Overloaded"),
        ({"text": "hi [sim:status=500]"}, 500, "api_error", ""),
        ({"text": "hi [sim:status=413]"}, 413, "request_too_large", ""),
        ({"text": "hi [sim:bogus]"}, 400, "invalid_request_error", "bogus"),
    ],
    ids=lambda v: None,
)
async def test_refusals(sim, http, change, status, kind, words):
    body = _body(change.get("text", "Hello there"), **change.get("set", {}))
    body.pop(change.get("drop", "_"), None)
    got, doc, _ = await _post(http, sim, body, change.get("headers"))
    assert (got, doc["error"]["type"]) == (status, kind)
    assert words in doc["error"]["message"]


async def test_rate_limit_has_retry_after(sim, http):
    status, doc, headers = await _post(http, sim, _body("hi [sim:status=429;retry_after=2]"))
    assert status == 429 and doc["error"]["type"] == "rate_limit_error" and headers["retry-after"] == "2"


async def test_stream_faults(sim, http):
    async with http.post(f"{sim.url}/v1/messages", headers=HEADERS,
                         json=_body("hi [sim:error_after=4]", stream=True)) as r:
        events = _events(await r.text())
    assert [e["type"] for e in events][-1] == "error"
    assert events[-1] == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    assert len(events) == 5
    truncated = await _stream(http, sim, _body("hi [sim:truncate_sse]"))
    assert truncated[-1]["type"] == "content_block_delta"


async def test_count_tokens_and_models(sim, http):
    body = {"model": "claude-sonnet-4-5", "system": "Be brief.",
            "messages": [{"role": "user", "content": "Hello there"}]}
    async with http.post(f"{sim.url}/v1/messages/count_tokens", json=body, headers=HEADERS) as r:
        assert await r.json() == {"input_tokens": count_tokens("Be brief.") + count_tokens("Hello there")}
    async with http.get(f"{sim.url}/v1/models", headers=HEADERS) as r:
        doc = await r.json()
    assert [m["id"] for m in doc["data"]] == ["claude-sonnet-4-5", "small"] and doc["has_more"] is False
    assert all(m["type"] == "model" for m in doc["data"])


async def test_same_prompt_counts_the_same_on_the_openai_wire(sim, http):
    _, doc, _ = await _post(http, sim, _body("Count the tokens in this sentence, please."))
    question = [{"role": "user", "content": "Count the tokens in this sentence, please."}]
    async with http.post(f"{sim.base_url}/chat/completions", headers={"Authorization": f"Bearer {KEY}"},
                         json={"model": "claude-sonnet-4-5", "messages": question}) as r:
        openai_doc = await r.json()
    assert doc["usage"]["input_tokens"] == openai_doc["usage"]["prompt_tokens"]
    assert doc["content"][0]["text"] == openai_doc["choices"][0]["message"]["content"]


# --------------------------------------------------------------------------- the official SDK


def test_anthropic_sdk_round_trip():
    with SimulatorThread(_profile()) as sim:
        client = anthropic.Anthropic(base_url=sim.url, api_key=KEY, max_retries=0, timeout=5)
        msg = client.messages.create(model="claude-sonnet-4-5", max_tokens=256,
                                     messages=[{"role": "user", "content": "Hello there"}])
        assert msg.content[0].text == filler_text(OUT) and msg.usage.output_tokens == OUT

        with client.messages.stream(model="claude-sonnet-4-5", max_tokens=256, tools=[WEATHER],
                                    messages=[{"role": "user", "content": "Weather in Oslo?"}]) as stream:
            call = stream.get_final_message()
        tool = call.content[0]
        assert call.stop_reason == "tool_use" and tool.name == "get_weather"
        jsonschema.validate(tool.input, WEATHER["input_schema"])

        with client.messages.stream(
            model="claude-sonnet-4-5", max_tokens=256, tools=[WEATHER],
            messages=[{"role": "user", "content": "Weather in Oslo?"},
                      {"role": "assistant", "content": call.content},
                      {"role": "user",
                       "content": [{"type": "tool_result", "tool_use_id": tool.id, "content": "cold"}]}],
        ) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
        assert text == filler_text(OUT) and final.stop_reason == "end_turn" and final.usage.output_tokens == OUT

        assert client.messages.count_tokens(
            model="claude-sonnet-4-5", messages=[{"role": "user", "content": "Hello there"}]).input_tokens == 2

        with pytest.raises(anthropic.RateLimitError) as info:
            client.messages.create(model="claude-sonnet-4-5", max_tokens=8,
                                   messages=[{"role": "user", "content": "[sim:status=429;retry_after=2]"}])
        assert info.value.response.headers["retry-after"] == "2"
        with pytest.raises(anthropic.InternalServerError) as info:
            client.messages.create(model="claude-sonnet-4-5", max_tokens=8,
                                   messages=[{"role": "user", "content": "[sim:status=529]"}])
        assert info.value.status_code == 529 and info.value.body["error"]["type"] == "overloaded_error"
        with pytest.raises(anthropic.APIStatusError) as info:
            with client.messages.stream(model="claude-sonnet-4-5", max_tokens=64,
                                        messages=[{"role": "user", "content": "[sim:error_after=4]"}]) as stream:
                for _ in stream:
                    pass
        assert info.value.body["error"]["type"] == "overloaded_error"


def test_anthropic_sdk_retries_a_529_after_the_servers_delay():
    """The SDK retries 529s by itself; a fail_first fault lets the second attempt through."""
    with SimulatorThread(_profile()) as sim:
        client = anthropic.Anthropic(base_url=sim.url, api_key=KEY, max_retries=1, timeout=5)
        start = time.monotonic()
        msg = client.messages.create(model="claude-sonnet-4-5", max_tokens=64,
                                     messages=[{"role": "user", "content": "[sim:fail_first=1;status=529;key=r1]"}])
        assert msg.stop_reason == "end_turn" and time.monotonic() - start < 5
        assert sim.state.fail_counts["r1"] == 2


async def test_prompt_cache_writes_then_reads(sim, http):
    long_system = "The quick answer is that this system works well. " * 120  # ~1,200 tokens
    system = [{"type": "text", "text": long_system, "cache_control": {"type": "ephemeral"}}]
    total = count_tokens(long_system) + count_tokens("Hello there")
    _, first, _ = await _post(http, sim, _body(system=system))
    _, second, _ = await _post(http, sim, _body(system=system))
    _, other, _ = await _post(http, sim, _body(system=[{**system[0], "text": long_system + "!"}]))
    written = count_tokens(long_system)
    assert first["usage"]["cache_creation_input_tokens"] == written and first["usage"]["cache_read_input_tokens"] == 0
    assert first["usage"]["cache_creation"]["ephemeral_5m_input_tokens"] == written
    assert second["usage"]["cache_read_input_tokens"] == written and second["usage"]["cache_creation_input_tokens"] == 0
    for usage in (first["usage"], second["usage"]):
        assert usage["input_tokens"] + usage["cache_creation_input_tokens"] + usage["cache_read_input_tokens"] == total
    assert other["usage"]["cache_read_input_tokens"] == 0  # another prefix is another cache entry
    # Below the model's minimum, or with no breakpoint, nothing is cached.
    _, short, _ = await _post(http, sim, _body(system=[{"type": "text", "text": "Be brief.",
                                                        "cache_control": {"type": "ephemeral"}}]))
    _, plain, _ = await _post(http, sim, _body(system=long_system))
    for usage in (short["usage"], plain["usage"]):
        assert usage["cache_creation_input_tokens"] == usage["cache_read_input_tokens"] == 0
    sim.reset()
    _, again, _ = await _post(http, sim, _body(system=system))
    assert again["usage"]["cache_creation_input_tokens"] == written
