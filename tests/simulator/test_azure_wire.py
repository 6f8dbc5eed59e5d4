"""The simulator's Azure OpenAI wire, over raw HTTP (bodies checked against OpenAI's schema, which
Azure's carry plus content-filter annotations) and through the `openai` SDK's `AzureOpenAI`."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from gateway.simulator import ModelProfile, SimulatorProfile, SimulatorThread
from gateway.simulator._text import filler_text
from tests.conftest import SchemaValidator

KEY = "azure-sim-key"
OUT = 4
VERSION = "2024-10-21"
DEPLOYMENT = "/openai/deployments/prod-mini/chat/completions"
SCHEMA = SchemaValidator()


def _profile() -> SimulatorProfile:
    return SimulatorProfile(api_key=KEY, models={"prod-mini": ModelProfile(output_tokens=OUT)})


def _body(text: str = "Hello there", **extra: Any) -> dict[str, Any]:
    # The body's model is ignored: the deployment in the path decides.
    return {"messages": [{"role": "user", "content": text}], **extra}


async def _post(http, sim, body: Any, path: str = DEPLOYMENT, headers: dict[str, str] | None = None,
                **query: str) -> tuple[int, Any, Any]:
    query = {"api-version": VERSION, **query}
    async with http.post(f"{sim.url}{path}", json=body, params={k: v for k, v in query.items() if v},
                         headers={"api-key": KEY} if headers is None else headers) as r:
        doc = await r.json(content_type=None)
        if r.status == 200:
            SCHEMA.validate("CreateChatCompletionResponse", doc)
        else:
            assert set(doc) == {"error"} and {"code", "message"} <= set(doc["error"])
        return r.status, doc, r.headers


async def test_completion_with_filter_results(sim, http):
    status, doc, _ = await _post(http, sim, _body())
    assert status == 200 and doc["model"] == "prod-mini"
    assert doc["choices"][0]["message"]["content"] == filler_text(OUT)
    assert doc["prompt_filter_results"][0]["content_filter_results"]["hate"] == {"filtered": False, "severity": "safe"}
    assert doc["choices"][0]["content_filter_results"]["violence"]["filtered"] is False
    assert sim.state.records[-1]["model"] == "prod-mini"


async def test_stream_starts_with_a_filter_only_chunk(sim, http):
    async with http.post(f"{sim.url}{DEPLOYMENT}", params={"api-version": VERSION}, headers={"api-key": KEY},
                         json=_body(stream=True, stream_options={"include_usage": True})) as r:
        events = [e[len("data: "):] for e in (await r.text()).split("\n\n") if e]
    assert events[-1] == "[DONE]"
    first, *chunks = [json.loads(e) for e in events[:-1]]
    assert first["choices"] == [] and "prompt_filter_results" in first and first["id"] == ""
    for c in chunks:
        SCHEMA.validate("CreateChatCompletionStreamResponse", c)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == filler_text(OUT)
    assert chunks[-1]["usage"]["completion_tokens"] == OUT


@pytest.mark.parametrize(
    ("query", "headers", "path", "status", "code"),
    [
        ({"api-version": None}, None, DEPLOYMENT, 404, "404"),
        ({"api-version": "latest"}, None, DEPLOYMENT, 400, "BadRequest"),
        ({}, {"api-key": "wrong"}, DEPLOYMENT, 401, "401"),
        ({}, {}, DEPLOYMENT, 401, "401"),
        ({}, {"Authorization": f"Bearer {KEY}"}, DEPLOYMENT, 401, "401"),  # the key is no Entra token
        ({}, None, "/openai/deployments/nope/chat/completions", 404, "DeploymentNotFound"),
    ],
)
async def test_azure_refusals(sim, http, query, headers, path, status, code):
    got, doc, _ = await _post(http, sim, _body(), path, headers, **query)
    assert (got, doc["error"]["code"]) == (status, code)


async def test_entra_token_and_faults(sim, http):
    entra = "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJ4In0.c2ln"  # a JWT's shape: header.payload.signature
    status, _, _ = await _post(http, sim, _body(), headers={"Authorization": f"Bearer {entra}"})
    assert status == 200
    status, doc, headers = await _post(http, sim, _body("[sim:status=429;retry_after=6]"))
    assert status == 429 and headers["retry-after"] == "6" and "retry after 6 seconds" in doc["error"]["message"]
    status, doc, _ = await _post(http, sim, _body("x " * 10, max_tokens=10**6))
    assert status == 400 and doc["error"]["code"] == "context_length_exceeded"  # OpenAI's, passed through


def test_azure_openai_sdk_round_trip():
    with SimulatorThread(_profile()) as sim:
        client = openai.AzureOpenAI(azure_endpoint=sim.url, api_key=KEY, api_version=VERSION, max_retries=0,
                                    timeout=5)
        resp = client.chat.completions.create(model="prod-mini", messages=[{"role": "user", "content": "hi"}])
        assert resp.choices[0].message.content == filler_text(OUT)
        stream = client.chat.completions.create(model="prod-mini", messages=[{"role": "user", "content": "hi"}],
                                                stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == filler_text(OUT)
        with pytest.raises(openai.RateLimitError) as info:
            client.chat.completions.create(model="prod-mini",
                                           messages=[{"role": "user", "content": "[sim:status=429;retry_after=2]"}])
        assert info.value.response.headers["retry-after"] == "2"
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="missing", messages=[{"role": "user", "content": "hi"}])
