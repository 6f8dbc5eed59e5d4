"""A pipeline's required capabilities describe chat models (tools, streaming, vision, JSON schemas...):
an embeddings request through that pipeline is judged on what embeddings need only. Before, a
pipeline requiring `tools` refused every embeddings request (no embedding model has tools) while one
requiring `streaming` let them through (embedding models default to it). Chat requests through the
same pipeline keep the requirement. Direct decisions first, then over HTTP with a key bound to the
pipeline, on every route."""

from __future__ import annotations

import pytest

from gateway import errors
from gateway.catalog import GatewayConfig, load_catalog
from gateway.core.decision import Decider
from gateway.policy import load_policy_dir
from gateway.security.keys import hash_key
from gateway.selection.engine import SelectionEngine
from gateway.upstream.operation import EMBEDDINGS
from tests import loopback
from tests.conftest import EMBEDDING_DEPLOYMENTS

BASE = "http://127.0.0.1:9/v1"
_PIPELINE = "pipeline: %s\nselection_schema:\n  strategy: balanced\n  constraints:\n    required_capabilities: [%s]\n"
_EMBED = {"model": "auto", "input": "hello"}
_CHAT = {"model": "auto", "messages": [{"role": "user", "content": "hello"}]}


def _policies(path, **required: str):
    for name, caps in required.items():
        (path / f"{name}.yaml").write_text(_PIPELINE % (name, caps))
    return path


@pytest.fixture
def decider(tmp_path):
    deps = [
        {"name": "chat-tools", "model": "openai/gpt-4o-mini", "api_base": BASE, "metadata": {"supports_tools": True}},
        {"name": "chat-plain", "model": "openai/gpt-4o-mini", "api_base": BASE, "metadata": {"supports_tools": False}},
        {"name": "small", "model": "openai/text-embedding-3-small", "api_base": BASE, "mode": "embedding"},
        {"name": "large", "model": "openai/text-embedding-3-large", "api_base": BASE, "mode": "embedding"},
    ]
    catalog = load_catalog(GatewayConfig.model_validate({"deployments": deps}), env={})
    models = {d.name: d.info for d in catalog.deployments.values()}
    policies = load_policy_dir(_policies(tmp_path, tooling="tools", streamer="streaming", seeing="tools, vision"),
                               models)
    return Decider(catalog, SelectionEngine(), lambda: policies)


@pytest.mark.parametrize("pipeline", ["tooling", "streamer", "seeing"])
def test_auto_embeddings_ignore_the_pipelines_chat_capabilities(decider, pipeline):
    decision = decider.decide(_EMBED, {"x-pipeline-id": pipeline}, "r", operation=EMBEDDINGS)
    assert {c.model.name for c in decision.ranking.ranked} == {"small", "large"}
    assert not decision.ranking.rejected


@pytest.mark.parametrize("pipeline", ["tooling", "streamer", "seeing"])
def test_a_named_embedding_model_is_allowed_by_the_pipeline(decider, pipeline):
    body = {**_EMBED, "model": "small"}
    decision = decider.decide(body, {"x-pipeline-id": pipeline}, "r", operation=EMBEDDINGS)
    assert [c.model.name for c in decision.ranking.ranked] == ["small"]


def test_chat_through_the_same_pipeline_keeps_the_requirement(decider):
    # Embeddings first, so a shared remembered resolution would show up in the chat decisions.
    decider.decide(_EMBED, {"x-pipeline-id": "tooling"}, "r", operation=EMBEDDINGS)
    for _ in range(2):
        chat = decider.decide(_CHAT, {"x-pipeline-id": "tooling"}, "r")
        assert [c.model.name for c in chat.ranking.ranked] == ["chat-tools"]
        assert "tools" in chat.resolution.params.constraints.required_capabilities
    with pytest.raises(errors.PermissionDeniedError, match="capability: missing tools"):
        decider.decide({**_CHAT, "model": "chat-plain"}, {"x-pipeline-id": "tooling"}, "r")
    embedding = decider.decide(_EMBED, {"x-pipeline-id": "tooling"}, "r", operation=EMBEDDINGS)
    assert not embedding.resolution.params.constraints.required_capabilities


def test_embeddings_keep_one_params_object_per_pipeline(decider):
    # Rankings are remembered by the identity of the params: a fresh copy per request would miss.
    first = decider.decide(_EMBED, {"x-pipeline-id": "tooling"}, "r1", operation=EMBEDDINGS)
    again = decider.decide(_EMBED, {"x-pipeline-id": "tooling"}, "r2", operation=EMBEDDINGS)
    assert again.resolution.params is first.resolution.params


KEY = "gw-tools-pipeline-9Qs4Lm2Xc7"


@pytest.fixture
def bound(gateway_factory, tmp_path):
    """A gateway whose key is bound to a pipeline that requires tools (as policies/code-assistant.yaml)."""
    policies = tmp_path / "policies"
    policies.mkdir()
    _policies(policies, tooling="tools")
    keys = [{"name": "coder", "sha256": hash_key(KEY), "pipeline": "tooling"}]
    return gateway_factory(policies=policies, embeddings=EMBEDDING_DEPLOYMENTS, catalog_extra={"keys": keys},
                           transport="openai", max_retries=0)


@pytest.mark.parametrize("model", ["auto", "text-embedding-3-small"])
def test_a_key_bound_to_a_tools_pipeline_can_embed(bound, model):
    r = loopback.post(f"{bound.base_url}/embeddings", json={**_EMBED, "model": model},
                      headers={"authorization": f"Bearer {KEY}"}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["x-gateway-model"] in EMBEDDING_DEPLOYMENTS
    assert len(r.json()["data"]) == 1


def test_the_same_key_still_gets_tool_capable_chat_models_only(bound):
    headers = {"authorization": f"Bearer {KEY}"}
    for path, body in (("/chat/completions", _CHAT), ("/responses", {"model": "auto", "input": "hello"}),
                       ("/messages", {**_CHAT, "max_tokens": 20})):
        r = loopback.post(bound.base_url + path, json=body, headers=headers, timeout=30)
        assert r.status_code == 200, r.text
        assert r.headers["x-gateway-model"] != "sim-tiny"  # the one chat deployment without tools
    r = loopback.post(f"{bound.base_url}/chat/completions", json={**_CHAT, "model": "sim-tiny"}, headers=headers,
                      timeout=30)
    assert r.status_code == 403 and "capability: missing tools" in r.json()["error"]["message"]
