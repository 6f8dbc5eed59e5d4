"""A hostile tenant with an ordinary key bound to one pipeline, against a shared gateway.

Two pipelines (team-a, team-b), a key bound to each, one master key, and the session simulator as
the spy upstream (it counts the requests each model received). Every test is one attack from
docs/security.md's threat model; its assertions are the secure outcome: a refusal with an OpenAI
error body, nothing forwarded, nothing leaked, no 5xx, and the gateway still serving.
"""

from __future__ import annotations

import concurrent.futures
import re
import time

import httpx
import pytest

from gateway.security.keys import hash_key
from tests.security.conftest import MASTER, auth, chat
from tests import loopback

KEY_A = "gw-team-a-Zq81mX0pLw7sV3Nc"
KEY_B = "gw-team-b-Hy52kR9tQe4uJ6Dd"

#: team-a may use only sim-premium and blocks the self-hosted provider; it has a refusing budget.
TEAM_A = """pipeline: team-a
selection_schema:
  strategy: cost
  constraints:
    allowed_models: [sim-premium, sim-mini]
    blocked_providers: [self-hosted]
    max_cost_per_request_usd: 0.01
budget:
  daily_usd: {budget}
  soft_limit_ratio: 1.0
  on_exceed: reject
"""
TEAM_B = """pipeline: team-b
selection_schema:
  strategy: balanced
"""


def _keys() -> list[dict]:
    return [
        {"name": "team-a", "sha256": hash_key(KEY_A), "pipeline": "team-a"},
        {"name": "team-b", "sha256": hash_key(KEY_B), "pipeline": "team-b"},
    ]


@pytest.fixture
def tenants(secure_factory, tmp_path):
    """`start(budget=..., **settings)` -> a gateway serving team-a and team-b."""

    def start(budget: float = 100.0, rate_limits: dict | None = None, **settings: object):
        policies = tmp_path / f"policies-{time.monotonic_ns()}"
        policies.mkdir()
        (policies / "team-a.yaml").write_text(TEAM_A.format(budget=budget))
        (policies / "team-b.yaml").write_text(TEAM_B)
        return secure_factory(keys=_keys(), rate_limits=rate_limits, policies=policies, **settings)

    return start


def _requests(simulator) -> dict[str, int]:
    return {name: s.requests for name, s in simulator.state.stats.items()}


def _forwarded(simulator, before: dict[str, int]) -> dict[str, int]:
    now = _requests(simulator)
    return {k: now[k] - before.get(k, 0) for k in now if now[k] != before.get(k, 0)}


def _error(resp: httpx.Response, status: int, code: str | None = None) -> dict:
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    if code is not None:
        assert err["code"] == code, err
    assert resp.headers.get("x-gateway-request-id", "").startswith("req_")
    return err


def _post(gw, key: str, body: dict, path: str = "/chat/completions", **headers: str) -> httpx.Response:
    if isinstance(body, _Raw):
        headers = {**headers, "content-type": "application/json"}
        return loopback.post(gw.base_url + path, content=body.raw, headers={**auth(key), **headers}, timeout=30)
    return loopback.post(gw.base_url + path, json=body, headers={**auth(key), **headers}, timeout=30)


# -- policies hold for a named deployment ------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "content", "rule"),
    [
        ("sim-tiny", "hello", "provider: self-hosted is blocked"),  # blocked provider (and not allowed)
        ("sim-premium", "word " * 10_000, "cost: expected"),  # ~12,500 prompt tokens: over the $0.01 cap
    ],
)
def test_a_named_deployment_obeys_the_callers_policy(tenants, simulator, model, content, rule):
    gw = tenants()
    body = {**chat(content), "model": model}
    before = _requests(simulator)
    err = _error(_post(gw, KEY_A, body), 403, "model_not_allowed")
    assert "team-a" in err["message"] and rule in err["message"] and err["param"] == "model"
    assert _forwarded(simulator, before) == {}
    explain = _post(gw, KEY_A, body, "/selection/explain").json()
    assert explain["rejected"][0]["model"] == model and any(rule in r for r in explain["rejected"][0]["reasons"])
    # The same deployment is fine for a tenant whose policy allows it.
    assert _post(gw, KEY_B, {**chat(), "model": model}).status_code == 200


def test_a_named_deployment_must_have_what_the_request_needs(tenants, simulator):
    gw = tenants()
    before = _requests(simulator)
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    err = _error(_post(gw, KEY_B, {**chat(), "model": "sim-tiny", "tools": tools}), 422, "no_feasible_model")
    assert "capability: missing tools" in err["message"]
    assert _forwarded(simulator, before) == {}


# -- budgets hold on every path and under concurrency --------------------------------------------------


def test_a_named_deployment_is_refused_over_a_reject_budget(tenants, simulator):
    gw = tenants(budget=0.0005)
    served = 0
    while served < 50:
        resp = _post(gw, KEY_A, {**chat(), "model": "sim-premium", "max_tokens": 12})
        if resp.status_code != 200:
            break
        served += 1
    err = _error(resp, 429, "budget_exceeded")
    assert "team-a" in err["message"] and int(resp.headers["retry-after"]) >= 1
    before = _requests(simulator)
    for body in ({**chat(), "model": "sim-premium", "max_tokens": 12}, {**chat(), "max_tokens": 12}):
        _error(_post(gw, KEY_A, body), 429, "budget_exceeded")
    assert _forwarded(simulator, before) == {}


def test_a_request_refused_by_its_budget_uses_no_rate_limit(tenants, simulator):
    # The rate limit is charged before the budget's hold; a refusal by the budget takes it back, so
    # a tenant over budget does not also use up its pipeline's requests and tokens per minute (a
    # key's own requests per minute would count it, as every refusal: test_ratelimit.py).
    gw = tenants(budget=0.0001, rate_limits={"pipelines": {"team-a": {"rpm": 3, "tpm": 100_000}}})
    for _ in range(5):
        _error(_post(gw, KEY_A, {**chat(), "max_tokens": 12}), 429, "budget_exceeded")
    limiter = gw.app.state.rate_limiter
    counts = gw.call(lambda: {k: limiter._count(k) for k in {*limiter._known, *limiter._pending}})
    assert counts and not any(counts.values()), counts


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_concurrent_requests_cannot_overspend_a_budget(tenants, request, store):
    budget = 0.002  # about 14 requests of 12 output tokens on sim-premium, reserved at 40 tokens each
    settings = {}
    if store == "redis":  # a private server: spend keys of other tests must not count here
        settings = {"redis_url": request.getfixturevalue("redis_process").url, "stats_refresh_s": 0.05}
    gw = tenants(budget=budget, **settings)
    body = {**chat(), "model": "sim-premium", "max_tokens": 40}

    def one(_: int) -> int:
        return _post(gw, KEY_A, body).status_code

    with concurrent.futures.ThreadPoolExecutor(40) as pool:
        statuses = list(pool.map(one, range(40)))
    assert set(statuses) <= {200, 429} and statuses.count(200) >= 1 and statuses.count(429) >= 1
    deadline = time.monotonic() + 5
    while True:
        stats = loopback.get(gw.base_url + "/gateway/stats", headers=auth(MASTER)).json()
        spent = stats["budgets"]["team-a"]["day_usd"]
        if spent > 0 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert 0 < spent <= budget


# -- client faults are not deployment faults ---------------------------------------------------------


def _deep(levels: int) -> list:
    value: list = []
    for _ in range(levels):
        value = [value]
    return value


class _Raw(dict):
    """A body sent as these exact bytes: no JSON encoder writes 1,000 levels, but a parser reads them."""

    def __init__(self, raw: bytes) -> None:
        super().__init__()
        self.raw = raw


@pytest.mark.parametrize(
    "body",
    [
        {**chat(), "model": "sim-mini", "tools": [{"type": "function", "function": {"name": "f", "parameters": {"x": _deep(300)}}}]},
        _Raw(b'{"model":"sim-mini","messages":[{"role":"user","content":"x","extra":' + b"[" * 1000 + b"]" * 1000
             + b"}]}"),
        {**chat(), "model": "sim-mini", "messages": [{"role": "user", "content": [{"type": "file", "file": 5}]}]},
        {**chat(), "model": "sim-mini", "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": 1}}]}]},
    ],
    ids=["deep-tools", "deep-message", "file-part", "audio-part"],
)
@pytest.mark.parametrize("transport", ["openai", "litellm"])
def test_malformed_bodies_never_open_a_circuit(tenants, simulator, body, transport):
    gw = tenants(transport=transport)
    before = _requests(simulator)
    for _ in range(8):  # more than the circuit's failure threshold (5)
        _error(_post(gw, KEY_A, body), 400)
    assert _forwarded(simulator, before) == {}
    stats = loopback.get(gw.base_url + "/gateway/stats", headers=auth(MASTER)).json()
    assert stats["deployments"]["sim-mini"]["circuit"] == "closed"
    assert _post(gw, KEY_B, {**chat(), "model": "sim-mini"}).status_code == 200


# -- tenants do not see or steer each other -----------------------------------------------------------


def test_a_bound_key_sees_only_its_own_pipeline(tenants):
    gw = tenants()
    ids = {key: _post(gw, key, chat()).headers["x-gateway-request-id"] for key in (KEY_A, KEY_B)}
    seen_a = loopback.get(gw.base_url + "/gateway/stats", headers=auth(KEY_A)).json()
    assert {d["pipeline"] for d in seen_a["recent_decisions"]} == {"team-a"}
    assert ids[KEY_B] not in str(seen_a) and set(seen_a["budgets"]) <= {"team-a"}
    assert all("samples" not in d for d in seen_a["deployments"].values())
    for bucket in seen_a["series"]["buckets"]:
        assert set(bucket["pipelines"]) <= {"team-a"}
        assert all("cost_usd" not in m and "ok" not in m for m in bucket["models"].values())
    seen_master = loopback.get(gw.base_url + "/gateway/stats", headers=auth(MASTER)).json()
    assert {d["pipeline"] for d in seen_master["recent_decisions"]} >= {"team-a", "team-b"}


def test_a_key_can_score_only_its_own_requests(tenants):
    gw = tenants()
    theirs = _post(gw, KEY_B, chat()).headers["x-gateway-request-id"]
    _error(_post(gw, KEY_A, {"request_id": theirs, "score": 0}, "/feedback"), 404, "unknown_request")
    mine = _post(gw, KEY_A, chat()).headers["x-gateway-request-id"]
    assert _post(gw, KEY_A, {"request_id": mine, "score": 0}, "/feedback").status_code == 200
    # The owner can still score its request: the failed attempt did not consume it.
    assert _post(gw, KEY_B, {"request_id": theirs, "score": 1}, "/feedback").status_code == 200


def test_down_votes_do_not_move_another_tenants_ranking(tenants):
    gw = tenants(stats_refresh_s=0.05)

    def ranking(key: str) -> list[str]:
        resp = _post(gw, key, chat(), "/selection/explain", **{"X-Selection-Strategy": "performance"})
        return [c["model"] for c in resp.json()["ranked"]]

    before_b = ranking(KEY_B)
    top = before_b[0]
    for _ in range(60):  # cheap requests plus down-votes on the other tenant's favourite
        rid = _post(gw, KEY_A, {**chat(), "model": top, "max_tokens": 1}).headers["x-gateway-request-id"]
        assert _post(gw, KEY_A, {"request_id": rid, "score": 0}, "/feedback").status_code == 200
    deadline = time.monotonic() + 5
    while ranking(KEY_A)[0] == top and time.monotonic() < deadline:  # team-a's own view does learn
        time.sleep(0.05)
    assert ranking(KEY_A)[0] != top
    assert ranking(KEY_B) == before_b


def test_unknown_pipelines_are_limited_as_the_default_one(secure_factory, simulator):
    gw = secure_factory(rate_limits={"pipelines": {"default": {"rpm": 10}}})
    statuses = [
        _post(gw, MASTER, chat(), **{"X-Pipeline-Id": f"nonexistent-{i}"}).status_code for i in range(20)
    ]
    assert statuses.count(200) == 10 and statuses.count(429) == 10


# -- browsers cannot be made to act for the operator ---------------------------------------------------


def test_basic_credentials_only_reach_the_dashboard_and_its_reads(tenants):
    gw = tenants()
    basic = httpx.BasicAuth("ops", MASTER)
    assert loopback.get(gw.base_url + "/gateway/stats", auth=basic).status_code == 200
    assert loopback.get(gw.url + "/dashboard", auth=basic).status_code == 200
    for path, body in (("/chat/completions", chat()), ("/feedback", {"request_id": "x", "score": 1}),
                       ("/selection/explain", chat())):
        _error(loopback.post(gw.base_url + path, json=body, auth=basic), 401)
    _error(loopback.get(gw.base_url + "/models", auth=basic), 401)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_posts_must_be_json(tenants, simulator, content_type):
    gw = tenants()
    before = _requests(simulator)
    headers = {**auth(MASTER), **({"content-type": content_type} if content_type else {})}
    resp = loopback.post(gw.base_url + "/chat/completions", content=b'{"model":"auto","messages":[]}', headers=headers)
    _error(resp, 415, "unsupported_media_type")
    assert _forwarded(simulator, before) == {}


# -- small ones -----------------------------------------------------------------------------------------


def test_probes_answer_head_and_say_only_counts(tenants):
    gw = tenants()
    for path in ("/healthz", "/readyz"):
        assert httpx.head(gw.url + path).status_code == 200
    ready = loopback.get(gw.url + "/readyz").json()
    assert isinstance(ready["skipped"], int) and isinstance(ready["deployments"], int)


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("GET", "/v1/chat/completions", "POST"), ("PUT", "/v1/feedback", "POST"), ("DELETE", "/v1/models", "GET"),
])
def test_a_wrong_method_is_405_with_allow(tenants, method, path, allow):
    gw = tenants()
    resp = loopback.request(method, gw.url + path, headers=auth(MASTER))
    _error(resp, 405)
    assert allow in resp.headers["allow"]


# -- what a bound key reads about other tenants ---------------------------------------------------------


def test_metrics_answer_a_bound_key_with_a_403(tenants):
    """`/metrics` adds up every pipeline's requests, tokens, cost and budget: the operator's
    (unbound key, master key), never a tenant's."""
    gw = tenants()
    assert _post(gw, KEY_B, chat()).status_code == 200
    resp = loopback.get(gw.url + "/metrics", headers=auth(KEY_A))
    err = _error(resp, 403, "metrics_not_allowed")
    assert "team-b" not in resp.text and "gateway_" not in resp.text and "/v1/gateway/stats" in err["message"]
    head = loopback.head(gw.url + "/metrics", headers=auth(KEY_A))
    assert head.status_code == 403 and head.content == b""
    operator = loopback.get(gw.url + "/metrics", headers=auth(MASTER))
    assert operator.status_code == 200 and 'pipeline="team-b"' in operator.text


#: A count of requests or samples in a reason or note: live figures are global, so it adds up every
#: tenant's traffic.
_COUNTED = re.compile(r"\d[\d,]* (?:recent requests|scored requests|samples)")


def _explained(gw, key: str) -> list[str]:
    out = _post(gw, key, chat(), "/selection/explain").json()
    return ([r for c in out["ranked"] for r in c["reasons"]] + out["notes"]
            + [r for c in out["rejected"] for r in c["reasons"]])


def _decided(gw, key: str, request_id: str) -> list[str]:
    deadline = time.monotonic() + 10  # with Redis, the fleet's history is about 2 s behind
    while True:
        stats = loopback.get(gw.base_url + "/gateway/stats", headers=auth(key)).json()
        found = [d for d in stats["recent_decisions"] if d["request_id"] == request_id]
        if found or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    (d,) = found
    return d["reasons"] + d["notes"] + [r for reasons in d["rejected"].values() for r in reasons]


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_reasons_carry_no_traffic_counts_for_a_bound_key(tenants, request, store):
    settings = {"redis_url": request.getfixturevalue("redis_process").url} if store == "redis" else {}
    gw = tenants(stats_refresh_s=0.05, **settings)
    for _ in range(6):  # the other tenant's traffic, on a model team-a ranks
        assert _post(gw, KEY_B, {**chat(), "model": "sim-mini", "max_tokens": 5}).status_code == 200
    deadline = time.monotonic() + 5
    while not any(_COUNTED.search(r) for r in _explained(gw, MASTER)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert any(_COUNTED.search(r) for r in _explained(gw, MASTER))  # the operator's view keeps them
    seen = _explained(gw, KEY_A)
    assert seen and not [r for r in seen if _COUNTED.search(r)]
    assert any(r.startswith("reliability:") and "(measured)" in r for r in seen)
    # Its own recent decisions: the same reasons, the same rule.
    resp = _post(gw, KEY_A, chat())
    assert resp.status_code == 200 and not _COUNTED.search(resp.headers["x-gateway-decision"])
    rid = resp.headers["x-gateway-request-id"]
    assert any(_COUNTED.search(r) for r in _decided(gw, MASTER, rid))
    assert not [r for r in _decided(gw, KEY_A, rid) if _COUNTED.search(r)]


def test_a_bound_key_sees_only_its_own_policy_errors_and_no_path(tenants):
    gw = tenants(policy_reload_s=0.05)
    directory = gw.app.state.gateway.policies.directory
    (directory / "team-b.yaml").write_text(TEAM_B.replace("strategy: balanced", "strategy: balanced\n  bogus: 1"))

    def policy_error(key: str) -> str | None:
        return loopback.get(gw.base_url + "/gateway/stats", headers=auth(key)).json()["policy_error"]

    deadline = time.monotonic() + 5
    while policy_error(MASTER) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    operator, own, other = policy_error(MASTER), policy_error(KEY_B), policy_error(KEY_A)
    for text in (operator, own):  # file, line, column and message; the file named inside the directory
        assert text.startswith("team-b.yaml:") and "bogus" in text
    assert other is not None and "team-b" not in other and "bogus" not in other
    for text in (operator, own, other):
        assert str(directory) not in text and "/tmp" not in text and str(directory.parent) not in text
