"""The engine's fast paths agree exactly with the reference definitions they restate.

`PreparedCatalog.split` inlines `estimate` and `HardConstraints.admits`; strategies' `rank_all`
sorts like `rank_key`; `new_candidate` and `deferred_rejection` build the same objects as the
dataclass constructors, with some fields filled in on first read.
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.selection import (
    STRATEGIES,
    Candidate,
    Constraints,
    HardConstraints,
    LiveStats,
    Priors,
    Rejection,
    SelectionEngine,
    SelectionParams,
    Snapshot,
)
from gateway.selection._estimate import estimate, typical
from gateway.selection._prepared import PreparedCatalog
from gateway.selection.engine import MAX_PREPARED
from gateway.selection.strategies import resolve_strategy
from gateway.selection.types import deferred_rejection, new_candidate

from ._factory import contexts, ctx, model, models

ENGINE = SelectionEngine()
_maybe = st.one_of

# Every LiveStats field the estimate reads, including the rarely set ones and zero samples.
_stats = st.builds(
    LiveStats,
    samples=st.integers(0, 300),
    latency_ms=_maybe(st.none(), st.floats(1, 20_000)),
    ttft_ms=_maybe(st.none(), st.floats(10, 5_000)),
    tokens_per_s=_maybe(st.none(), st.floats(0, 500)),
    error_rate=_maybe(st.none(), st.floats(0, 1)),
    circuit_open=st.booleans(),
    output_tokens=_maybe(st.none(), st.floats(1, 30_000)),
    quality=_maybe(st.none(), st.floats(0, 1)),
    quality_samples=st.integers(0, 100),
    domain_quality=st.dictionaries(st.sampled_from(("sql", "code", "math")), st.floats(0, 1), max_size=2),
    domain_quality_samples=st.dictionaries(st.sampled_from(("sql", "code", "math")), st.floats(0, 80), max_size=3),
    stream_samples=st.integers(0, 300),
)

_names = st.frozensets(st.sampled_from(("m00", "m01", "m02", "m03", "other")), max_size=3)
_providers = st.frozensets(st.sampled_from(("openai", "anthropic", "sim")), max_size=2)
_constraints = st.builds(
    Constraints,
    min_quality=_maybe(st.none(), st.floats(0, 1)),
    max_cost_per_request_usd=_maybe(st.none(), st.floats(1e-6, 1.0)),
    max_latency_ms=_maybe(st.none(), st.floats(100, 60_000)),
    required_capabilities=st.frozensets(st.sampled_from(("tools", "vision", "json_schema"))),
    allowed_models=_maybe(st.none(), _names),
    blocked_models=_names,
    allowed_providers=_maybe(st.none(), _providers),
    blocked_providers=_providers,
)
_priors = st.builds(
    Priors,
    output_tokens=st.floats(1, 4_000),
    error_rate=st.floats(0, 1),
    latency_weight=st.floats(1, 100),
    output_weight=st.floats(1, 100),
    error_weight=st.floats(1, 100),
    quality_weight=st.floats(1, 100),
)


@st.composite
def _scenarios(draw):
    catalog = draw(models(max_size=12))
    live = {m.name: draw(_stats) for m in catalog if draw(st.booleans())}
    return catalog, draw(contexts), draw(_constraints), live, draw(_priors)


@settings(max_examples=150, deadline=None)
@given(_scenarios(), _stats)
def test_split_matches_estimate_admits_and_violations(scenario, fresh):
    catalog, c, limits_in, live, priors = scenario
    limits = HardConstraints.for_request(c, limits_in)
    prepared = PreparedCatalog(catalog)
    by_name = sorted(catalog, key=lambda m: m.name)
    # Twice: the second run reads the cached views, pool and stats blends; then changed stats.
    for stats_of in (live, live, {name: fresh for name in live}):
        feasible, rejected = prepared.split(c, limits, stats_of.get, priors)
        pool = typical(priors, [(m, stats_of.get(m.name)) for m in by_name])
        expected = [estimate(m, c, stats_of.get(m.name), priors, pool) for m in by_name]
        admitted = [e for e in expected if limits.admits(e, stats_of.get(e.model.name))]
        assert feasible == admitted  # same floats, not approximately
        assert [r.model for r in rejected] == [
            e.model.name for e in expected if not limits.admits(e, stats_of.get(e.model.name))
        ]
        for r in rejected:
            stats = stats_of.get(r.model)
            m = next(m for m in catalog if m.name == r.model)
            assert r.reasons == limits.violations(estimate(m, c, stats, priors, pool), stats) != ()


# Custom weights over one to four scorers: `Weighted` sums three and four in one pass, others per weight.
_WEIGHTS = [{"cost": 1.0}, {"quality": 2.0, "latency": 0.5}, {"cost": 1.0, "quality": 2.0, "latency": 0.5},
            {"cost": 0.3, "quality": 2.0, "latency": 0.7, "reliability": 0.1}]


@settings(max_examples=100, deadline=None)
@given(catalog=models(max_size=12), c=contexts, strategy=st.sampled_from(STRATEGIES),
       weights=st.sampled_from(_WEIGHTS))
def test_rank_all_orders_like_rank_key(catalog, c, strategy, weights):
    priors = Priors()
    ests = sorted((estimate(m, c, None, priors) for m in catalog), key=lambda e: e.model.name)
    snap = Snapshot.of(ests, priors.cost_floor_usd, priors.latency_floor_ms)
    names = ENGINE.scorer_names
    weights = MappingProxyType(weights)
    chosen = resolve_strategy(SelectionParams(strategy, weights=weights), names)
    columns = {s.name: s.score(snap) for s in ENGINE._scorers}
    totals, order = chosen.rank_all(snap, columns)
    rows = [
        chosen.rank_key(e, {n: columns[n][i] for n in names}) for i, e in enumerate(ests)
    ]
    assert list(totals) == [total for total, _ in rows]
    assert order == sorted(range(len(ests)), key=lambda i: rows[i][1])


def test_fast_candidate_is_an_ordinary_frozen_candidate():
    m = model("x")
    fast = new_candidate(m, 0.5, ("cost", "quality"), (0.25, 0.75), (), None, 0.01, 900.0, True)
    normal = Candidate(
        m, 0.5, MappingProxyType({"cost": 0.25, "quality": 0.75}), (), 0.01, 900.0, True
    )
    assert type(fast) is Candidate and fast == normal and repr(fast) == repr(normal)
    assert dict(fast.scores) == {"cost": 0.25, "quality": 0.75} and fast.scores is fast.scores
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.total = 1.0  # type: ignore[misc]
    assert dataclasses.replace(fast, total=0.9).total == 0.9
    assert dataclasses.is_dataclass(fast) and not fast.reasons
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        fast.nope  # type: ignore[attr-defined]  # noqa: B018


def test_candidate_reasons_are_formatted_once_on_first_read():
    calls = []

    def explain(lead):
        calls.append(lead)
        return (*lead, "cost: cheap")

    m = model("x")
    fast = new_candidate(m, 0.5, ("cost",), (1.0,), ("lead",), (explain, (("lead",),)), 0, 0, True)
    assert calls == []
    assert fast.reasons == ("lead", "cost: cheap") and fast.reasons is fast.reasons
    assert calls == [("lead",)]


def test_deferred_rejection_reads_like_an_eager_one():
    lazy = deferred_rejection("m", tuple, (["too big"],))
    eager = Rejection("m", ("too big",))
    assert lazy == eager and hash(lazy) == hash(eager) and repr(lazy) == repr(eager)
    with pytest.raises(dataclasses.FrozenInstanceError):
        lazy.model = "n"  # type: ignore[misc]


def test_rank_reasons_match_explain_of_the_snapshot():
    catalog = [model(f"m{i}", input_cost_per_token=10**-i) for i in range(4)]
    ranking = ENGINE.rank(ctx(), catalog, SelectionParams(), detail=2)
    assert [len(c.reasons) for c in ranking.ranked] == [4, 4, 0, 0]
    assert ranking.ranked[0].reasons[0].startswith("cost: $")


def test_prepared_catalog_is_reused_for_the_same_catalog_and_rebuilt_when_it_changes():
    engine = SelectionEngine()
    catalog = [model("a", quality=0.6), model("b", quality=0.8)]
    frozen = tuple(catalog)
    assert engine.prepare(frozen) is engine.prepare(frozen)
    prepared = engine.prepare(catalog)
    assert engine.prepare(catalog) is prepared and list(prepared) == catalog
    params = SelectionParams(strategy="performance")
    assert engine.rank(ctx(), prepared, params) == engine.rank(ctx(), catalog, params)
    catalog[1] = model("b", quality=0.5)  # same list object, new model
    assert engine.prepare(catalog) is not prepared
    assert engine.rank(ctx(), catalog, params).winner.model.name == "a"


def test_prepared_catalog_cache_is_bounded():
    engine = SelectionEngine()
    for _ in range(MAX_PREPARED * 3):
        engine.rank(ctx(), [model("a")], SelectionParams())
    assert len(engine._prepared) <= MAX_PREPARED


def test_new_live_stats_objects_are_picked_up():
    engine = SelectionEngine()
    catalog = (model("a"), model("b"))
    params = SelectionParams()
    assert engine.rank(ctx(), catalog, params, {}).winner is not None
    closed = {"a": LiveStats(samples=50, error_rate=0.0), "b": LiveStats(samples=50)}
    first = engine.rank(ctx(), catalog, params, closed)
    opened = {**closed, "a": LiveStats(samples=50, circuit_open=True)}
    second = engine.rank(ctx(), catalog, params, opened)
    assert first.winner.model.name == "a"
    assert [c.model.name for c in second.ranked] == ["b"]
    assert second == SelectionEngine().rank(ctx(), catalog, params, opened)
