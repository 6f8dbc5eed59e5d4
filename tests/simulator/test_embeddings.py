"""The simulator's `POST /v1/embeddings`: deterministic unit vectors, shortening as OpenAI's
text-embedding-3 models do, base64, refusals as OpenAI's, directives; bodies against OpenAI's schema."""

from __future__ import annotations

import base64
import struct

import httpx
import numpy as np
import pytest

from gateway.simulator import SimulatorProfile, SimulatorThread
from tests import loopback

KEY = "sim-embed-key"


@pytest.fixture(scope="module")
def sim():
    profile = SimulatorProfile.model_validate({"api_key": KEY, "models": {
        "emb": {"dimensions": 64}, "fixed": {"dimensions": 32, "supports_dimensions": False},
        "chat": {}, "tiny-window": {"dimensions": 8, "context_window": 4}}})
    with SimulatorThread(profile) as server:
        yield server


def _post(sim, body: dict, key: str = KEY) -> httpx.Response:
    return loopback.post(f"{sim.base_url}/embeddings", json=body, headers={"authorization": f"Bearer {key}"}, timeout=10)


def test_vectors_are_deterministic_unit_vectors(sim, embeddings_schema):
    r = _post(sim, {"model": "emb", "input": ["alpha", "beta", [1, 2, 3]]})
    assert r.status_code == 200
    embeddings_schema.validate("CreateEmbeddingResponse", r.json())
    data = r.json()["data"]
    vectors = [np.array(d["embedding"]) for d in data]
    assert [d["index"] for d in data] == [0, 1, 2] and all(len(v) == 64 for v in vectors)
    assert all(abs(np.linalg.norm(v) - 1) < 1e-5 for v in vectors)
    assert abs(vectors[0] @ vectors[1]) < 0.9  # different texts, different directions
    again = _post(sim, {"model": "emb", "input": "alpha"}).json()["data"][0]["embedding"]
    assert np.allclose(again, vectors[0])
    usage = r.json()["usage"]
    assert usage["prompt_tokens"] == usage["total_tokens"] >= 5


def test_shorter_vectors_are_the_renormalised_prefix(sim):
    full = np.array(_post(sim, {"model": "emb", "input": "x"}).json()["data"][0]["embedding"])
    short = np.array(_post(sim, {"model": "emb", "input": "x", "dimensions": 16}).json()["data"][0]["embedding"])
    assert np.allclose(short, full[:16] / np.linalg.norm(full[:16]), atol=1e-6)


def test_base64_is_little_endian_float32(sim):
    plain = _post(sim, {"model": "emb", "input": "x", "dimensions": 4}).json()["data"][0]["embedding"]
    encoded = _post(sim, {"model": "emb", "input": "x", "dimensions": 4, "encoding_format": "base64"})
    floats = struct.unpack("<4f", base64.b64decode(encoded.json()["data"][0]["embedding"]))
    assert np.allclose(floats, plain, atol=1e-7)


@pytest.mark.parametrize("body, status, param", [
    ({"model": "fixed", "input": "x", "dimensions": 32}, 400, "dimensions"),  # as ada-002: no `dimensions` at all
    ({"model": "emb", "input": "x", "dimensions": 65}, 400, "dimensions"),
    ({"model": "emb", "input": "x", "encoding_format": "int8"}, 400, "encoding_format"),
    ({"model": "emb", "input": ""}, 400, "input"),
    ({"model": "chat", "input": "x"}, 400, "model"),
    ({"model": "tiny-window", "input": "one two three four five six"}, 400, "input"),
    ({"model": "nope", "input": "x"}, 404, None),
])
def test_refusals(sim, body, status, param, openai_schema):
    r = _post(sim, body)
    assert r.status_code == status, r.text
    openai_schema.validate("ErrorResponse", r.json())
    assert r.json()["error"]["param"] == param


def test_key_and_directives(sim):
    assert _post(sim, {"model": "emb", "input": "x"}, key="wrong").status_code == 401
    r = _post(sim, {"model": "emb", "input": ["[sim:status=429;retry_after=2] x"]})
    assert r.status_code == 429 and r.headers["retry-after"] == "2"
    assert _post(sim, {"model": "emb", "input": ["[sim:status=503;model=other] x"]}).status_code == 200
