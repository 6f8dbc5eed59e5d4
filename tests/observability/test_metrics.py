"""/metrics end to end: the exposition parses and its counters match the requests sent."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest

from tests.conftest import SIM_KEY
from tests.observability.conftest import label_values, parsed, scrape, total
from tests import loopback

_HELLO = [{"role": "user", "content": "hi"}]


def _post(url: str, body: dict, headers: dict | None = None) -> httpx.Response:
    return loopback.post(f"{url}/v1/chat/completions", json=body, headers=headers or {}, timeout=30)


def _stream(url: str, body: dict, headers: dict | None = None) -> tuple[int, dict | None]:
    usage = None
    with loopback.stream("POST", f"{url}/v1/chat/completions", json=body, headers=headers or {}, timeout=30) as r:
        for line in r.iter_lines():
            if line.startswith("data: {"):
                usage = json.loads(line[6:]).get("usage") or usage
        return r.status_code, usage


def test_counters_match_requests(gateway_factory, request_log):
    gw = gateway_factory()
    url = gw.url
    served: list[str] = []
    completion_tokens = 0
    header_cost = 0.0

    for _ in range(4):
        r = _post(url, {"model": "auto", "messages": _HELLO})
        assert r.status_code == 200
        served.append(r.headers["x-gateway-model"])
        completion_tokens += r.json()["usage"]["completion_tokens"]
        header_cost += float(r.headers["x-gateway-cost-usd"])
    for _ in range(2):
        status, usage = _stream(
            url, {"model": "auto", "messages": _HELLO, "stream": True, "stream_options": {"include_usage": True}},
            {"x-selection-strategy": "cost"},
        )
        assert status == 200 and usage
        completion_tokens += usage["completion_tokens"]
    # One failed attempt, then a retry on the same (pinned) deployment.
    key = uuid.uuid4().hex
    r = _post(url, {"model": "sim-mini", "messages": [{"role": "user", "content": f"[sim:fail_first=1;key={key}] hi"}]})
    assert r.status_code == 200
    completion_tokens += r.json()["usage"]["completion_tokens"]
    header_cost += float(r.headers["x-gateway-cost-usd"])
    # Refused before any decision: unknown pipeline (404) and a bad strategy header (400).
    assert _post(url, {"model": "auto", "messages": _HELLO}, {"x-pipeline-id": "made-up-" + key}).status_code == 404
    assert _post(url, {"model": "auto", "messages": _HELLO}, {"x-selection-strategy": "cheapest"}).status_code == 400

    m = scrape(url)
    assert total(m, "gateway_requests_total") == 9
    assert total(m, "gateway_requests_total", status="200") == 7
    assert total(m, "gateway_requests_total", status="404", pipeline="unknown", model="none") == 1
    assert total(m, "gateway_requests_total", status="400", pipeline="default", model="none") == 1
    assert total(m, "gateway_requests_total", strategy="cost", status="200") == 2
    assert total(m, "gateway_requests_total", strategy="pinned", model="sim-mini") == 1
    for name in set(served):
        assert total(m, "gateway_requests_total", model=name, strategy="balanced") == served.count(name)
    assert total(m, "gateway_selections_total") == 7
    assert total(m, "gateway_retries_total", model="sim-mini") == 1
    assert total(m, "gateway_upstream_failures_total", model="sim-mini", reason="server_error") == 1
    assert total(m, "gateway_fallbacks_total") == 0
    assert total(m, "gateway_tokens_total", kind="completion") == completion_tokens
    assert total(m, "gateway_request_latency_seconds_count") == 7
    assert total(m, "gateway_ttft_seconds_count") == 2
    assert total(m, "gateway_overhead_seconds_count", stream="false") == 5
    assert total(m, "gateway_overhead_seconds_count", stream="true") == 2
    stream_cost = sum(line["cost_usd"] for line in parsed(request_log) if line["stream"])
    assert total(m, "gateway_cost_usd_total") == pytest.approx(header_cost + stream_cost, rel=1e-6, abs=1e-12)
    # Bounded labels: catalog models (or "none") and nothing the client typed.
    assert label_values(m, "model") <= {"sim-premium", "sim-mini", "sim-tiny", "none"}
    assert label_values(m, "pipeline") <= {"default", "unknown"}
    text = loopback.get(f"{url}/metrics").text
    assert key not in text and SIM_KEY not in text


def test_fallback_and_total_failure(gateway_factory, request_log):
    gw = gateway_factory()
    key = uuid.uuid4().hex
    # The winner fails twice (attempt + one retry), then the next-ranked deployment answers.
    r = _post(gw.url, {"model": "auto", "messages": [{"role": "user", "content": f"[sim:fail_first=2;key={key}] hi"}]})
    assert r.status_code == 200
    line = parsed(request_log)[-1]
    winner, second = line["selected"], r.headers["x-gateway-model"]
    assert winner != second and [a["model"] for a in line["attempts"]] == [winner, winner]
    # Every deployment fails: 3 deployments x 2 attempts, then the last error (500).
    r = _post(gw.url, {"model": "auto", "messages": [{"role": "user", "content": "[sim:status=500] hi"}]})
    assert r.status_code == 500

    m = scrape(gw.url)
    assert total(m, "gateway_requests_total", model=second, status="200") == 1
    assert total(m, "gateway_requests_total", model="none", status="500") == 1
    assert total(m, "gateway_fallbacks_total", model=winner) >= 1
    assert total(m, "gateway_fallbacks_total") == 1 + 2
    assert total(m, "gateway_retries_total", model=winner) >= 1
    assert total(m, "gateway_retries_total") == 1 + 3
    assert total(m, "gateway_upstream_failures_total", reason="server_error") == 2 + 6
    failed = parsed(request_log)[-1]
    assert failed["status"] == 500 and failed["model"] is None and len(failed["attempts"]) == 6


def test_unknown_pipeline_fallback_is_labelled_default(gateway_factory):
    gw = gateway_factory(allow_unknown_pipeline=True)
    made_up = "client-typed-" + uuid.uuid4().hex
    assert _post(gw.url, {"model": "auto", "messages": _HELLO}, {"x-pipeline-id": made_up}).status_code == 200
    m = scrape(gw.url)
    assert total(m, "gateway_requests_total", pipeline="default", status="200") == 1
    assert made_up not in loopback.get(f"{gw.url}/metrics").text


def test_circuit_and_budget_gauges(gateway_factory, tmp_path):
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "team-a.yaml").write_text(
        "pipeline: team-a\nselection_schema:\n  strategy: cost\nbudget:\n  daily_usd: 1.0\n  monthly_usd: 10.0\n"
    )
    gw = gateway_factory(policies=policies, circuit_cooldown_s=60)
    assert _post(gw.url, {"model": "auto", "messages": _HELLO}, {"x-pipeline-id": "team-a"}).status_code == 200
    for _ in range(3):  # 2 attempts each: past the 5-consecutive-failures threshold
        _post(gw.url, {"model": "sim-tiny", "messages": [{"role": "user", "content": "[sim:status=500] hi"}]})
    deadline = time.monotonic() + 5
    while True:  # the stats snapshot refreshes in the background (every 0.25 s)
        m = scrape(gw.url)
        if total(m, "gateway_budget_spend_usd", pipeline="team-a", period="day") > 0 and total(
            m, "gateway_circuit_state", deployment="sim-tiny", state="open"
        ) == 1:
            break
        assert time.monotonic() < deadline, "gauges never caught up with the stats snapshot"
        time.sleep(0.1)
    for dep in ("sim-premium", "sim-mini", "sim-tiny"):
        assert total(m, "gateway_circuit_state", deployment=dep) == 1  # exactly one state is current
    # The breaker's own transition reached the counter (stats -> observer hook), once.
    assert total(m, "gateway_circuit_transitions_total", deployment="sim-tiny", state="open") == 1
    assert total(m, "gateway_circuit_transitions_total", deployment="sim-mini") == 0
    assert total(m, "gateway_circuit_state", deployment="sim-mini", state="closed") == 1
    assert total(m, "gateway_budget_limit_usd", pipeline="team-a", period="day") == 1.0
    assert total(m, "gateway_budget_limit_usd", pipeline="team-a", period="month") == 10.0
    ratio = total(m, "gateway_budget_used_ratio", pipeline="team-a", period="day")
    assert ratio == pytest.approx(total(m, "gateway_budget_spend_usd", pipeline="team-a", period="day") / 1.0)


def test_metrics_can_be_switched_off(gateway_factory):
    gw = gateway_factory(metrics_enabled=False, dashboard_enabled=False)
    assert loopback.get(f"{gw.url}/metrics").status_code == 404
    assert loopback.get(f"{gw.url}/dashboard").status_code == 404
