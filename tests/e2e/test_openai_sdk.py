"""The official OpenAI SDK against a running gateway in front of the simulator, with every
response, stream chunk and error body checked against OpenAI's published schema."""

from __future__ import annotations

import json
import urllib.request

import httpx
import openai
import pytest
from tests import loopback

PROMPT = [{"role": "user", "content": "Say hello."}]
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def _sim_requests(simulator, limit: int = 1) -> list[dict]:
    with urllib.request.urlopen(f"{simulator.url}/_sim/requests?limit={limit}") as r:
        data = json.load(r)
    return data["requests"] if isinstance(data, dict) else data


def test_plain_completion_sync(client, openai_schema):
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=PROMPT)
    body = json.loads(raw.http_response.text)
    openai_schema.validate("CreateChatCompletionResponse", body)
    resp = raw.parse()
    assert resp.choices[0].message.content
    assert resp.model in ("sim-premium", "sim-mini", "sim-tiny")
    assert raw.headers["x-gateway-model"] == resp.model
    assert raw.headers["x-gateway-request-id"].startswith("req_")
    assert raw.headers["x-gateway-strategy"] == "balanced"
    assert float(raw.headers["x-gateway-cost-usd"]) > 0
    assert "winner=" in raw.headers["x-gateway-decision"]


async def test_plain_completion_async(gateway, openai_schema):
    client = openai.AsyncOpenAI(base_url=gateway.base_url, api_key="k", max_retries=0)
    raw = await client.chat.completions.with_raw_response.create(model="sim-mini", messages=PROMPT)
    openai_schema.validate("CreateChatCompletionResponse", json.loads(raw.http_response.text))
    resp = raw.parse()
    assert resp.model == "sim-mini"
    assert raw.headers["x-gateway-strategy"] == "pinned"
    await client.close()


def _stream_events(gateway, body: dict, headers: dict | None = None) -> tuple[httpx.Response, list]:
    with loopback.client(timeout=30) as http:
        with http.stream("POST", f"{gateway.base_url}/chat/completions", json=body, headers=headers or {}) as r:
            lines = [line for line in r.iter_lines() if line]
    return r, lines


def test_stream_chunks_validate_and_end_with_done(gateway, openai_schema):
    r, lines = _stream_events(gateway, {"model": "auto", "messages": PROMPT, "stream": True})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[len("data: "):]) for line in lines[:-1]]
    for chunk in chunks:
        openai_schema.validate("CreateChatCompletionStreamResponse", chunk)
        assert chunk["model"] == r.headers["x-gateway-model"]
        assert "usage" not in chunk or chunk["usage"] is None  # not asked for
    assert any(c["choices"] and c["choices"][0].get("finish_reason") for c in chunks)


def test_stream_include_usage_via_sdk(client, openai_schema):
    stream = client.chat.completions.create(
        model="auto", messages=PROMPT, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    usage_chunks = [c for c in chunks if c.usage is not None]
    assert len(usage_chunks) == 1 and usage_chunks[0].choices == []
    assert usage_chunks[0].usage.completion_tokens > 0
    for c in chunks:
        openai_schema.validate("CreateChatCompletionStreamResponse", c.model_dump(exclude_unset=True))


def test_tools_round_trip(client, simulator, openai_schema):
    resp = client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "Weather in Oslo?"}], tools=[TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    openai_schema.validate("CreateChatCompletionResponse", resp.model_dump(exclude_unset=True))
    assert resp.model != "sim-tiny"  # tools need tool support: the tiny model is filtered out
    call = resp.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert "city" in json.loads(call.function.arguments)
    forwarded = _sim_requests(simulator)[-1]["body"]
    assert forwarded["tools"][0]["function"]["name"] == "get_weather"
    assert forwarded["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    follow = client.chat.completions.create(
        model="auto", tools=[TOOL],
        messages=[
            {"role": "user", "content": "Weather in Oslo?"},
            resp.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"},
        ],
    )
    assert follow.choices[0].message.content


def test_tools_streamed(client):
    stream = client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "Weather in Oslo?"}], tools=[TOOL], stream=True
    )
    names = [
        tc.function.name
        for c in stream if c.choices
        for tc in (c.choices[0].delta.tool_calls or []) if tc.function and tc.function.name
    ]
    assert names == ["get_weather"]


def test_json_mode(client):
    resp = client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "JSON please"}], response_format={"type": "json_object"}
    )
    assert isinstance(json.loads(resp.choices[0].message.content), dict)


def test_openai_parameters_pass_through(client, simulator):
    client.chat.completions.create(
        model="sim-mini", messages=PROMPT, temperature=0.3, seed=7, stop=["\n\n"], n=2,
        logprobs=True, top_logprobs=2, max_tokens=20, presence_penalty=0.1, frequency_penalty=0.2,
    )
    body = _sim_requests(simulator)[-1]["body"]
    # (`user` is dropped by litellm for OpenAI-compatible endpoints that are not OpenAI's own models.)
    for key, value in dict(temperature=0.3, seed=7, stop=["\n\n"], n=2, logprobs=True,
                           top_logprobs=2, max_tokens=20, presence_penalty=0.1, frequency_penalty=0.2).items():
        assert body[key] == value, key
    assert body["model"] == "sim-mini"


def test_models_list(client, gateway, openai_schema):
    with loopback.client() as http:
        body = http.get(f"{gateway.base_url}/models").json()
    openai_schema.validate("ListModelsResponse", body)
    ids = [m.id for m in client.models.list()]
    assert ids[0] == "auto" and {"sim-premium", "sim-mini", "sim-tiny"} <= set(ids)


def test_health_and_ready(gateway):
    with loopback.client() as http:
        assert http.get(f"{gateway.url}/healthz").json() == {"status": "ok"}
        ready = http.get(f"{gateway.url}/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


# --- errors: each class reaches the SDK as the right exception with a schema-valid body ---------


def _error_json(exc: openai.APIStatusError) -> dict:
    return exc.response.json()


@pytest.mark.parametrize(
    "directive, exc_type, status",
    [
        ("status=400", openai.BadRequestError, 400),
        ("status=401", openai.AuthenticationError, 401),
        ("status=404", openai.NotFoundError, 404),
        ("status=408", openai.APIStatusError, 408),
        ("status=413", openai.APIStatusError, 413),
        ("status=422", openai.UnprocessableEntityError, 422),
        ("status=429;retry_after=0", openai.RateLimitError, 429),
        ("status=500", openai.InternalServerError, 500),
        ("status=502", openai.InternalServerError, 502),
        ("status=503", openai.InternalServerError, 503),
        ("status=504", openai.InternalServerError, 504),
    ],
)
def test_upstream_error_classes(client, openai_schema, directive, exc_type, status):
    with pytest.raises(exc_type) as info:
        client.chat.completions.create(
            model="sim-mini", messages=[{"role": "user", "content": f"[sim:{directive}] hi"}]
        )
    assert info.value.status_code == status
    body = _error_json(info.value)
    openai_schema.validate("ErrorResponse", body)
    assert "Traceback" not in info.value.response.text
    assert "sim-secret-key" not in info.value.response.text


def test_429_carries_retry_after(client):
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(
            model="sim-mini", messages=[{"role": "user", "content": "[sim:status=429;retry_after=0] hi"}]
        )
    assert info.value.response.headers.get("retry-after") == "0"


def test_upstream_timeout_is_504(gateway_factory, openai_schema):
    gw = gateway_factory(request_timeout_s=1.5)
    client = openai.OpenAI(base_url=gw.base_url, api_key="k", max_retries=0, timeout=30)
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="sim-mini", messages=[{"role": "user", "content": "[sim:hang] hi"}])
    assert info.value.status_code == 504
    openai_schema.validate("ErrorResponse", _error_json(info.value))


def test_transient_500_is_retried_transparently(client, simulator):
    resp = client.chat.completions.create(
        model="sim-mini", messages=[{"role": "user", "content": "[sim:fail_first=1;key=e2e-retry] hi"}]
    )
    assert resp.choices[0].message.content


def test_fallback_down_the_ranking(client, simulator):
    # The first choice keeps failing with 503; the gateway falls back to the next candidate.
    resp = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "[sim:fail_first=2;key=e2e-fallback;status=503] hi"}]
    )
    assert resp.parse().choices[0].message.content
    decision = resp.headers["x-gateway-decision"]
    assert resp.headers["x-gateway-model"] in decision  # the served model is named in the decision


@pytest.mark.parametrize(
    "body, param",
    [
        ({"model": "auto"}, "messages"),
        ({"model": "auto", "messages": []}, "messages"),
        ({"model": "auto", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({"model": "auto", "messages": PROMPT, "n": 1000000}, "n"),
        ({"model": "auto", "messages": PROMPT, "max_tokens": -5}, "max_tokens"),
        ({"model": "auto", "messages": PROMPT, "api_base": "http://169.254.169.254"}, "api_base"),
        ({"messages": PROMPT}, "model"),
    ],
)
def test_bad_requests_get_400(gateway, openai_schema, body, param):
    with loopback.client() as http:
        r = http.post(f"{gateway.base_url}/chat/completions", json=body)
    assert r.status_code == 400
    openai_schema.validate("ErrorResponse", r.json())
    assert r.json()["error"]["param"] == param


def test_malformed_json_is_400(gateway, openai_schema):
    with loopback.client() as http:
        r = http.post(f"{gateway.base_url}/chat/completions", content=b"{not json",
                      headers={"content-type": "application/json"})
    assert r.status_code == 400
    openai_schema.validate("ErrorResponse", r.json())


def test_unknown_model_lists_valid_names(client, openai_schema):
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-9", messages=PROMPT)
    body = _error_json(info.value)
    openai_schema.validate("ErrorResponse", body)
    assert body["error"]["code"] == "model_not_found"
    assert "sim-mini" in body["error"]["message"] and "auto" in body["error"]["message"]


def test_invalid_strategy_header_lists_allowed(client):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="auto", messages=PROMPT, extra_headers={"X-Selection-Strategy": "vibes"})
    message = _error_json(info.value)["error"]["message"]
    assert "cost" in message and "performance" in message and "balanced" in message
    # `custom` is allowed too, and the message says what it needs (the README documents it).
    assert "custom ranks with the pipeline policy's `weights`" in message


def test_unknown_path_is_openai_404(gateway, openai_schema):
    with loopback.client() as http:
        r = http.get(f"{gateway.url}/v1/nope")
    assert r.status_code == 404
    openai_schema.validate("ErrorResponse", r.json())
