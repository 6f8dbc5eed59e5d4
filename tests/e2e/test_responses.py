"""`POST /v1/responses` end to end: the official OpenAI SDK (and LangChain's ChatOpenAI with the
Responses API) against the gateway over each transport, every body and event checked against
OpenAI's Responses schema (tests/data/openai/responses.schema.json)."""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from pydantic import BaseModel
from tests import loopback

WEATHER = {
    "type": "function", "name": "get_weather", "description": "Weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                   "additionalProperties": False},
}


@pytest.fixture
def client(gateway):
    return openai.OpenAI(base_url=gateway.base_url, api_key="k", max_retries=0, timeout=60)


def _events(gateway, body: dict) -> tuple[httpx.Response, list[tuple[str, dict]]]:
    with loopback.client(timeout=60) as http:
        with http.stream("POST", f"{gateway.base_url}/responses", json=body) as r:
            text = r.read().decode()
    out = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        out.append((lines["event"], json.loads(lines["data"])))
    return r, out


def test_plain_text(client, responses_schema):
    raw = client.responses.with_raw_response.create(model="auto", input="Say hello.", instructions="Be brief.",
                                                    max_output_tokens=50, metadata={"team": "search"})
    body = json.loads(raw.http_response.text)
    responses_schema.validate("Response", body)
    resp = raw.parse()
    assert resp.status == "completed" and resp.output_text
    assert resp.model == raw.headers["x-gateway-model"] and resp.id.startswith("resp_")
    assert resp.instructions == "Be brief." and resp.metadata == {"team": "search"}
    assert resp.usage.input_tokens > 0 and resp.usage.output_tokens > 0
    assert resp.usage.total_tokens == resp.usage.input_tokens + resp.usage.output_tokens
    assert float(raw.headers["x-gateway-cost-usd"]) > 0 and raw.headers["x-gateway-strategy"] == "balanced"


def test_input_items_reach_the_model_as_chat_messages(client, simulator):
    client.responses.create(model="sim-mini", instructions="sys", input=[
        {"role": "developer", "content": "dev"},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "look"},
            {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ok", "annotations": []}]},
        {"role": "user", "content": "again"},
    ])
    sent = loopback.get(f"{simulator.url}/_sim/requests?limit=1").json()["requests"][-1]["body"]
    # litellm sends a developer message as a system one to models it does not know take them.
    assert sent["messages"][1] in ({"role": "developer", "content": "dev"}, {"role": "system", "content": "dev"})
    del sent["messages"][1]
    assert sent["messages"] == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": [{"type": "text", "text": "look"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=",
                                                                         "detail": "low"}}]},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "again"},
    ]


def test_stream_events_follow_the_responses_protocol(gateway, responses_schema):
    r, events = _events(gateway, {"model": "auto", "input": "Say hello.", "stream": True})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    for name, data in events:
        assert name == data["type"]
        responses_schema.validate("ResponseStreamEvent", data)
    kinds = [name for name, _ in events]
    assert kinds[:5] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added", "response.output_text.delta"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    assert [d["sequence_number"] for _, d in events] == list(range(len(events)))
    deltas = "".join(d["delta"] for n, d in events if n == "response.output_text.delta")
    final = events[-1][1]["response"]
    assert final["output"][0]["content"][0]["text"] == deltas
    assert final["usage"]["output_tokens"] > 0 and final["model"] == r.headers["x-gateway-model"]


def test_stream_with_the_sdk(client):
    with client.responses.stream(model="auto", input="Say hello.") as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert text and final.output_text == text and final.usage.total_tokens > 0


@pytest.mark.parametrize("stream", [False, True])
def test_function_tool_round_trip(client, stream, responses_schema):
    first = _create(client, stream, model="auto", input=[{"role": "user", "content": "Weather in Paris?"}],
                    tools=[WEATHER], tool_choice="required")
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    assert json.loads(calls[0].arguments)["city"]
    # The client sends the call and its output back, as the Agents SDK and LangChain do.
    second = _create(client, stream, model="auto", tools=[WEATHER], input=[
        {"role": "user", "content": "Weather in Paris?"},
        *[item.model_dump(exclude_none=True) for item in first.output],
        {"type": "function_call_output", "call_id": calls[0].call_id, "output": '{"temp_c": 21}'},
    ])
    assert second.status == "completed" and second.output_text
    responses_schema.validate("Response", second.model_dump(mode="json", exclude_none=True))


def _create(client, stream: bool, **kw):
    if not stream:
        return client.responses.create(**kw)
    with client.responses.stream(**kw) as s:
        for _ in s:
            pass
        return s.get_final_response()


class Answer(BaseModel):
    city: str
    temp_c: int


def test_json_schema_output(client, simulator):
    resp = client.responses.parse(model="auto", input="Weather as JSON.", text_format=Answer)
    assert isinstance(resp.output_parsed, Answer)
    sent = loopback.get(f"{simulator.url}/_sim/requests?limit=1").json()["requests"][-1]["body"]
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["name"] == "Answer"
    assert sent["response_format"]["json_schema"]["schema"]["required"] == ["city", "temp_c"]


def test_max_output_tokens_makes_an_incomplete_response(client):
    resp = client.responses.create(model="sim-mini", input="Say hello.", max_output_tokens=3)
    assert resp.status == "incomplete" and resp.incomplete_details.reason == "max_output_tokens"
    assert [item.status for item in resp.output] == ["incomplete"]
    streamed = list(client.responses.create(model="sim-mini", input="Say hello.", max_output_tokens=3, stream=True))
    done = [e.item.status for e in streamed if e.type == "response.output_item.done"]
    assert done == ["incomplete"] and streamed[-1].type == "response.incomplete"


@pytest.mark.parametrize("extra, param", [
    ({"previous_response_id": "resp_123"}, "previous_response_id"),
    ({"store": True}, "store"),
    ({"background": True}, "background"),
    ({"conversation": "conv_1"}, "conversation"),
    ({"prompt": {"id": "pmpt_1"}}, "prompt"),
    ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
    ({"tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}]}, "tools[0].type"),
    ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type"),
    ({"text": {"format": {"type": "xml"}}}, "text.format.type"),
    ({"moderation": {"model": "omni-moderation-latest"}}, "moderation"),
    ({"api_base": "http://evil"}, "api_base"),
])
def test_stateful_and_unsupported_features_are_400_naming_the_parameter(gateway, extra, param, openai_schema):
    body = {"model": "auto", "input": "hi", **extra}
    r = loopback.post(f"{gateway.base_url}/responses", json=body, timeout=30)
    assert r.status_code == 400, r.text
    openai_schema.validate("ErrorResponse", r.json())
    assert r.json()["error"]["param"] == param


def test_store_false_and_absent_are_both_fine(client):
    assert client.responses.create(model="auto", input="hi", store=False).status == "completed"
    assert client.responses.create(model="auto", input="hi").status == "completed"


def test_langchain_chat_openai_with_the_responses_api(gateway):
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI

    @tool
    def get_weather(city: str) -> str:
        """Weather for a city."""
        return "21 C"

    llm = ChatOpenAI(model="auto", base_url=gateway.base_url, api_key="k", use_responses_api=True, max_retries=0)
    reply = llm.invoke("Say hello.")
    assert reply.text and reply.response_metadata.get("model_name")
    chunks = list(llm.stream("Say hello."))
    assert "".join(c.text for c in chunks)
    bound = llm.bind_tools([get_weather], tool_choice="get_weather")
    asked = bound.invoke([HumanMessage("Weather in Paris?")])
    assert asked.tool_calls and asked.tool_calls[0]["name"] == "get_weather"
    done = bound.bind(tool_choice="auto").invoke([
        HumanMessage("Weather in Paris?"), asked,
        ToolMessage(get_weather.invoke(asked.tool_calls[0]["args"]), tool_call_id=asked.tool_calls[0]["id"]),
    ])
    assert done.text


def test_a_stream_cut_mid_way_ends_with_error_and_failed(gateway, responses_schema):
    r, events = _events(gateway, {"model": "sim-mini", "input": "[sim:reset_after=4] hi", "stream": True})
    assert r.status_code == 200
    for _, data in events:
        responses_schema.validate("ResponseStreamEvent", data)
    assert [name for name, _ in events[-2:]] == ["error", "response.failed"]
    assert events[-1][1]["response"]["status"] == "failed"


def test_failures_before_the_first_byte_are_plain_errors_and_fall_back(gateway):
    r = loopback.post(f"{gateway.base_url}/responses", timeout=30, json={
        "model": "auto", "input": "[sim:status=503;model=sim-mini] hi", "stream": True,
        "max_output_tokens": 20})
    assert r.status_code == 200 and r.headers["x-gateway-model"] != "sim-mini"
    r = loopback.post(f"{gateway.base_url}/responses", json={"model": "sim-mini", "input": "[sim:status=400] hi"},
                      timeout=30)
    assert r.status_code == 400 and r.json()["error"]["message"]
