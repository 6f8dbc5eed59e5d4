"""A rule that holds on one path holds on every path: a bound key's policy, reject budgets and rate
limits refuse on /v1/responses, /v1/messages and /v1/embeddings exactly as on chat, and every
request, refused or served, is heard about once (one RequestFinished)."""

from __future__ import annotations

import time

import httpx
import pytest

from gateway.security.keys import hash_key
from tests.conftest import EMBEDDING_DEPLOYMENTS
from tests import loopback

KEY = "gw-bound-4fJ8sLq2Wm9xZc1V"
OPEN_KEY = "gw-open-7Hn3Rt6Yb0Pk5Ds2"
HELLO = [{"role": "user", "content": "hello"}]


def _chat(model: str) -> tuple[str, dict]:
    return "/chat/completions", {"model": model, "messages": HELLO}


def _responses(model: str) -> tuple[str, dict]:
    return "/responses", {"model": model, "input": "hello"}


def _messages(model: str) -> tuple[str, dict]:
    return "/messages", {"model": model, "max_tokens": 20, "messages": HELLO}


def _embeddings(model: str) -> tuple[str, dict]:
    return "/embeddings", {"model": model, "input": "hello"}


ENDPOINTS = {"chat": _chat, "responses": _responses, "messages": _messages, "embeddings": _embeddings}
#: The deployment each endpoint names when it asks for a blocked one.
BLOCKED = {"chat": "sim-premium", "responses": "sim-premium", "messages": "sim-premium",
           "embeddings": "text-embedding-3-large"}


def _error(r: httpx.Response) -> dict:
    """The OpenAI error object, or Anthropic's whole error body (`{"type": "error", "error": ...}`)."""
    body = r.json()
    return body if body.get("type") == "error" else body["error"]


def _policies(tmp_path, **files: str):
    d = tmp_path / "policies"
    d.mkdir(exist_ok=True)
    for name, text in files.items():
        (d / f"{name}.yaml").write_text(text)
    return d


@pytest.fixture
def keyed(gateway_factory, tmp_path):
    policies = _policies(tmp_path, restricted=(
        "pipeline: restricted\nselection_schema:\n  strategy: balanced\n  constraints:\n"
        "    blocked_models: [sim-premium, text-embedding-3-large]\n"))
    keys = [{"name": "bound", "sha256": hash_key(KEY), "pipeline": "restricted"},
            {"name": "open", "sha256": hash_key(OPEN_KEY)}]
    return gateway_factory(policies=policies, embeddings=EMBEDDING_DEPLOYMENTS, catalog_extra={"keys": keys},
                           transport="openai", max_retries=0, stats_refresh_s=0.05)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("header", ["authorization", "x-api-key"])
def test_a_bound_keys_policy_blocks_a_named_deployment(keyed, endpoint, header):
    path, body = ENDPOINTS[endpoint](BLOCKED[endpoint])
    credential = f"Bearer {KEY}" if header == "authorization" else KEY
    r = loopback.post(keyed.base_url + path, json=body, headers={header: credential}, timeout=30)
    assert r.status_code == 403, r.text
    err = _error(r)
    if endpoint == "messages":
        assert err["type"] == "error" and err["error"]["type"] == "permission_error"
        assert "not allowed by the policy of pipeline 'restricted'" in err["error"]["message"]
    else:
        assert err["code"] == "model_not_allowed"
    # `auto` under the same key never lands on the blocked deployment; the open key may name it.
    path, body = ENDPOINTS[endpoint]("auto")
    r = loopback.post(keyed.base_url + path, json=body, headers={header: credential}, timeout=30)
    assert r.status_code == 200 and r.headers["x-gateway-model"] != BLOCKED[endpoint]
    path, body = ENDPOINTS[endpoint](BLOCKED[endpoint])
    r = loopback.post(keyed.base_url + path, json=body, headers={"authorization": f"Bearer {OPEN_KEY}"}, timeout=30)
    assert r.status_code == 200 and r.headers["x-gateway-model"] == BLOCKED[endpoint]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_no_key_is_401_in_the_endpoints_own_shape(keyed, endpoint):
    path, body = ENDPOINTS[endpoint]("auto")
    r = loopback.post(keyed.base_url + path, json=body, timeout=30)
    assert r.status_code == 401
    if endpoint == "messages":
        assert r.json()["type"] == "error" and r.json()["error"]["type"] == "authentication_error"
        assert "x-api-key" in r.json()["error"]["message"]
    else:
        assert r.json()["error"]["code"] == "invalid_api_key"


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_reject_budget_refuses_with_429(gateway_factory, tmp_path, endpoint):
    policies = _policies(tmp_path, default=(
        "pipeline: default\nselection_schema:\n  strategy: cost\n"
        "budget:\n  daily_usd: 0.000000000001\n  on_exceed: reject\n"))
    gw = gateway_factory(policies=policies, embeddings=EMBEDDING_DEPLOYMENTS)
    path, body = ENDPOINTS[endpoint]("auto")
    r = loopback.post(gw.base_url + path, json=body, timeout=30)
    assert r.status_code == 429, r.text
    assert int(r.headers["retry-after"]) > 0
    err = _error(r)
    if endpoint == "messages":
        assert err["error"]["type"] == "rate_limit_error" and "budget" in err["error"]["message"]
    else:
        assert err["code"] == "budget_exceeded"


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_pipeline_rate_limits_hold(gateway_factory, endpoint):
    gw = gateway_factory(embeddings=EMBEDDING_DEPLOYMENTS,
                         catalog_extra={"rate_limits": {"pipelines": {"default": {"rpm": 1}}}})
    path, body = ENDPOINTS[endpoint]("auto")
    assert loopback.post(gw.base_url + path, json=body, timeout=30).status_code == 200
    r = loopback.post(gw.base_url + path, json=body, timeout=30)
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0


def test_one_event_per_request_on_every_endpoint(gateway_factory):
    gw = gateway_factory(embeddings=EMBEDDING_DEPLOYMENTS, stats_refresh_s=0.05)
    sent = []
    for endpoint, make in ENDPOINTS.items():
        for model in ("auto", "no-such-model"):
            path, body = make(model)
            r = loopback.post(gw.base_url + path, json=body, timeout=30)
            sent.append((endpoint, r.headers["x-gateway-request-id"], r.status_code))
        path, body = make("auto")
        with loopback.stream("POST", gw.base_url + path, json={**body, "stream": True}, timeout=30) as r:
            r.read()
            sent.append((endpoint, r.headers["x-gateway-request-id"], r.status_code))
    deadline = time.monotonic() + 10
    while True:
        metrics = loopback.get(gw.base_url.removesuffix("/v1") + "/metrics").text
        recent = loopback.get(f"{gw.base_url}/gateway/stats").json()["recent_decisions"]
        if len(recent) >= 7 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    by_id = {}
    for d in recent:
        by_id.setdefault(d["request_id"], []).append(d)
    served = [(e, rid) for e, rid, status in sent if status == 200]
    assert len(served) == 7  # the embeddings stream is refused (400: no stream for embeddings)
    for endpoint, rid in served:
        expected = "chat.completions" if endpoint == "chat" else endpoint
        assert [d["endpoint"] for d in by_id.get(rid, [])] == [expected], (endpoint, rid)
    total = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                if line.startswith("gateway_requests_total{"))
    assert total == len(sent)
