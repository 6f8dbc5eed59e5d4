"""From a target (or none) to this request's params and explanation."""

from __future__ import annotations

from types import MappingProxyType, SimpleNamespace

import pytest

from gateway.learning import CalibrationTable, OutputLengths, QualityTarget, RouterModel, TargetPlanner
from gateway.policy.models import SelectionSchema, TargetSpec
from gateway.selection import ModelInfo, RequestContext, SelectionEngine, SelectionParams
from gateway.selection.frontier import FRONTIER, TARGET_SHARE

MODELS = (
    ModelInfo(name="vendor/flash", provider="p", litellm_model="f", input_cost_per_token=1e-7,
              output_cost_per_token=4e-7, quality=0.64),
    ModelInfo(name="vendor/pro", provider="p", litellm_model="p", input_cost_per_token=1.25e-6,
              output_cost_per_token=5e-6, quality=0.70),
)
TABLE = CalibrationTable.build("vendor/pro", 0.70, 6.7e-4, [10.0, 1.0, 0.3, 0.0], [0.92, 0.961, 0.99, 1.0],
                               [0.07, 0.31, 0.62, 1.0], [0.0, 0.28, 0.6, 1.0], knee_lam=1.0, prompts=5981)


def _router() -> RouterModel:
    lengths = OutputLengths()
    lengths.update("vendor/flash", "math", 300)
    lengths.update("vendor/pro", "math", 40)
    return RouterModel(lengths=lengths, calibration=TABLE)


def _ctx(**kw) -> RequestContext:
    base = dict(request_id="r1", input_tokens=200, domain="math",
                quality_estimates=MappingProxyType({"vendor/flash": 0.6, "vendor/pro": 0.72}))
    base.update(kw)
    return RequestContext(**base)


def _resolution(target: dict | None = None, override: bool = True):
    sel = SelectionSchema(target=TargetSpec(**target) if target else None, allow_header_override=override)
    return SimpleNamespace(policy=SimpleNamespace(selection_schema=sel))


PLANNER = TargetPlanner(MODELS)


def test_the_note_reads_like_the_issue():
    router = _router()
    target, _ = PLANNER.target({"x-quality-target": "0.95"}, _resolution())
    params, finish = PLANNER.apply(target, SelectionParams(), _ctx(), router, "r1")
    assert params.strategy == FRONTIER and params.frontier.lam == 1.0
    assert params.frontier.cost_scale == 6.7e-4
    # expected cost per model from input tokens and the router's output lengths for the domain
    assert params.frontier.costs["vendor/pro"] == pytest.approx(200 * 1.25e-6 + 40 * 5e-6)
    ranking = finish(SelectionEngine().rank(_ctx(), MODELS, params))
    assert "target 95% of pro's quality: expected 96.1% at 31% of its cost" in ranking.notes
    assert router.monitor._pending["r1"].chosen == ranking.winner.model.name  # remembered for feedback


def test_no_target_uses_the_learned_default():
    params, finish = PLANNER.apply(None, SelectionParams(), _ctx(), _router(), "r1")
    assert params.frontier.lam == TABLE.rows[TABLE.knee].lam
    notes = finish(SelectionEngine().rank(_ctx(), MODELS, params)).notes
    assert any(n.startswith("balanced: the learned default (knee") for n in notes)


@pytest.mark.parametrize(("spec", "lam"), [
    ({"quality_share": 0.99}, 0.3),
    ({"max_cost_share": 0.5}, 1.0),
    ({"max_strong_share": 0.1}, 10.0),
])
def test_policy_targets(spec, lam):
    target, _ = PLANNER.target({}, _resolution(spec))
    params, _ = PLANNER.apply(target, SelectionParams(), _ctx(), _router(), "r1")
    assert params.frontier.lam == lam


def test_header_beats_policy_unless_the_policy_forbids_overrides():
    assert PLANNER.target({"x-quality-target": "90%"}, _resolution({"quality_share": 0.99}))[0].value == 0.9
    target, note = PLANNER.target({"x-quality-target": "0.9"}, _resolution({"quality_share": 0.99}, override=False))
    assert target.value == 0.99 and "X-Quality-Target ignored" in note


def test_explicit_strategy_wins_over_a_target():
    target = QualityTarget("quality", 0.95, "header")
    params, finish = PLANNER.apply(target, SelectionParams(strategy="cost"), _ctx(), _router(), "r1")
    assert params.strategy == "cost"
    notes = finish(SelectionEngine().rank(_ctx(), MODELS, params)).notes
    assert any("not used: strategy 'cost'" in n for n in notes)


def test_without_a_table_the_priors_decide():
    target = QualityTarget("quality", 0.9, "header")
    ctx = _ctx(quality_estimates=None)
    params, finish = PLANNER.apply(target, SelectionParams(), ctx, None, "r1")
    assert params.strategy == TARGET_SHARE
    ranking = finish(SelectionEngine().rank(ctx, MODELS, params))
    assert ranking.winner.model.name == "vendor/flash"  # 0.64 >= 0.9 * 0.70
    assert any("catalog priors, no calibration table" in n and "flash at 91% of its quality" in n
               for n in ranking.notes)


def test_a_strong_share_cap_without_a_table_is_kept_per_request():
    target = QualityTarget("strong", 0.3, "policy")
    ctx = _ctx(quality_estimates=None)
    winners = []
    for k in range(400):
        params, _ = PLANNER.apply(target, SelectionParams(), ctx, None, f"req-{k}")
        winners.append(SelectionEngine().rank(ctx, MODELS, params).winner.model.name)
    share = winners.count("vendor/pro") / len(winners)
    assert 0.22 < share < 0.38
    again, _ = PLANNER.apply(target, SelectionParams(), ctx, None, "req-7")
    first, _ = PLANNER.apply(target, SelectionParams(), ctx, None, "req-7")
    assert again.frontier == first.frontier  # the same request id lands on the same side


def test_no_target_and_no_table_changes_nothing():
    params = SelectionParams()
    assert PLANNER.apply(None, params, _ctx(quality_estimates=None), None, "r1")[0] is params


def test_policy_target_needs_exactly_one_share_and_strategy_balanced():
    with pytest.raises(ValueError, match="exactly one"):
        TargetSpec(quality_share=0.9, max_cost_share=0.3)
    with pytest.raises(ValueError, match="exactly one"):
        TargetSpec()
    with pytest.raises(ValueError, match="applies to strategy 'balanced'"):
        SelectionSchema(strategy="cost", target=TargetSpec(quality_share=0.9))
    with pytest.raises(ValueError):
        TargetSpec(quality_share=1.2)
