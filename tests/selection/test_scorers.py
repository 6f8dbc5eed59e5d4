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
    SelectionEngine,
    SelectionParams,
    Snapshot,
)
from gateway.selection._estimate import estimate, latency_line, shrink, typical

from ._factory import contexts, ctx, model, models

_PRIORS = Priors()


def _w(n: float) -> float:
    """A live figure's weight after ``n`` samples: the prior is worth a quarter sample."""
    return n / (n + 0.25)


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
        ({}, {"max_output_tokens": 800}, None, 512),  # a cap does not lengthen the answer
        ({}, {"max_output_tokens": 300}, None, 300),  # but cuts it
        ({}, {"max_output_tokens": None}, None, 512),  # documented default
        # Measured lengths blend geometrically, the prior worth a quarter sample: one sample
        # takes the estimate 80 % of the way in the log, 20 samples to within 2 %.
        ({}, {"max_output_tokens": None}, LiveStats(samples=1, output_tokens=128), 512 * 0.25**0.8),
        ({}, {"max_output_tokens": None}, LiveStats(samples=20, output_tokens=112),
         512 * (112 / 512) ** _w(20)),
        ({}, {"max_output_tokens": None}, LiveStats(samples=0, output_tokens=112), 512),  # faded
        ({}, {"max_output_tokens": None}, LiveStats(samples=3, output_tokens=0.0),
         512 * (1 / 512) ** _w(3)),  # no usage reported: counts as one token, not zero
        ({}, {"max_output_tokens": 300}, LiveStats(samples=20, output_tokens=112),
         512 * (112 / 512) ** _w(20)),  # measured under the cap: the cap changes nothing
        ({}, {"max_output_tokens": 100}, LiveStats(samples=20, output_tokens=112), 100),  # cut
        ({"max_output_tokens": 256}, {"max_output_tokens": None}, None, 256),
        ({"max_output_tokens": 256}, {"max_output_tokens": None},
         LiveStats(samples=50, output_tokens=4_000), 256),  # measured beyond the cap: capped
    ],
)
def test_expected_output_tokens(model_kw, ctx_kw, stats, expected_out):
    out = estimate(model(**model_kw), ctx(**ctx_kw), stats, _PRIORS).output_tokens
    assert out == pytest.approx(expected_out)


_TYPICAL_CASES = [
    # (id, [(samples, output_tokens, latency_ms) per deployment, or None], expected output, factor)
    ("nothing measured", [None, None], 512, 1.0),
    ("one deployment", [(20, 112.0, None), None], 512 * (112 / 512) ** _w(20), 1.0),
    ("weighted by samples", [(30, 100.0, None), (10, 300.0, None)],
     512 * (150 / 512) ** _w(40), 1.0),
    # Prior at 100 tokens: 500 ms + 100 / 50 tok/s = 2,500 ms; measured 4x faster everywhere.
    ("catalog 4x pessimistic", [(30, 100.0, 625.0), (10, 100.0, 625.0)],
     512 * (100 / 512) ** _w(40), 0.25 ** _w(40)),
    # Measured slower than the catalog: the unmeasured keep the benefit of the doubt.
    ("catalog optimistic", [(30, 100.0, 10_000.0), None], 512 * (100 / 512) ** _w(30), 1.0),
]


@pytest.mark.parametrize(("measured", "out", "factor"), [c[1:] for c in _TYPICAL_CASES],
                         ids=[c[0] for c in _TYPICAL_CASES])
def test_typical_pools_every_deployments_measurements(measured, out, factor):
    catalog = [model(f"m{i}", ttft_ms=500.0, tokens_per_s=50.0) for i in range(len(measured))]
    stats = [
        None if m is None else LiveStats(samples=m[0], output_tokens=m[1], latency_ms=m[2])
        for m in measured
    ]
    pool = typical(_PRIORS, zip(catalog, stats, strict=True))
    assert pool.output_tokens == pytest.approx(out)
    assert pool.latency_factor == pytest.approx(factor)


def test_unmeasured_deployments_expect_what_the_measured_ones_answer():
    # The engine pools the snapshot: `b` has no figures of its own but expects a's short answers
    # (and a's 4x faster than catalog speed), not 512 tokens at catalog speed.
    a, b = model("a", ttft_ms=500.0, tokens_per_s=50.0), model("b", ttft_ms=500.0, tokens_per_s=50.0)
    live = {"a": LiveStats(samples=1_000, output_tokens=100.0, latency_ms=625.0)}
    ranking = SelectionEngine().rank(ctx(max_output_tokens=None), [a, b], SelectionParams(), live)
    est = {c.model.name: c for c in ranking.ranked}
    assert est["b"].expected_latency_ms == pytest.approx(625.0, rel=0.02)
    assert est["b"].expected_cost_usd == pytest.approx(1_000 * 1e-6 + 100 * 2e-6, rel=0.02)


_COST_CASES = [
    # (prices as (in, out) per token, expected cost scores): 1 for the cheapest, minus
    # ln(cost / cheapest) / ln(1000), floored at 0
    ([(1e-6, 1e-6), (1e-6, 1e-6), (1e-6, 1e-6)], [1.0, 1.0, 1.0]),  # no spread
    ([(1e-7, 1e-7), (1e-6, 1e-6), (1e-5, 1e-5)], [1.0, 2 / 3, 1 / 3]),  # each 10x costs a third
    ([(0.0, 0.0), (1e-10, 1e-10), (1e-6, 1e-6)], [1.0, 1.0, 0.0]),  # under $1e-6 = free
    ([(1e-7, 1e-7), (2e-4, 2e-4)], [1.0, 0.0]),  # 2000x dearer: past the range, floored
    # Two candidates 5 % apart stay 5 % apart, not 1 and 0 as under min-max normalisation.
    ([(1e-6, 1e-6), (1.05e-6, 1.05e-6)], [1.0, 1 - math.log(1.05) / math.log(1000)]),
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


_LINE_CASES = [
    # (id, live stats, line (a, b)); the prior is 50 tok/s = 20 ms per token
    ("plain: prior slope through the mean", dict(samples=5, latency_ms=2_500.0, output_tokens=100.0),
     (500.0, 20.0)),
    ("streams: measured slope", dict(samples=5, stream_samples=10**12, latency_ms=1_100.0,
                                     output_tokens=100.0, tokens_per_s=100.0), (100.0, 10.0)),
    ("one stream: slope 80 % of the way in the log", dict(samples=5, stream_samples=1, latency_ms=2_000.0,
                                                          output_tokens=100.0, tokens_per_s=400.0),
     (2_000.0 - 100 * 20 * (2.5 / 20) ** 0.8, 20 * (2.5 / 20) ** 0.8)),
    ("intercept would be negative: all per token", dict(samples=5, latency_ms=1_000.0,
                                                        output_tokens=100.0), (0.0, 10.0)),
    ("no usage reported", dict(samples=5, latency_ms=1_000.0, output_tokens=0.0), (1_000.0, 20.0)),
    ("errors only", dict(samples=5, error_rate=1.0), None),
    ("faded", dict(samples=0, latency_ms=1_000.0, output_tokens=100.0), None),
]


@pytest.mark.parametrize(("stats", "expected"), [c[1:] for c in _LINE_CASES],
                         ids=[c[0] for c in _LINE_CASES])
def test_latency_line(stats, expected):
    line = latency_line(model(ttft_ms=500.0, tokens_per_s=50.0), LiveStats(**stats), _PRIORS)
    assert line == (None if expected is None else pytest.approx(expected))


_PRIOR_MS = 500 + 500 * 1000 / 50  # 500 ms TTFT, 50 tok/s, 500 tokens out (the request's cap)


@pytest.mark.parametrize(
    ("stats", "max_tokens", "expected_ms", "prior_ms"),
    [
        (None, 500, _PRIOR_MS, _PRIOR_MS),
        # Measured 2,500 ms at 500 tokens: one sample takes it 80 % of the way in the log, 20
        # samples to within 2 %.
        (LiveStats(samples=1, latency_ms=2_500.0, output_tokens=500.0), 500,
         _PRIOR_MS * (2_500 / _PRIOR_MS) ** 0.8, _PRIOR_MS),
        (LiveStats(samples=20, latency_ms=2_500.0, output_tokens=500.0), 500,
         _PRIOR_MS * (2_500 / _PRIOR_MS) ** _w(20), _PRIOR_MS),
        (LiveStats(samples=0, latency_ms=2_500.0, output_tokens=500.0), 500, _PRIOR_MS, _PRIOR_MS),
        (LiveStats(samples=20, ttft_ms=100.0, tokens_per_s=150.0), 500, _PRIOR_MS, _PRIOR_MS),
        # Measured 900 ms at 100 tokens (intercept 900 - 100 * 20 < 0, so 9 ms per token); a
        # request that cuts the answer to 50 tokens expects half of it.
        (LiveStats(samples=10**12, latency_ms=900.0, output_tokens=100.0), 50, 450.0, 1_500.0),
        (LiveStats(samples=10**12, latency_ms=900.0, output_tokens=100.0), 500, 900.0, 2_500.0),
    ],
)
def test_latency_estimate(stats, max_tokens, expected_ms, prior_ms):
    est = estimate(model(ttft_ms=500.0, tokens_per_s=50.0), ctx(max_output_tokens=max_tokens), stats, _PRIORS)
    assert est.latency_ms == pytest.approx(expected_ms)
    assert est.latency_prior_ms == pytest.approx(prior_ms)


def test_latency_scorer_is_log_scaled_relative_to_the_fastest():
    fast = model("fast", ttft_ms=0.0, tokens_per_s=500.0)  # 1,000 ms for 500 tokens
    mid = model("mid", ttft_ms=0.0, tokens_per_s=500 / 10**0.5)  # 3,162 ms: sqrt(10) slower
    slow = model("slow", ttft_ms=0.0, tokens_per_s=50.0)  # 10,000 ms: the range, 10x
    slower = model("slower", ttft_ms=0.0, tokens_per_s=5.0)  # 100,000 ms: floored
    snap = _snap([fast, mid, slow, slower])
    assert LatencyScorer().score(snap) == pytest.approx([1.0, 0.5, 0.0, 0.0])
    assert LatencyScorer().explain(snap, 1) == (
        "latency: 3,162 ms expected (prior, not measured) -> 0.50"
    )


def test_scores_of_two_candidates_keep_the_size_of_their_gap():
    # Min-max normalisation gave any two candidates 1 and 0, so a 5 % latency gap swung the whole
    # latency weight; relative to the fastest it costs ln(1.05) / ln(10) = 0.02.
    a = model("a", ttft_ms=0.0, tokens_per_s=100.0)
    b = model("b", ttft_ms=0.0, tokens_per_s=100 / 1.05)
    assert LatencyScorer().score(_snap([a, b])) == pytest.approx([1.0, 1 - math.log(1.05) / math.log(10)])
    # ...and the gap does not depend on who else is feasible (until the floor).
    c = model("c", ttft_ms=0.0, tokens_per_s=400.0)
    sa, sb, sc = LatencyScorer().score(_snap([a, b, c]))
    assert sc == 1.0 and sa - sb == pytest.approx(math.log(1.05) / math.log(10))


def test_explanations_show_measured_against_prior():
    m = model(ttft_ms=500.0, tokens_per_s=50.0)
    live = {"m": LiveStats(samples=48, latency_ms=395.0, output_tokens=30.0)}
    snap = _snap([m], ctx(max_output_tokens=None), live)
    est = snap.estimates[0]
    assert LatencyScorer().explain(snap, 0) == (
        f"latency: {est.latency_ms:,.0f} ms expected (measured {est.latency_live_ms:,.0f} ms over"
        f" 48 recent requests; prior {est.latency_prior_ms:,.0f} ms) -> 1.00"
    )
    assert CostScorer().explain(snap, 0).endswith(
        f"({est.output_tokens:,.0f} tokens out: measured 30 over 48 recent requests; prior 512) -> 1.00"
    )
    assert "(512 tokens out, prior)" in CostScorer().explain(_snap([m], ctx(max_output_tokens=None)), 0)
    assert "(500 tokens out: max_tokens; prior 512)" in CostScorer().explain(_snap([m]), 0)
    cut = _snap([m], ctx(max_output_tokens=20), live)
    assert "(20 tokens out: max_tokens; measured 30 over 48 recent requests; prior 512)" in (
        CostScorer().explain(cut, 0)
    )


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
