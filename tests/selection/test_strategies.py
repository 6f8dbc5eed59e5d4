from __future__ import annotations

from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.selection import (
    STRATEGIES,
    Constraints,
    HardConstraints,
    InvalidWeightsError,
    Priors,
    SelectionEngine,
    SelectionParams,
    SelectionParamsError,
    UnknownStrategyError,
)
from gateway.selection._estimate import estimate

from ._factory import constraints, contexts, ctx, live_for, model, models

ENGINE = SelectionEngine()

# cheap & weak, mid, dear & strong, and a same-price twin of "cheap" with better quality
_CATALOG = [
    model("cheap", input_cost_per_token=1e-7, output_cost_per_token=1e-7, quality=0.5,
          ttft_ms=200.0, tokens_per_s=200.0),
    model("twin", input_cost_per_token=1e-7, output_cost_per_token=1e-7, quality=0.6,
          ttft_ms=900.0, tokens_per_s=40.0),
    model("mid", input_cost_per_token=1e-6, output_cost_per_token=1e-6, quality=0.75,
          ttft_ms=400.0, tokens_per_s=80.0),
    model("dear", input_cost_per_token=1e-5, output_cost_per_token=1e-5, quality=0.9,
          ttft_ms=800.0, tokens_per_s=40.0),
    model("dear-fast", input_cost_per_token=2e-5, output_cost_per_token=2e-5, quality=0.9,
          ttft_ms=300.0, tokens_per_s=120.0),
]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (SelectionParams(strategy="cost"), ["twin", "cheap", "mid", "dear", "dear-fast"]),
        (
            SelectionParams(strategy="cost", constraints=Constraints(min_quality=0.7)),
            ["mid", "dear", "dear-fast"],
        ),
        (SelectionParams(strategy="performance"), ["dear-fast", "dear", "mid", "twin", "cheap"]),
        # Cost and latency are scored relative to the best over fixed ranges (1000x, 10x), not
        # stretched over the feasible spread, so dear (0.9 quality, 4.9x slower than cheap,
        # 100x its price) no longer scores 0 on latency and beats cheap (0.5 quality).
        (SelectionParams(strategy="balanced"), ["dear-fast", "mid", "dear", "cheap", "twin"]),
        (
            SelectionParams(strategy="custom", weights=MappingProxyType({"latency": 1.0})),
            ["cheap", "dear-fast", "mid", "dear", "twin"],
        ),
        (
            SelectionParams(strategy="custom", weights=MappingProxyType({"quality": 1, "cost": 0})),
            ["dear", "dear-fast", "mid", "twin", "cheap"],  # quality ties -> cheaper first
        ),
    ],
    ids=["cost", "cost-floor", "performance", "balanced", "custom-latency", "custom-quality"],
)
def test_strategy_order(params, expected):
    ranking = ENGINE.rank(ctx(), _CATALOG, params)
    assert [c.model.name for c in ranking.ranked] == expected
    assert ranking.strategy == params.strategy
    assert all(0.0 <= c.total <= 1.0 for c in ranking.ranked)


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        ({"cost": -1.0}, "non-negative"),
        ({"cost": 0.0, "quality": 0.0}, "all be zero"),
        ({}, "all be zero"),
        ({"vibes": 1.0}, "unknown scorer"),
        ({"cost": float("nan")}, "non-negative"),
        ({"cost": True}, "non-negative"),
    ],
)
def test_custom_weights_are_validated(weights, match):
    params = SelectionParams(strategy="custom", weights=MappingProxyType(weights))
    with pytest.raises(InvalidWeightsError, match=match):
        ENGINE.rank(ctx(), _CATALOG, params)


def test_unknown_strategy_lists_allowed_values():
    with pytest.raises(UnknownStrategyError) as info:
        ENGINE.rank(ctx(), _CATALOG, SelectionParams(strategy="yolo"))
    assert isinstance(info.value, SelectionParamsError) and isinstance(info.value, ValueError)
    assert info.value.allowed == STRATEGIES == ("cost", "performance", "balanced", "custom")
    assert "cost, performance, balanced, custom" in str(info.value)


# --- properties ------------------------------------------------------------------------------

_any_params = st.builds(
    SelectionParams,
    strategy=st.sampled_from(STRATEGIES),
    weights=st.just(MappingProxyType({"cost": 1.0, "quality": 2.0, "reliability": 0.5})),
    constraints=constraints,
)


@st.composite
def _scenarios(draw):
    catalog = draw(models(max_size=12))
    return catalog, draw(contexts), draw(_any_params), draw(live_for(catalog))


@settings(max_examples=80, deadline=None)
@given(_scenarios())
def test_no_strategy_returns_a_constraint_breaker(scenario):
    catalog, c, params, live = scenario
    ranking = ENGINE.rank(c, catalog, params, live)
    hard = HardConstraints.for_request(c, params.constraints)
    for cand in ranking.ranked:
        stats = live.get(cand.model.name)
        assert hard.violations(estimate(cand.model, c, stats, Priors()), stats) == ()
    assert len(ranking.ranked) + len(ranking.rejected) == len(catalog)
    assert all(r.reasons for r in ranking.rejected)


@settings(max_examples=80, deadline=None)
@given(_scenarios())
def test_cost_never_picks_dearer_than_a_feasible_cheaper_model(scenario):
    catalog, c, params, live = scenario
    params = SelectionParams("cost", constraints=params.constraints)
    ranked = ENGINE.rank(c, catalog, params, live).ranked
    for better, worse in zip(ranked, ranked[1:]):
        assert (better.expected_cost_usd, -better.scores["quality"], better.model.name) < (
            worse.expected_cost_usd, -worse.scores["quality"], worse.model.name
        )
    if ranked:
        assert ranked[0].expected_cost_usd == min(x.expected_cost_usd for x in ranked)


@settings(max_examples=80, deadline=None)
@given(_scenarios())
def test_performance_never_picks_lower_quality_than_a_feasible_model(scenario):
    catalog, c, params, live = scenario
    params = SelectionParams("performance", constraints=params.constraints)
    ranked = ENGINE.rank(c, catalog, params, live).ranked
    for better, worse in zip(ranked, ranked[1:]):
        assert (-better.scores["quality"], better.expected_latency_ms, better.model.name) < (
            -worse.scores["quality"], worse.expected_latency_ms, worse.model.name
        )
    if ranked:
        assert ranked[0].scores["quality"] == max(x.scores["quality"] for x in ranked)


@settings(max_examples=80, deadline=None)
@given(_scenarios(), st.randoms(use_true_random=False))
def test_ranking_is_invariant_to_catalog_order(scenario, rnd):
    catalog, c, params, live = scenario
    shuffled = list(catalog)
    rnd.shuffle(shuffled)
    assert ENGINE.rank(c, catalog, params, live) == ENGINE.rank(c, shuffled, params, live)
