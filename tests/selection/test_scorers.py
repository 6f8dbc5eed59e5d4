from __future__ import annotations

import math

import pytest
from hypothesis import given, settings

from gateway.selection import (
    DEFAULT_SCORERS,
    CostScorer,
    LatencyScorer,
    LiveStats,
    Priors,
    QualityScorer,
    ReliabilityScorer,
    Snapshot,
)
from gateway.selection._estimate import estimate, shrink

from ._factory import contexts, ctx, model, models

_PRIORS = Priors()


def _snap(catalog, c=None, live=None):
    c = c or ctx()
    live = live or {}
    ests = [estimate(m, c, live.get(m.name), _PRIORS) for m in catalog]
    return Snapshot.of(ests, _PRIORS.cost_floor_usd, _PRIORS.latency_floor_ms)


@pytest.mark.parametrize(
    ("prior", "live", "n", "k", "expected"),
    [
        (100.0, None, 50, 20, 100.0),  # no live figure
        (100.0, 300.0, 0, 20, 100.0),  # no samples
        (100.0, 300.0, 20, 20, 200.0),  # n == k: equal say
        (100.0, 300.0, 180, 20, 280.0),  # w = 0.9
    ],
)
def test_shrink(prior, live, n, k, expected):
    assert shrink(prior, live, n, k) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("model_kw", "ctx_kw", "stats", "expected_out"),
    [
        ({}, {"max_output_tokens": 800}, None, 800),  # requested
        ({"max_output_tokens": 600}, {"max_output_tokens": 800}, None, 600),  # capped by model
        ({}, {"max_output_tokens": None}, None, 512),  # documented default
        ({}, {"max_output_tokens": None}, LiveStats(samples=20, output_tokens=112), 312),  # blended
        ({"max_output_tokens": 256}, {"max_output_tokens": None}, None, 256),
    ],
)
def test_expected_output_tokens(model_kw, ctx_kw, stats, expected_out):
    assert estimate(model(**model_kw), ctx(**ctx_kw), stats, _PRIORS).output_tokens == expected_out


_COST_CASES = [
    # (prices of three models as (in, out) per token, expected cost scores)
    ([(1e-6, 1e-6), (1e-6, 1e-6), (1e-6, 1e-6)], [1.0, 1.0, 1.0]),  # no spread
    ([(1e-7, 1e-7), (1e-6, 1e-6), (1e-5, 1e-5)], [1.0, 0.5, 0.0]),  # log-midpoint is 0.5
    ([(0.0, 0.0), (1e-10, 1e-10), (1e-6, 1e-6)], [1.0, 1.0, 0.0]),  # under $1e-6 = free
]


@pytest.mark.parametrize(("prices", "expected"), _COST_CASES)
def test_cost_scorer(prices, expected):
    catalog = [
        model(f"m{i}", input_cost_per_token=pin, output_cost_per_token=pout)
        for i, (pin, pout) in enumerate(prices)
    ]
    snap = _snap(catalog)
    assert CostScorer().score(snap) == pytest.approx(expected)
    assert CostScorer().explain(snap, 0).startswith("cost: $")


@pytest.mark.parametrize(
    ("domain", "quality", "domain_quality", "live", "expected"),
    [
        (None, 0.7, {"sql": 0.9}, None, 0.7),
        ("sql", 0.7, {"sql": 0.9}, None, 0.9),
        ("code", 0.7, {"sql": 0.9}, None, 0.7),  # unknown domain -> overall
        ("sql", 0.7, {"sql": 0.9}, LiveStats(quality=0.3, quality_samples=30), 0.6),  # learned
    ],
)
def test_quality_scorer(domain, quality, domain_quality, live, expected):
    m = model(quality=quality, domain_quality=domain_quality)
    snap = _snap([m], ctx(domain=domain), {"m": live} if live else None)
    assert QualityScorer().score(snap) == pytest.approx([expected])
    assert ("domain sql" in QualityScorer().explain(snap, 0)) == (domain == "sql")


@pytest.mark.parametrize(
    ("stats", "expected_ms"),
    [
        (None, 500 + 500 * 1000 / 50),  # priors: 500 ms TTFT, 50 tok/s, 500 tokens out
        (LiveStats(samples=20, ttft_ms=100.0, tokens_per_s=150.0), 300 + 500 * 1000 / 100),
        (LiveStats(samples=20, latency_ms=2_500.0), (10_500 + 2_500) / 2),  # only end-to-end
        (LiveStats(samples=0, ttft_ms=100.0), 10_500),  # no samples, priors win
    ],
)
def test_latency_estimate(stats, expected_ms):
    est = estimate(model(ttft_ms=500.0, tokens_per_s=50.0), ctx(), stats, _PRIORS)
    assert est.latency_ms == pytest.approx(expected_ms)


def test_latency_scorer_is_log_scaled():
    fast = model("fast", ttft_ms=0.0, tokens_per_s=500.0)  # 1,000 ms for 500 tokens
    mid = model("mid", ttft_ms=0.0, tokens_per_s=50.0)  # 10,000 ms
    slow = model("slow", ttft_ms=0.0, tokens_per_s=5.0)  # 100,000 ms
    snap = _snap([fast, mid, slow])
    assert LatencyScorer().score(snap) == pytest.approx([1.0, 0.5, 0.0])
    assert "10,000 ms" in LatencyScorer().explain(snap, 1)


@pytest.mark.parametrize(
    ("stats", "expected"),
    [
        (None, 0.99),  # 1% prior
        (LiveStats(samples=50, error_rate=0.21), 0.89),  # n == k: (0.01 + 0.21) / 2
        (LiveStats(samples=50, error_rate=None), 0.99),
    ],
)
def test_reliability_scorer(stats, expected):
    snap = _snap([model()], live={"m": stats} if stats else None)
    assert ReliabilityScorer().score(snap) == pytest.approx([expected])


def test_thousandfold_price_spread_scores_spread_sensibly():
    # 1000x between cheapest and dearest: log scale puts each 10x step a third of the way.
    catalog = [
        model(f"m{i}", input_cost_per_token=p, output_cost_per_token=p)
        for i, p in enumerate((5e-8, 1.5e-7, 5e-7, 5e-6, 1.5e-5, 5e-5))
    ]
    scores = CostScorer().score(_snap(catalog))
    assert scores[0] == 1.0 and scores[-1] == 0.0
    assert scores == sorted(scores, reverse=True)
    assert scores[2] == pytest.approx(2 / 3) and scores[3] == pytest.approx(1 / 3)
    # a linear scale would crush every model but the dearest near 1
    linear = [1 - (p - 5e-8) / (5e-5 - 5e-8) for p in (5e-8, 1.5e-7, 5e-7, 5e-6)]
    assert min(linear) > 0.9 and 0.2 < sum(scores) / len(scores) < 0.8


@settings(max_examples=100, deadline=None)
@given(catalog=models(), c=contexts)
def test_every_score_is_in_unit_interval(catalog, c):
    snap = _snap(catalog, c)
    for scorer in DEFAULT_SCORERS:
        values = scorer.score(snap)
        assert len(values) == len(catalog)
        assert all(0.0 <= v <= 1.0 and not math.isnan(v) for v in values), scorer.name


# -- where a candidate's quality comes from: learned estimate > domain posterior > overall ------------

_Q_MODEL = dict(quality=0.6, domain_quality={"code": 0.8})
_QUALITY_CASES = [
    # (id, domain, live stats, quality_estimates, expected quality, expected basis)
    ("overall prior", None, None, None, 0.6, "overall"),
    ("domain prior", "code", None, None, 0.8, "domain code"),
    ("overall posterior", None, dict(quality=0.2, quality_samples=30), None, 0.4, "overall"),
    ("domain posterior beats overall", "code",
     dict(quality=0.0, quality_samples=30, domain_quality={"code": 0.4}, domain_quality_samples={"code": 30.0}),
     None, 0.6, "domain code"),
    ("other domain's posterior ignored", "code",
     dict(quality=0.2, quality_samples=30, domain_quality={"math": 0.0}, domain_quality_samples={"math": 30.0}),
     None, 0.5, "domain code"),
    ("learned estimate wins", "code",
     dict(quality=0.0, quality_samples=30, domain_quality={"code": 0.0}, domain_quality_samples={"code": 30.0}),
     {"m": 0.93}, 0.93, "learned for this prompt"),
    ("estimate for another model only", None, None, {"other": 0.1}, 0.6, "overall"),
]


@pytest.mark.parametrize(("domain", "live", "estimates", "expected", "basis"),
                         [c[1:] for c in _QUALITY_CASES], ids=[c[0] for c in _QUALITY_CASES])
def test_quality_source_precedence(domain, live, estimates, expected, basis):
    from gateway.selection import LiveStats, RequestContext, SelectionEngine, SelectionParams

    m = model("m", **_Q_MODEL)
    c = RequestContext("q", 10, domain=domain, quality_estimates=estimates,
                       quality_explanations={"m": "+'sql' 0.12"} if estimates else None)
    stats = {"m": LiveStats(**live)} if live else None
    ranking = SelectionEngine().rank(c, [m], SelectionParams(strategy="performance"), stats)
    cand = ranking.winner
    assert cand.scores["quality"] == pytest.approx(expected)
    assert f"quality: {expected:.2f} ({basis})" in cand.reasons
    if estimates and "m" in estimates:
        assert cand.reasons[-1] == "quality estimate: +'sql' 0.12"
