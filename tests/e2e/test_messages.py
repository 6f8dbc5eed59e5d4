"""`POST /v1/messages` end to end: the official `anthropic` SDK pointed at the gateway, each transport
(OpenAI wire, litellm) behind it; every body, event and error checked against Anthropic's schema
(tests/data/anthropic/messages.schema.json)."""

from __future__ import annotations

import json

import anthropic
import httpx
import pytest
from tests import loopback

WEATHER = {
    "name": "get_weather", "description": "Weather for a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
HELLO = [{"role": "user", "content": "Say hello."}]


@pytest.fixture
def client(gateway):
    # The SDK appends /v1/messages to its base URL.
    return anthropic.Anthropic(base_url=gateway.base_url.removesuffix("/v1"), api_key="k", max_retries=0, timeout=60)


def _events(gateway, body: dict) -> tuple[httpx.Response, list[tuple[str, dict]]]:
    with loopback.client(timeout=60) as http:
        with http.stream("POST", f"{gateway.base_url}/messages", json=body,
                         headers={"anthropic-version": "2023-06-01"}) as r:
            text = r.read().decode()
    out = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        out.append((lines["event"], json.loads(lines["data"])))
    return r, out


def test_plain_message(client, anthropic_schema):
    raw = client.messages.with_raw_response.create(
        model="auto", max_tokens=64, system="Be brief.", messages=HELLO, metadata={"user_id": "u-1"},
        stop_sequences=["\n\n"], extra_body={"temperature": 0.2, "top_p": 0.9, "top_k": 20},
    )
    anthropic_schema.validate("Message", json.loads(raw.http_response.text))
    msg = raw.parse()
    assert msg.type == "message" and msg.role == "assistant" and msg.id.startswith("msg_")
    assert msg.content[0].type == "text" and msg.content[0].text
    assert msg.stop_reason == "end_turn" and msg.model == raw.headers["x-gateway-model"]
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0
    assert float(raw.headers["x-gateway-cost-usd"]) > 0


def test_request_reaches_the_model_as_chat(client, simulator, request):
    client.messages.create(model="sim-mini", max_tokens=64, system=[{"type": "text", "text": "sys"}],
                           messages=HELLO, metadata={"user_id": "u-1"}, stop_sequences=["END"],
                           extra_body={"top_k": 20})
    sent = loopback.get(f"{simulator.url}/_sim/requests?limit=1").json()["requests"][-1]["body"]
    assert sent["messages"] == [{"role": "system", "content": "sys"}, {"role": "user", "content": "Say hello."}]
    assert sent["stop"] == ["END"]
    if request.node.callspec.params["gateway"] == "openai":  # litellm keeps `user` to itself for this provider
        assert sent["user"] == "u-1"
    assert sent.get("max_completion_tokens", sent.get("max_tokens")) == 64
    assert "top_k" not in sent  # sim-mini serves OpenAI's models, whose API refuses top_k


def test_stream_events_follow_anthropics_protocol(gateway, anthropic_schema):
    r, events = _events(gateway, {"model": "auto", "max_tokens": 64, "messages": HELLO, "stream": True})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    for name, data in events:
        assert name == data["type"]
        anthropic_schema.validate("MessageStreamEvent", data)
    kinds = [name for name, _ in events]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert events[-2][1]["delta"]["stop_reason"] == "end_turn" and events[-2][1]["usage"]["output_tokens"] > 0


def test_stream_with_the_sdk(client):
    with client.messages.stream(model="auto", max_tokens=64, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text and final.content[0].text == text
    assert final.usage.output_tokens > 0 and final.usage.input_tokens > 0


@pytest.mark.parametrize("stream", [False, True])
def test_tool_round_trip(client, stream):
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    first = _create(client, stream, model="auto", max_tokens=200, tools=[WEATHER],
                    tool_choice={"type": "any"}, messages=messages)
    assert first.stop_reason == "tool_use"
    uses = [b for b in first.content if b.type == "tool_use"]
    assert len(uses) == 1 and uses[0].name == "get_weather" and isinstance(uses[0].input, dict)
    assert uses[0].input.get("city")
    messages += [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": uses[0].id, "content": "21 C"}]},
    ]
    second = _create(client, stream, model="auto", max_tokens=200, tools=[WEATHER], messages=messages)
    assert second.stop_reason == "end_turn" and second.content[0].type == "text"


def _create(client, stream: bool, **kw):
    if not stream:
        return client.messages.create(**kw)
    with client.messages.stream(**kw) as s:
        return s.get_final_message()


def test_tool_results_become_tool_messages(client, simulator):
    client.messages.create(model="sim-mini", max_tokens=50, tools=[WEATHER], messages=[
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": [{"type": "text", "text": "Checking."},
                                          {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                           "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                      "content": [{"type": "text", "text": "21 C"}], "is_error": False}]},
    ])
    sent = loopback.get(f"{simulator.url}/_sim/requests?limit=1").json()["requests"][-1]["body"]
    assert sent["messages"][1]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert sent["messages"][1]["content"] == "Checking."
    assert sent["messages"][2] == {"role": "tool", "tool_call_id": "toolu_1", "content": "21 C"}
    assert sent["tools"][0]["function"]["parameters"] == WEATHER["input_schema"]


def test_count_tokens(client):
    count = client.messages.count_tokens(model="auto", messages=HELLO, tools=[WEATHER])
    assert count.input_tokens > 0


@pytest.mark.parametrize("body, status, kind", [
    ({"model": "nope", "max_tokens": 5, "messages": HELLO}, 404, "not_found_error"),
    ({"model": "auto", "messages": HELLO}, 400, "invalid_request_error"),
    ({"model": "auto", "max_tokens": 5, "messages": []}, 400, "invalid_request_error"),
    ({"model": "auto", "max_tokens": 5, "messages": HELLO, "tools": [{"type": "web_search_20250305",
                                                                      "name": "web_search"}]}, 400,
     "invalid_request_error"),
    ({"model": "auto", "max_tokens": 5, "messages": HELLO, "mcp_servers": [{"url": "https://x"}]}, 400,
     "invalid_request_error"),
    ({"model": "auto", "max_tokens": 5, "messages": HELLO, "api_key": "x"}, 400, "invalid_request_error"),
])
def test_errors_are_in_anthropics_shape(gateway, body, status, kind, anthropic_schema):
    r = loopback.post(f"{gateway.base_url}/messages", json=body, timeout=30)
    assert r.status_code == status, r.text
    anthropic_schema.validate("ErrorResponse", r.json())
    assert r.json()["error"]["type"] == kind and r.json()["error"]["message"]
    assert r.headers["x-gateway-request-id"].startswith("req_")


def test_sdk_raises_its_own_error_types(client):
    with pytest.raises(anthropic.NotFoundError) as info:
        client.messages.create(model="nope", max_tokens=5, messages=HELLO)
    assert info.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model="auto", max_tokens=5, messages=HELLO, extra_body={"container": "c1"})


def test_a_stream_cut_mid_way_ends_with_an_error_event(gateway, anthropic_schema):
    r, events = _events(gateway, {"model": "sim-mini", "max_tokens": 50, "stream": True,
                                  "messages": [{"role": "user", "content": "[sim:reset_after=4] hi"}]})
    assert r.status_code == 200
    assert events[-1][0] == "error" and events[-1][1]["error"]["type"] == "api_error"
    anthropic_schema.validate("ErrorResponse", events[-1][1])


def test_the_sdk_raises_on_a_cut_stream(client):
    with pytest.raises(anthropic.APIStatusError):
        with client.messages.stream(model="sim-mini", max_tokens=50,
                                    messages=[{"role": "user", "content": "[sim:reset_after=4] hi"}]) as stream:
            for _ in stream:
                pass


def test_an_upstream_overload_reads_as_anthropics_own(client, anthropic_schema):
    # The deployment answers 503 on every try: the gateway's 503 `upstream_overloaded`, typed as
    # Anthropic types an overload, so an Anthropic client reads it as one.
    with pytest.raises(anthropic.InternalServerError) as info:
        client.messages.create(model="sim-mini", max_tokens=5,
                               messages=[{"role": "user", "content": "[sim:status=503] hi"}])
    assert info.value.status_code == 503
    anthropic_schema.validate("ErrorResponse", info.value.body)
    assert info.value.body["error"]["type"] == "overloaded_error"
