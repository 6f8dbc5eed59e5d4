"""Small surface: `GET /v1/models/{id}`, the legacy completions 404, and upstream errors that keep
their `param` and `code` on the way through."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import EMBEDDING_DEPLOYMENTS
from tests import loopback


@pytest.fixture
def gw(gateway_factory):
    return gateway_factory(embeddings=EMBEDDING_DEPLOYMENTS)


@pytest.mark.parametrize("model_id, owned_by", [("sim-mini", "openai"), ("auto", "gateway"),
                                                ("text-embedding-3-small", "openai")])
def test_models_retrieve(gw, model_id, owned_by, openai_schema):
    client = openai.OpenAI(base_url=gw.base_url, api_key="k", max_retries=0)
    raw = client.models.with_raw_response.retrieve(model_id)
    openai_schema.validate("Model", raw.http_response.json())
    model = raw.parse()
    assert model.id == model_id and model.object == "model" and model.owned_by == owned_by
    assert model_id in {m.id for m in client.models.list()}


def test_every_get_route_answers_head_with_gets_head_and_no_body(gw):
    # RFC 9110 (9.1, 9.3.2): HEAD is GET without the content. FastAPI adds no HEAD to a GET route,
    # so each is registered with both; read from the app, so a GET route added later is held too.
    from fastapi.routing import APIRoute

    gets = [r.path for r in gw.app.routes if isinstance(r, APIRoute) and "GET" in r.methods]
    assert {"/v1/models", "/dashboard", "/metrics", "/healthz"} <= set(gets)
    fill = {"{model_id:path}": "sim-mini", "{name}": "dashboard.js"}
    for path in gets:
        for param, value in fill.items():
            path = path.replace(param, value)
        got, head = loopback.get(gw.url + path), loopback.head(gw.url + path)
        assert head.status_code == got.status_code == 200, (path, head.status_code, got.text[:200])
        assert head.content == b"", path
        assert head.headers["content-type"] == got.headers["content-type"], path
        if loopback.get(gw.url + path).content == got.content:  # not a route whose counters move (stats, metrics)
            assert head.headers["content-length"] == str(len(got.content)), path
        else:
            assert int(head.headers["content-length"]) > 0, path
    head = loopback.head(gw.base_url + "/models/no-such-model")
    assert head.status_code == 404 and head.content == b""


def test_the_openapi_documents_operation_ids_are_unique(gw):
    # OpenAPI requires it (a client generator names a method after each); FastAPI repeats a GET
    # route's id on its HEAD operation.
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # FastAPI's "Duplicate Operation ID" warning fails the test too
        doc = gw.app.openapi()
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert doc["paths"]["/v1/models"]["head"]["operationId"] == doc["paths"]["/v1/models"]["get"]["operationId"] + "_head"


def test_unknown_model_is_an_openai_404(gw, openai_schema):
    client = openai.OpenAI(base_url=gw.base_url, api_key="k", max_retries=0)
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve("no-such-model")
    openai_schema.validate("ErrorResponse", info.value.response.json())
    assert info.value.body["code"] == "model_not_found"


def test_legacy_completions_is_a_404_that_says_what_to_use(gw, openai_schema):
    client = openai.OpenAI(base_url=gw.base_url, api_key="k", max_retries=0)
    with pytest.raises(openai.NotFoundError) as info:
        client.completions.create(model="sim-mini", prompt="Once upon a time")
    openai_schema.validate("ErrorResponse", info.value.response.json())
    assert info.value.body["code"] == "endpoint_not_supported"
    assert "/v1/chat/completions" in info.value.body["message"]


def test_relayed_upstream_errors_keep_param_and_code(gateway, openai_schema):
    # The simulator refuses a tool_choice naming an unknown function with param "tool_choice", and a
    # bad directive with its own code: both must reach the client.
    body = {"model": "sim-mini", "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
            "tool_choice": {"type": "function", "function": {"name": "g"}}}
    r = loopback.post(f"{gateway.base_url}/chat/completions", json=body, timeout=30)
    assert r.status_code == 400, r.text
    openai_schema.validate("ErrorResponse", r.json())
    assert r.json()["error"]["param"] == "tool_choice"
    r = loopback.post(f"{gateway.base_url}/chat/completions", timeout=30,
                      json={"model": "sim-mini", "messages": [{"role": "user", "content": "[sim:bogus] hi"}]})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_sim_directive"
    assert r.json()["error"]["param"] == "messages"
