"""How `Observer` turns one request's tries into retries, fallbacks and failures (no HTTP)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.observability import Observer
from gateway.upstream.forwarder import Attempt

_MODELS = ("a", "b", "c")


def _observer(**settings: object) -> Observer:
    catalog = SimpleNamespace(deployments={n: None for n in _MODELS}, secrets=lambda: ("sk-test-secret-value",))
    return Observer(SimpleNamespace(log_requests=False, **settings), catalog)


def _decision(*ranked: str, pipeline: str = "default") -> SimpleNamespace:
    cands = tuple(SimpleNamespace(model=SimpleNamespace(name=n), total=0.5, reasons=("r",)) for n in ranked)
    return SimpleNamespace(
        ranking=SimpleNamespace(ranked=cands, rejected=()), strategy="balanced", strategy_source="default",
        budget_key=pipeline, notes=(), ctx=SimpleNamespace(request_id="req_1", domain=None, stream=False),
    )


def _samples(observer: Observer) -> dict[tuple[str, tuple], float]:
    out = {}
    for fam in text_string_to_metric_families(observer.render_metrics().decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _sum(samples: dict, name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, lab), v in samples.items() if n == name and want <= set(lab))


def _record(observer: Observer, decision, served, status, attempts) -> None:
    observer.on_request(decision, served=served, status=status, latency_ms=10.0, ttft_ms=None, usage=None,
                        cost_usd=0.0, attempts=attempts, overhead_ms=0.1, stream=False)


def test_retry_then_fallback():
    obs = _observer()
    _record(obs, _decision("a", "b"), "b", 200, [Attempt("a", "timeout", 5.0), Attempt("a", "rate_limit", 5.0)])
    m = _samples(obs)
    assert _sum(m, "gateway_retries_total", model="a") == 1
    assert _sum(m, "gateway_fallbacks_total", model="a") == 1
    assert _sum(m, "gateway_upstream_failures_total", model="a") == 2
    assert _sum(m, "gateway_requests_total", model="b", status="200") == 1
    assert _sum(m, "gateway_selections_total", model="a") == 1


def test_skipped_winner_counts_as_a_fallback():
    obs = _observer()
    _record(obs, _decision("a", "b"), "b", 200, [])  # "a" was skipped: its circuit was open
    m = _samples(obs)
    assert _sum(m, "gateway_fallbacks_total", model="a") == 1 and _sum(m, "gateway_retries_total") == 0


@pytest.mark.parametrize("listed", [True, False])
def test_stream_broken_after_first_chunk_is_one_failure(listed):
    obs = _observer()
    attempts = [Attempt("a", "server_error", 50.0)] if listed else []
    _record(obs, _decision("a", "b"), "a", 502, attempts)
    m = _samples(obs)
    assert _sum(m, "gateway_upstream_failures_total", model="a") == 1
    assert _sum(m, "gateway_retries_total") == 0 and _sum(m, "gateway_fallbacks_total") == 0
    assert _sum(m, "gateway_requests_total", model="a", status="502") == 1
    assert _sum(m, "gateway_request_latency_seconds_count") == 0  # only answered requests are timed
    bucket = obs.series.snapshot()["buckets"][-1]
    assert bucket["models"]["a"]["errors"] == 1 and bucket["models"]["a"]["ok"] == 0


def test_labels_stay_bounded():
    obs = _observer()
    # A raw header value in budget_key (no resolution) and a name outside the catalog.
    _record(obs, _decision("a", pipeline="anything-a-client-sent"), "zzz-not-in-catalog", 200, [])
    obs.on_refused("another-made-up-pipeline", 404)
    m = _samples(obs)
    assert {dict(lab).get("pipeline") for (_, lab) in m} - {None} <= {"default", "unknown"}
    assert {dict(lab).get("model") for (_, lab) in m} - {None} <= {*_MODELS, "none"}


def test_metrics_off_still_keeps_history():
    obs = _observer(metrics_enabled=False)
    _record(obs, _decision("a"), "a", 200, [])
    assert _sum(_samples(obs), "gateway_requests_total") == 0
    assert obs.series.snapshot()["buckets"][-1]["pipelines"] == {"default": {"a": 1}}


def _event(decision, served, status, attempts=(), *, usage=None, ttft_ms=None, stream=False):
    from gateway.core.events import RequestFinished

    return RequestFinished(
        "req_1", "chat.completions", status, decision.budget_key, decision=decision,
        served=SimpleNamespace(name=served) if served else None, latency_ms=12.5, ttft_ms=ttft_ms, usage=usage,
        cost_usd=2e-6 if usage else 0.0, attempts=tuple(attempts), overhead_ms=0.3, stream=stream,
    )


_SHAPES = [
    ("b", 200, [Attempt("a", "timeout", 5.0), Attempt("a", "rate_limit", 5.0)], {}),
    ("b", 200, [], {"usage": {"prompt_tokens": 3, "completion_tokens": 7}}),
    ("a", 200, [], {"usage": {"prompt_tokens": 3}, "ttft_ms": 4.0, "stream": True}),
    ("a", 502, [Attempt("a", "server_error", 50.0)], {}),
    ("a", 502, [], {"stream": True}),
    (None, 503, [Attempt("a", "timeout", 5.0), Attempt("b", "timeout", 5.0)], {}),
    ("zzz-not-in-catalog", 200, [], {"usage": {"completion_tokens": 2}}),
]


def test_on_finished_counts_what_on_request_counts():
    """`on_finished` takes its own path to the counters (no keyword arguments, children found once
    per kind of request); every kind must count exactly as `on_request` does, repeated too."""
    via_event, via_call = _observer(), _observer()
    for _ in range(2):
        for served, status, attempts, extra in _SHAPES:
            decision = _decision("a", "b")
            event = _event(decision, served, status, attempts, **extra)
            via_event.on_finished(event)
            via_call.on_request(
                decision, served=served, status=status, latency_ms=event.latency_ms, ttft_ms=event.ttft_ms,
                usage=event.usage, cost_usd=event.cost_usd, attempts=event.attempts, overhead_ms=event.overhead_ms,
                stream=event.stream,
            )
    m = {k: v for k, v in _samples(via_event).items() if not k[0].endswith("_created")}
    assert m == {k: v for k, v in _samples(via_call).items() if not k[0].endswith("_created")}
    assert _sum(m, "gateway_tokens_total", model="a", kind="prompt") == 6
    assert _sum(m, "gateway_tokens_total", model="b", kind="completion") == 14
    assert _sum(m, "gateway_ttft_seconds_count", model="a") == 2
    assert _sum(m, "gateway_overhead_seconds_count", stream="true") == 4
    assert _sum(m, "gateway_requests_total", model="none", status="200") == 2
    assert _sum(m, "gateway_upstream_failures_total") == 2 * 6
    strip = [{k: v for k, v in s.items() if k != "now"} for s in (via_event.series.snapshot(),
                                                                    via_call.series.snapshot())]
    assert strip[0] == strip[1]


def test_only_updated_children_are_listed():
    """A plain request lists no TTFT series, a request without usage no token series."""
    obs = _observer()
    _record(obs, _decision("a"), "a", 200, [])
    names = {name for name, _ in _samples(obs)}
    assert "gateway_request_latency_seconds_count" in names
    assert not {n for n in names if n.startswith(("gateway_ttft", "gateway_tokens", "gateway_cost"))}
