from __future__ import annotations

import pytest

from gateway.selection import (
    CIRCUIT_OPEN,
    PINNED,
    Constraints,
    LiveStats,
    SelectionEngine,
    SelectionParams,
)

from ._factory import ctx, model

ENGINE = SelectionEngine()
_CATALOG = [
    model("gpt-4o-mini", input_cost_per_token=1.5e-7, output_cost_per_token=6e-7, quality=0.74),
    model("claude-3-5-sonnet", provider="anthropic", input_cost_per_token=3e-6,
          output_cost_per_token=1.5e-5, quality=0.9),
    model("gpt-4o", input_cost_per_token=2.5e-6, output_cost_per_token=1e-5, quality=0.88),
]


def _names(ranking):
    return [c.model.name for c in ranking.ranked]


@pytest.mark.parametrize(
    ("preferred", "live", "expected_front", "note"),
    [
        (("claude-3-5-sonnet",), {}, ["claude-3-5-sonnet"], None),
        (("gpt-4o", "claude-3-5-sonnet"), {}, ["gpt-4o", "claude-3-5-sonnet"], None),
        (
            ("claude-3-5-sonnet",),
            {"claude-3-5-sonnet": LiveStats(circuit_open=True)},
            ["gpt-4o-mini"],
            "expert claude-3-5-sonnet (preferred for forced tool 'run_sql') unavailable: "
            f"{CIRCUIT_OPEN}; using normal ranking",
        ),
        (
            ("o1-pro",),
            {},
            ["gpt-4o-mini"],
            "expert o1-pro (preferred for forced tool 'run_sql') unavailable: not in catalog; using normal ranking",
        ),
    ],
    ids=["one", "order-kept", "circuit-open", "unknown"],
)
def test_preferred_models(preferred, live, expected_front, note):
    params = SelectionParams(
        strategy="cost", preferred=preferred, preferred_reason=f"forced tool 'run_sql': experts {', '.join(preferred)}"
    )
    ranking = ENGINE.rank(ctx(forced_tool="run_sql"), _CATALOG, params, live)
    assert _names(ranking)[: len(expected_front)] == expected_front
    assert ranking.notes == ((note,) if note else ())
    winner = ranking.winner
    assert winner.preferred == (note is None)
    assert any(r.startswith("preferred: forced tool 'run_sql'") for r in winner.reasons) == (note is None)


def test_rest_keeps_strategy_order_behind_preferred():
    params = SelectionParams(strategy="cost", preferred=("claude-3-5-sonnet",))
    assert _names(ENGINE.rank(ctx(), _CATALOG, params)) == [
        "claude-3-5-sonnet", "gpt-4o-mini", "gpt-4o"
    ]


def test_preferred_blocked_by_constraint_is_noted_with_reason():
    params = SelectionParams(
        preferred=("claude-3-5-sonnet",),
        constraints=Constraints(blocked_providers=frozenset({"anthropic"})),
    )
    ranking = ENGINE.rank(ctx(), _CATALOG, params)
    assert ranking.notes == (
        "expert claude-3-5-sonnet unavailable: provider: anthropic is blocked; "
        "using normal ranking",
    )


def test_nothing_feasible():
    ranking = ENGINE.rank(ctx(input_tokens=10**6), _CATALOG, SelectionParams())
    assert ranking.winner is None and len(ranking.rejected) == 3
    assert ranking.notes == ("no feasible model: 3 rejected",)
    assert [r.model for r in ranking.rejected] == sorted(m.name for m in _CATALOG)


def test_empty_catalog():
    assert ENGINE.rank(ctx(), [], SelectionParams()).ranked == ()


@pytest.mark.parametrize(("detail", "with_reasons"), [(0, 0), (1, 1), (3, 3), (None, 3)])
def test_detail_limits_spelled_out_reasons(detail, with_reasons):
    ranking = ENGINE.rank(ctx(), _CATALOG, SelectionParams(), detail=detail)
    assert sum(bool(c.reasons) for c in ranking.ranked) == with_reasons
    assert all(len(c.scores) == 4 for c in ranking.ranked)


def test_candidate_carries_expectations():
    winner = ENGINE.rank(ctx(input_tokens=1_000, max_output_tokens=500), _CATALOG,
                         SelectionParams(strategy="cost")).winner
    assert winner.expected_cost_usd == pytest.approx(1_000 * 1.5e-7 + 500 * 6e-7)
    assert winner.expected_latency_ms == pytest.approx(500 + 500 * 1000 / 50)
    assert set(winner.scores) == {"cost", "quality", "latency", "reliability"}


def test_pinned_ranking_names_the_deployment():
    m = model("tiny")
    ranking = ENGINE.pinned_ranking(m, ctx())
    assert ranking.strategy == PINNED and ranking.winner.model is m
    assert ranking.rejected == () and ranking.notes == ()
    assert ranking.winner.reasons[0] == "pinned: request named deployment tiny"


@pytest.mark.parametrize(
    ("constraints", "context", "policy", "request_"),
    [
        (Constraints(), {}, (), ()),
        (Constraints(), {"input_tokens": 2_000},
         (), ("context: needs 2,500 tokens (2,000 in + 500 out) > window 2,048",)),
        (Constraints(blocked_models=frozenset({"tiny"})), {}, ("model: tiny is blocked",), ()),
        (Constraints(allowed_models=frozenset({"other"})), {}, ("model: tiny not in allowed models",), ()),
        (Constraints(blocked_providers=frozenset({"p"})), {}, ("provider: p is blocked",), ()),
        (Constraints(required_capabilities=frozenset({"vision"})), {}, ("capability: missing vision",), ()),
        (Constraints(), {"required_capabilities": frozenset({"vision"})}, (), ("capability: missing vision",)),
    ],
)
def test_check_pinned_splits_policy_rules_from_request_needs(constraints, context, policy, request_):
    m = model("tiny", context_window=2_048, provider="p", supports_vision=False)
    assert ENGINE.check_pinned(m, ctx(**context), constraints) == (policy, request_)


def test_engine_rejects_duplicate_scorer_names():
    from gateway.selection import CostScorer

    with pytest.raises(ValueError, match="unique"):
        SelectionEngine(scorers=(CostScorer(), CostScorer()))


def test_with_domain_is_replace_with_every_slot_kept():
    from dataclasses import fields, replace

    from gateway.selection.types import RequestContext, with_domain

    full = RequestContext(
        request_id="r", input_tokens=7, max_output_tokens=9, required_capabilities=frozenset({"tools"}),
        domain="code", pipeline="p", tool_names=("a",), forced_tool="a", last_tool_result="b", stream=True,
        pinned_model="m", seed=3, domain_source="header", quality_estimates={"m": 0.5},
        quality_explanations={"m": "why"},
    )
    new = with_domain(full, "math", "inferred")
    assert type(new) is RequestContext and new == replace(full, domain="math", domain_source="inferred")
    # compare=False fields too: every slot is the original's but the two changed
    changed = {"domain": "math", "domain_source": "inferred"}
    assert [getattr(new, f.name) for f in fields(RequestContext)] == [
        changed.get(f.name, getattr(full, f.name)) for f in fields(RequestContext)
    ]
    assert full.domain == "code"  # the original is untouched
