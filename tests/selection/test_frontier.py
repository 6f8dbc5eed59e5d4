"""Frontier operating points: quality - lam * cost, and the priors-only target share."""

from __future__ import annotations

from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.selection import InvalidWeightsError, Priors, SelectionEngine, SelectionParams, Snapshot
from gateway.selection._estimate import estimate
from gateway.selection.frontier import FRONTIER, TARGET_SHARE, FrontierParams
from gateway.selection.strategies import resolve_strategy

from ._factory import contexts, ctx, model, models

ENGINE = SelectionEngine()
# 1,000 tokens in + 500 out (ctx()): cheap $0.00015, mid $0.0015, dear $0.015
CATALOG = [
    model("cheap", input_cost_per_token=1e-7, output_cost_per_token=1e-7, quality=0.6),
    model("mid", input_cost_per_token=1e-6, output_cost_per_token=1e-6, quality=0.75),
    model("dear", input_cost_per_token=1e-5, output_cost_per_token=1e-5, quality=0.9),
]


def _order(params: SelectionParams, **ctx_kw) -> list[str]:
    return [c.model.name for c in ENGINE.rank(ctx(**ctx_kw), CATALOG, params).ranked]


@pytest.mark.parametrize(("lam", "scale", "expected"), [
    (0.0, 0.015, ["dear", "mid", "cheap"]),  # quality only
    # lam 0.1 per $0.015: dear 0.9 - 0.1 = 0.8, mid 0.75 - 0.01 = 0.74, cheap 0.6 - 0.001
    (0.1, 0.015, ["dear", "mid", "cheap"]),
    # lam 1: dear -0.1, mid 0.65, cheap 0.59
    (1.0, 0.015, ["mid", "cheap", "dear"]),
    # lam 20: mid 0.75 - 2 = -1.25, cheap 0.6 - 0.2 = 0.4
    (20.0, 0.015, ["cheap", "mid", "dear"]),
])
def test_frontier_trades_quality_for_dollars(lam, scale, expected):
    params = SelectionParams(strategy=FRONTIER, frontier=FrontierParams(lam, scale))
    assert _order(params) == expected


def test_frontier_uses_the_given_expected_costs():
    # The router model expects "dear" to answer in a few tokens: cheaper than "mid" here.
    costs = MappingProxyType({"cheap": 0.00015, "mid": 0.0015, "dear": 0.0012})
    params = SelectionParams(strategy=FRONTIER, frontier=FrontierParams(1.0, 0.015, costs))
    assert _order(params)[0] == "dear"


def test_frontier_sends_long_prompts_to_the_cheap_model():
    """Absolute dollars: the same operating point picks differently for a long prompt."""
    params = SelectionParams(strategy=FRONTIER, frontier=FrontierParams(3.0, 0.015))
    assert _order(params, input_tokens=100)[0] == "mid"
    assert _order(params, input_tokens=20_000)[0] == "cheap"


@pytest.mark.parametrize(("kind", "share", "demote", "expected"), [
    ("quality", 1.0, False, ["dear", "mid", "cheap"]),
    ("quality", 0.8, False, ["mid", "dear", "cheap"]),  # 0.75 >= 0.8 * 0.9 = 0.72: cheapest good enough
    ("quality", 0.6, False, ["cheap", "mid", "dear"]),  # 0.6 >= 0.54
    ("cost", 0.2, False, ["mid", "cheap", "dear"]),  # <= 0.2 x $0.015: the best of cheap and mid
    ("cost", 0.005, False, ["dear", "mid", "cheap"]),  # nothing that cheap: best quality first
    ("quality", 1.0, True, ["mid", "cheap", "dear"]),  # outside a traffic cap: the best goes last
])
def test_target_share_from_priors(kind, share, demote, expected):
    params = SelectionParams(strategy=TARGET_SHARE, frontier=FrontierParams(kind=kind, share=share, demote_best=demote))
    assert _order(params) == expected


@pytest.mark.parametrize("name", [FRONTIER, TARGET_SHARE])
def test_needs_an_operating_point(name):
    with pytest.raises(InvalidWeightsError, match="operating point"):
        ENGINE.rank(ctx(), CATALOG, SelectionParams(strategy=name))


@settings(max_examples=100, deadline=None)
@given(catalog=models(max_size=12), c=contexts, lam=st.floats(0.0, 100.0), scale=st.floats(1e-6, 1.0))
def test_frontier_rank_all_orders_like_rank_key(catalog, c, lam, scale):
    priors = Priors()
    ests = sorted((estimate(m, c, None, priors) for m in catalog), key=lambda e: e.model.name)
    snap = Snapshot.of(ests, priors.cost_floor_usd, priors.latency_floor_ms)
    chosen = resolve_strategy(SelectionParams(FRONTIER, frontier=FrontierParams(lam, scale)), ENGINE.scorer_names)
    totals, order = chosen.rank_all(snap, {})
    rows = [chosen.rank_key(e, {}) for e in ests]
    assert list(totals) == [total for total, _ in rows]
    assert order == sorted(range(len(ests)), key=lambda i: rows[i][1])
