"""One rule per question, whichever route or key asks: what a bound key reads in the dashboard's
history, which error shape a path gets, what `/v1/messages/count_tokens` refuses next to
`/v1/messages`, and what the docs say a chat or embeddings `metadata` gets.

Same gateways as tests/security/test_tenants.py (its `tenants` fixture: team-a may use only
sim-premium and sim-mini and blocks the self-hosted provider; team-b has no constraints).
"""

from __future__ import annotations

import time

import httpx
import pytest

from gateway import errors
from gateway.routes.messages import CountTokens, Messages
from tests.conftest import EMBEDDING_DEPLOYMENTS, ROOT
from tests.security import test_tenants
from tests.security.conftest import KEYS, MASTER, auth, chat
from tests.security.test_tenants import KEY_A, KEY_B
from tests import loopback

tenants = test_tenants.tenants  # the fixture: team-a and team-b, a key bound to each

HELLO = [{"role": "user", "content": "hello"}]


def _stats(gw, key: str) -> dict:
    return loopback.get(gw.base_url + "/gateway/stats", headers=auth(key), timeout=30).json()


def _series_models(stats: dict) -> set[str]:
    return {m for b in stats["series"]["buckets"] for m in b["models"]}


# -- /v1/gateway/stats: a bound key's history -----------------------------------------------------------


def test_a_bound_keys_history_shows_only_what_its_policy_could_select(tenants):
    gw = tenants()
    # team-b's traffic on a deployment team-a's policy blocks (provider self-hosted, not allowed).
    assert loopback.post(gw.base_url + "/chat/completions", json={**chat(), "model": "sim-tiny"},
                         headers=auth(KEY_B), timeout=30).status_code == 200
    deadline = time.monotonic() + 5
    while "sim-tiny" not in _series_models(_stats(gw, MASTER)) and time.monotonic() < deadline:
        time.sleep(0.05)
    operator = _stats(gw, MASTER)
    assert any(b["models"].get("sim-tiny", {}).get("ok") == 1 for b in operator["series"]["buckets"])
    assert "sim-tiny" in _series_models(_stats(gw, KEY_B))  # team-b's policy could select it
    # team-a: neither the model nor the time of traffic that could only be someone else's.
    assert _stats(gw, KEY_A)["series"]["buckets"] == []
    assert loopback.post(gw.base_url + "/chat/completions", json={**chat(), "model": "sim-mini"},
                         headers=auth(KEY_A), timeout=30).status_code == 200
    deadline = time.monotonic() + 5
    while "sim-mini" not in _series_models(seen := _stats(gw, KEY_A)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _series_models(seen) == {"sim-mini"}
    for bucket in seen["series"]["buckets"]:
        assert set(bucket["pipelines"]) == {"team-a"}
        assert all("ok" not in m and "cost_usd" not in m for m in bucket["models"].values())


# -- error shapes: Anthropic's only on the routes served in Anthropic's format ---------------------------


def test_anthropic_shape_is_exactly_the_messages_routes():
    assert errors.ANTHROPIC_PATHS == {Messages.path, CountTokens.path}
    assert errors.renderer_for("/v1/messages/batches") is errors.error_body


def _openai_error(resp: httpx.Response, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["code"] == code, err
    return err


@pytest.mark.parametrize("path", ["/v1/messages/batches", "/v1/messages/", "/v1/messages/count_tokens/x",
                                  "/v1/messagesx", "/v1/nope"])
def test_an_unknown_path_is_openai_shaped_with_or_without_a_key(secure_factory, path):
    gw = secure_factory()
    body = {"model": "auto", "max_tokens": 5, "messages": HELLO}
    _openai_error(loopback.post(gw.url + path, json=body, timeout=30), 401, "invalid_api_key")
    err = _openai_error(loopback.post(gw.url + path, json=body, headers=auth(MASTER), timeout=30), 404, "unknown_url")
    assert err["message"] == f"Unknown path {path}."


@pytest.mark.parametrize("path", [Messages.path, CountTokens.path])
def test_the_messages_routes_refuse_a_missing_key_in_anthropics_shape(secure_factory, path):
    gw = secure_factory()
    resp = loopback.post(gw.url + path, json={"model": "auto", "max_tokens": 5, "messages": HELLO}, timeout=30)
    assert resp.status_code == 401
    assert resp.json()["type"] == "error" and resp.json()["error"]["type"] == "authentication_error"


# -- /v1/messages/count_tokens resolves the model and the pipeline as /v1/messages does ------------------


def _both(gw, key: str, body: dict, **headers: str) -> tuple[httpx.Response, httpx.Response]:
    """(/v1/messages, /v1/messages/count_tokens) for the same body and headers."""
    headers = {**auth(key), **headers}
    call = loopback.post(gw.base_url + "/messages", json={**body, "max_tokens": 5}, headers=headers, timeout=30)
    count = loopback.post(gw.base_url + "/messages/count_tokens", json=body, headers=headers, timeout=30)
    return call, count


def _sent(simulator) -> dict[str, int]:
    return {name: s.requests for name, s in simulator.state.stats.items()}


@pytest.mark.parametrize(("model", "headers", "status", "kind", "words"), [
    ("auto", {"x-pipeline-id": "doesnotexist"}, 404, "not_found_error", "unknown pipeline 'doesnotexist'"),
    ("text-embedding-3-small", {}, 400, "invalid_request_error", "POST /v1/embeddings"),
    ("nope", {}, 404, "not_found_error", "The model 'nope' does not exist"),
    ("auto", {"x-selection-strategy": "fastest"}, 400, "invalid_request_error", "unknown strategy 'fastest'"),
])
def test_count_tokens_refuses_what_messages_refuses(secure_factory, simulator, model, headers, status, kind, words):
    gw = secure_factory(embeddings=EMBEDDING_DEPLOYMENTS, allow_unknown_pipeline=False)
    before = _sent(simulator)
    call, count = _both(gw, KEYS["alpha"], {"model": model, "messages": HELLO}, **headers)
    assert call.status_code == count.status_code == status, (call.text, count.text)
    assert count.json() == call.json()  # Anthropic's shape, the same type and message
    assert count.json()["type"] == "error" and count.json()["error"]["type"] == kind
    assert words in count.json()["error"]["message"]
    assert _sent(simulator) == before


def test_count_tokens_follows_allow_unknown_pipeline(secure_factory):
    gw = secure_factory(allow_unknown_pipeline=True)
    call, count = _both(gw, KEYS["alpha"], {"model": "auto", "messages": HELLO}, **{"x-pipeline-id": "doesnotexist"})
    assert call.status_code == count.status_code == 200, (call.text, count.text)
    assert count.json()["input_tokens"] > 0


def test_a_count_charges_no_rate_limit_and_no_budget(tenants, simulator):
    # A count forwards nothing and spends nothing: team-a's one request a minute and its budget
    # stay for the call that follows.
    gw = tenants(rate_limits={"pipelines": {"team-a": {"rpm": 1}}})
    before = _sent(simulator)
    for _ in range(5):
        count = loopback.post(gw.base_url + "/messages/count_tokens", json={"model": "auto", "messages": HELLO},
                              headers=auth(KEY_A), timeout=30)
        assert count.status_code == 200, count.text
    assert _sent(simulator) == before
    call, _ = _both(gw, KEY_A, {"model": "auto", "messages": HELLO})
    assert call.status_code == 200, call.text
    call, count = _both(gw, KEY_A, {"model": "auto", "messages": HELLO})
    assert call.status_code == 429 and count.status_code == 200
    # Over a refusing budget a call is refused and a count is not.
    gw = tenants(budget=1e-12)
    call, count = _both(gw, KEY_A, {"model": "auto", "messages": HELLO})
    assert call.status_code == 429 and "budget" in call.json()["error"]["message"]
    assert count.status_code == 200 and count.json()["input_tokens"] > 0


def test_a_count_needs_no_deployment_that_could_serve(tenants):
    # What only serving asks for is not asked of a count: a named deployment the policy blocks, or
    # a prompt over every window, still has a token count (the client needs it to shorten the prompt).
    gw = tenants()
    call, count = _both(gw, KEY_A, {"model": "sim-tiny", "messages": HELLO})
    assert call.status_code == 403 and count.status_code == 200
    long = [{"role": "user", "content": "word " * 600_000}]
    call, count = _both(gw, KEY_B, {"model": "auto", "messages": long})
    assert call.status_code == 422 and count.status_code == 200 and count.json()["input_tokens"] > 128_000


# -- `metadata`: what the docs say is what the routes do --------------------------------------------------


def test_metadata_is_served_on_chat_and_refused_on_embeddings_as_documented(secure_factory):
    gw = secure_factory(embeddings=EMBEDDING_DEPLOYMENTS)
    r = loopback.post(gw.base_url + "/chat/completions", json={**chat(), "model": "sim-mini", "metadata": {"a": "b"}},
                      headers=auth(MASTER), timeout=30)
    assert r.status_code == 200, r.text
    r = loopback.post(gw.base_url + "/embeddings", json={"model": "auto", "input": "x", "metadata": {"a": "b"}},
                      headers=auth(MASTER), timeout=30)
    err = r.json()["error"]
    assert r.status_code == 400 and err["param"] == "metadata"
    assert err["message"] == "Unrecognized request argument supplied: metadata"
    security = (ROOT / "docs" / "security.md").read_text()
    api = (ROOT / "docs" / "api.md").read_text()
    assert "refused as unrecognized" not in security
    assert "| `metadata` | openai-wire |" in api
    for doc in (security, api):  # each says what chat and embeddings do with it
        assert "`metadata` on `/v1/embeddings`" in doc
