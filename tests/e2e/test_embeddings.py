"""`POST /v1/embeddings` end to end: the official OpenAI SDK, the gateway over each transport
(OpenAI wire and litellm), the simulator's embedding models; bodies checked against OpenAI's schema."""

from __future__ import annotations

import base64
import json
import struct
import time
import urllib.request

import numpy as np
import openai
import pytest

from tests.conftest import EMBEDDING_DEPLOYMENTS
from tests import loopback


@pytest.fixture(params=["openai", "litellm"])
def gw(gateway_factory, request):
    return gateway_factory(transport=request.param, embeddings=EMBEDDING_DEPLOYMENTS, stats_refresh_s=0.05)


@pytest.fixture
def client(gw):
    return openai.OpenAI(base_url=gw.base_url, api_key="k", max_retries=0, timeout=60)


def test_single_input_auto(client, embeddings_schema):
    raw = client.embeddings.with_raw_response.create(model="auto", input="The food was delicious.",
                                                     encoding_format="float")
    body = json.loads(raw.http_response.text)
    embeddings_schema.validate("CreateEmbeddingResponse", body)
    resp = raw.parse()
    served = raw.headers["x-gateway-model"]
    assert served in EMBEDDING_DEPLOYMENTS and resp.model == served
    assert len(resp.data) == 1 and resp.data[0].index == 0
    vector = np.array(resp.data[0].embedding)
    assert abs(np.linalg.norm(vector) - 1.0) < 1e-3  # unit vectors, as OpenAI's
    assert resp.usage.prompt_tokens > 0 and resp.usage.total_tokens == resp.usage.prompt_tokens
    assert float(raw.headers["x-gateway-cost-usd"]) > 0
    assert "winner=" in raw.headers["x-gateway-decision"]


def test_batch_of_strings_and_token_arrays(client):
    texts = ["alpha", "beta", "gamma"]
    resp = client.embeddings.create(model="text-embedding-3-small", input=texts)
    assert [d.index for d in resp.data] == [0, 1, 2]
    assert all(len(d.embedding) == 1536 for d in resp.data)
    again = client.embeddings.create(model="text-embedding-3-small", input=["beta"])
    assert np.allclose(again.data[0].embedding, resp.data[1].embedding, atol=1e-6)  # deterministic per text
    tokens = client.embeddings.create(model="text-embedding-3-small", input=[[1, 2, 3], [4, 5]])
    assert len(tokens.data) == 2 and tokens.usage.prompt_tokens == 5


@pytest.mark.parametrize("dimensions", [256, 1024, 3072])
def test_auto_respects_dimensions(client, dimensions):
    raw = client.embeddings.with_raw_response.create(model="auto", input="hello", dimensions=dimensions)
    resp = raw.parse()
    assert len(resp.data[0].embedding) == dimensions
    if dimensions == 3072:  # only the large model has that many
        assert raw.headers["x-gateway-model"] == "text-embedding-3-large"


def test_a_model_that_cannot_shorten_is_never_chosen_for_another_size(gw):
    for _ in range(3):
        r = loopback.post(f"{gw.base_url}/embeddings", json={"model": "auto", "input": "x", "dimensions": 512}, timeout=60)
        assert r.status_code == 200 and r.headers["x-gateway-model"] != "text-embedding-ada-002"
    # Its own size is fine: the gateway leaves `dimensions` out for it (its API refuses the parameter).
    r = loopback.post(f"{gw.base_url}/embeddings",
                      json={"model": "text-embedding-ada-002", "input": "x", "dimensions": 1536}, timeout=60)
    assert r.status_code == 200, r.text
    assert len(r.json()["data"][0]["embedding"]) == 1536
    r = loopback.post(f"{gw.base_url}/embeddings",
                      json={"model": "text-embedding-ada-002", "input": "x", "dimensions": 512}, timeout=60)
    assert r.status_code == 422 and "cannot shorten" in r.json()["error"]["message"]


def test_base64_passes_through(client):
    raw = client.embeddings.with_raw_response.create(model="text-embedding-3-small", input="hi", dimensions=8,
                                                     encoding_format="base64")
    encoded = json.loads(raw.http_response.text)["data"][0]["embedding"]
    assert isinstance(encoded, str)
    floats = struct.unpack("<8f", base64.b64decode(encoded))
    plain = client.embeddings.create(model="text-embedding-3-small", input="hi", dimensions=8, encoding_format="float")
    assert np.allclose(floats, plain.data[0].embedding, atol=1e-6)


def test_chat_and_embedding_deployments_never_mix(gw, client):
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model="sim-mini", input="x")
    assert info.value.body["code"] == "model_not_supported" and "/v1/chat/completions" in info.value.body["message"]
    chat = openai.OpenAI(base_url=gw.base_url, api_key="k", max_retries=0)
    with pytest.raises(openai.BadRequestError) as info:
        chat.chat.completions.create(model="text-embedding-3-small", messages=[{"role": "user", "content": "hi"}])
    assert "/v1/embeddings" in info.value.body["message"]
    for _ in range(5):  # auto never ranks an embedding model for chat
        raw = chat.chat.completions.with_raw_response.create(model="auto", messages=[{"role": "user", "content": "hi"}])
        assert raw.headers["x-gateway-model"] not in EMBEDDING_DEPLOYMENTS


@pytest.mark.parametrize("body, param", [
    ({"model": "auto"}, "input"),
    ({"model": "auto", "input": ""}, "input"),
    ({"model": "auto", "input": []}, "input"),
    ({"model": "auto", "input": [1, "a"]}, "input"),
    ({"model": "auto", "input": "x", "dimensions": 0}, "dimensions"),
    ({"model": "auto", "input": "x", "encoding_format": "int8"}, "encoding_format"),
    ({"model": "auto", "input": "x", "api_base": "http://evil"}, "api_base"),
    ({"model": "auto", "input": "x", "stream": True}, "stream"),
    ({"input": "x"}, "model"),
])
def test_bad_bodies_are_400_naming_the_parameter(gw, body, param, embeddings_schema):
    r = loopback.post(f"{gw.base_url}/embeddings", json=body, timeout=30)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param


def test_cost_and_latency_are_recorded(gw, client):
    for _ in range(3):
        client.embeddings.create(model="text-embedding-3-large", input=["one", "two"])
    deadline = time.monotonic() + 10
    while True:
        stats = loopback.get(f"{gw.base_url}/gateway/stats").json()
        dep = stats["deployments"].get("text-embedding-3-large") or {}
        if dep.get("samples", 0) >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert dep.get("samples", 0) >= 3, stats["deployments"]
    recent = [d for d in stats["recent_decisions"] if d["endpoint"] == "embeddings"]
    assert recent and recent[-1]["served"] == "text-embedding-3-large" and recent[-1]["cost_usd"] > 0


def test_fallback_keeps_the_vector_size(gw, simulator):
    # The winner fails; the fallback must return vectors of the size the caller asked for.
    body = {"model": "auto", "input": ["[sim:status=500;model=text-embedding-3-small] hello"], "dimensions": 256}
    r = loopback.post(f"{gw.base_url}/embeddings", json=body, timeout=60)
    assert r.status_code == 200, r.text
    assert r.headers["x-gateway-model"] == "text-embedding-3-large"
    assert len(r.json()["data"][0]["embedding"]) == 256


def test_simulator_saw_the_batch(client, simulator):
    client.embeddings.create(model="text-embedding-3-small", input=["a", "b"], dimensions=64)
    with urllib.request.urlopen(f"{simulator.url}/_sim/requests?limit=1") as r:
        body = json.load(r)["requests"][-1]["body"]
    assert body["input"] == ["a", "b"] and body["dimensions"] == 64 and body["model"] == "text-embedding-3-small"
