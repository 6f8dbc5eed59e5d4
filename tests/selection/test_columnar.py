"""Ranking a large catalog on arrays (`_columnar`) gives exactly the ranking of the per-model loop.

Both engines below rank every catalog, whatever its size: one always on arrays, one never. The
rankings must be equal field for field (floats bit for bit), rejections and their reasons included.
"""

from __future__ import annotations

import sys
from types import MappingProxyType

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.selection import (
    STRATEGIES,
    Constraints,
    LiveStats,
    Priors,
    SelectionEngine,
    SelectionParams,
)
from gateway.selection._columnar import COLUMNAR_FROM
from gateway.selection._ranked import LazyTuple
from gateway.selection.frontier import FRONTIER, TARGET_SHARE, FrontierParams
from gateway.selection.scorers import CostScorer, QualityScorer

from ._factory import contexts, ctx, model, models
from .test_fast_paths import _constraints, _stats

_maybe = st.one_of
_priors = st.builds(
    Priors,
    output_tokens=st.floats(1, 4_000),
    error_rate=st.floats(0, 1),
    latency_weight=st.floats(0.1, 100),
    quality_weight=st.floats(1, 100),
    # A range of 1 or less leaves the log scores no span (everyone scores 1).
    cost_range=st.sampled_from((0.5, 1.0, 10.0, 1000.0)),
    latency_range=st.sampled_from((1.0, 10.0, 100.0)),
    cost_floor_usd=st.sampled_from((1e-9, 1e-6, 1e-3)),
    latency_floor_ms=st.sampled_from((1e-3, 1.0, 500.0)),
)
_weights = st.dictionaries(
    st.sampled_from(("cost", "quality", "latency", "reliability")), st.floats(0.01, 5), min_size=1
)


def _engines(priors: Priors | None = None) -> tuple[SelectionEngine, SelectionEngine]:
    return SelectionEngine(priors=priors, columnar_from=sys.maxsize), SelectionEngine(priors=priors, columnar_from=0)


def _same(loop, arrays) -> None:
    assert arrays.strategy == loop.strategy
    assert arrays.notes == loop.notes
    assert len(arrays.ranked) == len(loop.ranked)
    for a, b in zip(loop.ranked, arrays.ranked, strict=True):
        assert (b.model.name, b.total, b.scores, b.expected_cost_usd, b.expected_latency_ms) == (
            a.model.name, a.total, a.scores, a.expected_cost_usd, a.expected_latency_ms
        )
        assert all(type(v) is float for v in (b.total, *b.scores.values(), b.expected_cost_usd, b.expected_latency_ms))
        assert b.reasons == a.reasons
    assert arrays.ranked == loop.ranked
    assert [(r.model, r.reasons) for r in arrays.rejected] == [(r.model, r.reasons) for r in loop.rejected]


@settings(max_examples=200, deadline=None)
@given(
    catalog=models(min_size=1, max_size=30),
    data=st.data(),
    contexts_=st.lists(contexts, min_size=1, max_size=3),
    strategy=st.sampled_from((*STRATEGIES, FRONTIER, TARGET_SHARE)),
    weights=_weights,
    limits=_constraints,
    priors=_maybe(st.none(), _priors),
    detail=st.sampled_from((0, 3, None)),
)
def test_arrays_rank_exactly_as_the_loop(catalog, data, contexts_, strategy, weights, limits, priors, detail):
    names = [m.name for m in catalog]
    chosen = data.draw(st.lists(st.sampled_from(names), unique=True))
    live = MappingProxyType({n: data.draw(_stats) for n in chosen})
    # Experts: some feasible, some rejected, some not in the catalog, repeats included.
    preferred = tuple(data.draw(st.lists(st.sampled_from([*names, "absent"]), max_size=4)))
    frontier = None
    if strategy in (FRONTIER, TARGET_SHARE):  # quality targets and the learned operating point
        frontier = data.draw(st.builds(
            FrontierParams,
            lam=st.floats(0, 50), cost_scale=st.sampled_from((0.0, 1e-4, 1.0)),
            costs=st.none() | st.dictionaries(st.sampled_from([*names, "absent"]), st.floats(0, 1e-2)),
            kind=st.sampled_from(("quality", "cost")), share=st.floats(0, 1.5), demote_best=st.booleans(),
        ))
    params = SelectionParams(
        strategy=strategy, weights=MappingProxyType(weights if strategy == "custom" else {}), constraints=limits,
        preferred=preferred, preferred_reason="expert for the test" if preferred else None, frontier=frontier,
    )
    loop, arrays = _engines(priors)
    # Several requests over the same catalog and stats: the per-snapshot and per-view arrays are reused.
    for c in contexts_:
        _same(loop.rank(c, catalog, params, live, detail=detail), arrays.rank(c, catalog, params, live, detail=detail))


def test_new_stats_objects_are_picked_up():
    catalog = [model(f"m{i:03d}", input_cost_per_token=1e-6 * (1 + i % 7), quality=0.5 + (i % 5) / 10)
               for i in range(COLUMNAR_FROM + 5)]
    params = SelectionParams(strategy="balanced")
    loop, arrays = _engines()
    c = ctx()
    first = MappingProxyType({"m003": LiveStats(samples=50, latency_ms=200.0, error_rate=0.0)})
    _same(loop.rank(c, catalog, params, first), arrays.rank(c, catalog, params, first))
    # A refresh replaces the stats objects: m003 is now slow and failing, m004 fast.
    second = MappingProxyType({
        "m003": LiveStats(samples=50, latency_ms=90_000.0, error_rate=0.9),
        "m004": LiveStats(samples=50, latency_ms=5.0, error_rate=0.0),
    })
    before = arrays.rank(c, catalog, params, first).ranked
    after = arrays.rank(c, catalog, params, second)
    _same(loop.rank(c, catalog, params, second), after)
    assert [x.model.name for x in before] != [x.model.name for x in after.ranked]


def test_a_large_catalog_takes_the_arrays_and_reads_rejections_lazily():
    catalog = [model(f"m{i:03d}", supports_tools=i % 2 == 0) for i in range(COLUMNAR_FROM)]
    ranking = SelectionEngine().rank(
        ctx(required_capabilities=frozenset({"tools"})), catalog, SelectionParams(strategy="cost")
    )
    assert type(ranking.rejected) is LazyTuple
    assert len(ranking.rejected) == COLUMNAR_FROM // 2
    assert ranking.rejected[0].model == "m001"
    assert ranking.rejected == tuple(ranking.rejected)
    assert "tools" in "; ".join(ranking.rejected[-1].reasons)


def test_other_scorers_take_the_loop():
    catalog = [model(f"m{i:03d}") for i in range(COLUMNAR_FROM)]
    custom_scorers = SelectionEngine(scorers=(CostScorer(), QualityScorer(), _Constant()))
    assert type(custom_scorers.rank(ctx(), catalog, SelectionParams(strategy="balanced")).rejected) is tuple


def test_experts_lead_on_the_arrays_and_turned_away_ones_say_why():
    catalog = [model(f"m{i:03d}", supports_tools=i != 7) for i in range(COLUMNAR_FROM)]
    experts = SelectionParams(strategy="cost", preferred=("m005", "m007", "nope", "m003"), preferred_reason="tests")
    loop, arrays = _engines()
    c = ctx(required_capabilities=frozenset({"tools"}))
    ranking = arrays.rank(c, catalog, experts)
    _same(loop.rank(c, catalog, experts), ranking)
    assert type(ranking.rejected) is LazyTuple
    assert [x.model.name for x in ranking.ranked[:2]] == ["m005", "m003"]
    assert ranking.ranked[0].reasons[0] == "preferred: tests"
    assert any(n.startswith("expert m007 unavailable: capability: missing tools") for n in ranking.notes)
    assert any(n.startswith("expert nope unavailable: not in catalog") for n in ranking.notes)


class _Constant:
    name = "constant"

    def score(self, snap):
        return [0.5] * len(snap.estimates)

    def explain(self, snap, i):
        return "constant"


def test_constraints_reject_on_arrays_as_in_the_loop():
    catalog = [
        model(f"m{i:03d}", context_window=8_192 if i % 3 == 0 else 128_000, max_output_tokens=2_048 + i,
              quality=0.3 + (i % 7) / 10, input_cost_per_token=1e-7 * (i + 1))
        for i in range(COLUMNAR_FROM + 20)
    ]
    limits = Constraints(min_quality=0.5, max_cost_per_request_usd=0.01, max_latency_ms=40_000)
    params = SelectionParams(strategy="performance", constraints=limits)
    loop, arrays = _engines()
    for c in (ctx(input_tokens=7_000, max_output_tokens=2_100), ctx(max_output_tokens=None), ctx(max_output_tokens=3)):
        _same(loop.rank(c, catalog, params), arrays.rank(c, catalog, params))


def test_two_stats_views_in_turn_each_get_their_own_figures():
    # Pipelines with scoped feedback rank the same catalog with stats views of their own, in turn
    # (and the explain endpoint may rank on another thread): every call is checked against its
    # own stats, not against whichever the catalog saw last.
    catalog = [model(f"m{i:03d}", input_cost_per_token=1e-6 * (1 + i % 5)) for i in range(COLUMNAR_FROM)]
    views = [
        MappingProxyType({"m001": LiveStats(samples=80, latency_ms=9_000.0, error_rate=0.5)}),
        MappingProxyType({"m002": LiveStats(samples=80, latency_ms=30.0, error_rate=0.0)}),
    ]
    params = SelectionParams(strategy="balanced")
    loop, arrays = _engines()
    c = ctx()
    for live in (*views, *views, views[1], views[0]):
        _same(loop.rank(c, catalog, params, live), arrays.rank(c, catalog, params, live))
    # Each view's arrays were built once and kept; more views than the catalog keeps push out the oldest.
    prepared = arrays.prepare(catalog)
    assert len(prepared._columnar[1]) == 2 and len(prepared._typical) == 2
    for i in range(6):
        live = MappingProxyType({"m003": LiveStats(samples=10 + i, latency_ms=100.0)})
        _same(loop.rank(c, catalog, params, live), arrays.rank(c, catalog, params, live))
    assert len(prepared._columnar[1]) == 4 and len(prepared._typical) == 4


def test_an_engine_with_some_of_the_built_in_scorers_ranks_on_arrays_as_in_the_loop():
    catalog = [model(f"m{i:03d}", input_cost_per_token=1e-6 * (1 + i % 5), quality=0.5 + (i % 4) / 10)
               for i in range(COLUMNAR_FROM)]
    for scorers in ((QualityScorer(),), (CostScorer(),), (CostScorer(), QualityScorer())):
        loop = SelectionEngine(scorers, columnar_from=sys.maxsize)
        arrays = SelectionEngine(scorers, columnar_from=0)
        for strategy in ("cost", "performance"):
            params = SelectionParams(strategy=strategy)
            _same(loop.rank(ctx(), catalog, params), arrays.rank(ctx(), catalog, params))
