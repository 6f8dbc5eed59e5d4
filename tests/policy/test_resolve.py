"""Precedence (header > pipeline > default) and expert triggers (forced > tool result > offered)."""

from __future__ import annotations

import textwrap

import pytest

from gateway.errors import InvalidRequestError, NotFoundError
from gateway.policy import (
    InvalidStrategyError,
    PolicySet,
    UnknownPipelineError,
    load_policy_text,
    resolve,
)
from gateway.selection.types import RequestContext

from .conftest import demo_catalog


def _policy(text: str):
    return load_policy_text(textwrap.dedent(text), models=demo_catalog())


DEFAULT = _policy(
    """
    pipeline: default
    selection_schema:
      strategy: balanced
      default_domain: general
      fallbacks: [gpt-4o-mini]
    """
)
PINNED = _policy(
    """
    pipeline: pinned
    selection_schema:
      strategy: cost
      allow_header_override: false
    """
)
CODE = _policy(
    """
    pipeline: code
    selection_schema:
      strategy: performance
      default_domain: code
      constraints: {required_capabilities: [tools]}
      exploration: {method: thompson, rate: 0.1, top_k: 2}
      fallbacks: [gpt-4o, claude-3-5-sonnet]
    budget: {daily_usd: 5, on_exceed: reject}
    experts:
      run_sql: [deepseek-coder, claude-3-5-sonnet]
      execute_code: [claude-3-5-sonnet, deepseek-coder, gpt-4o]
      search_docs:
        models: [claude-3-5-sonnet, gpt-4o-mini, claude-3-haiku]
        constraints: {max_cost_per_request_usd: 0.002}
      premium:
        models: [gpt-4o, claude-3-5-sonnet, deepseek-coder]
        constraints: {min_quality: 0.91, blocked_providers: [anthropic]}
    """
)


@pytest.fixture
def policy_set() -> PolicySet:
    return PolicySet(default=DEFAULT, pipelines={"pinned": PINNED, "code": CODE}, models=demo_catalog())


def ctx(**kw) -> RequestContext:
    kw.setdefault("input_tokens", 500)
    return RequestContext(request_id="r1", **kw)


# --- policy and strategy precedence -------------------------------------------------------------


def test_no_pipeline_uses_the_default_policy(policy_set):
    res = resolve(policy_set, None, None, ctx(), False)
    assert res.policy is DEFAULT and res.policy_name == "default"
    assert res.params.strategy == "balanced" and res.strategy_source == "default"
    assert res.domain == "general" and res.fallbacks == ("gpt-4o-mini",)


def test_pipeline_strategy_beats_default(policy_set):
    res = resolve(policy_set, "code", None, ctx(), False)
    assert res.policy is CODE and res.params.strategy == "performance" and res.strategy_source == "pipeline"
    assert res.params.constraints.required_capabilities == frozenset({"tools"})
    assert res.fallbacks == ("gpt-4o", "claude-3-5-sonnet")
    assert res.budget.daily_usd == 5 and res.budget.on_exceed == "reject"
    assert res.exploration.method == "thompson" and res.exploration.top_k == 2


def test_pipeline_id_defaults_to_ctx_pipeline(policy_set):
    assert resolve(policy_set, None, None, ctx(pipeline="code"), False).policy is CODE
    # An explicit argument wins over the context.
    assert resolve(policy_set, "pinned", None, ctx(pipeline="code"), False).policy is PINNED


def test_header_beats_pipeline_when_overrides_allowed(policy_set):
    res = resolve(policy_set, "code", " Cost ", ctx(), False)
    assert res.params.strategy == "cost" and res.strategy_source == "header"
    assert any("request header" in n for n in res.notes)


def test_header_beats_default_policy(policy_set):
    res = resolve(policy_set, None, "performance", ctx(), False)
    assert res.params.strategy == "performance" and res.strategy_source == "header"


def test_header_ignored_with_note_when_policy_forbids_overrides(policy_set):
    res = resolve(policy_set, "pinned", "performance", ctx(), False)
    assert res.params.strategy == "cost" and res.strategy_source == "pipeline"
    assert any("ignored" in n and "does not allow overrides" in n for n in res.notes)


@pytest.mark.parametrize("pipeline", [None, "code", "pinned"])
def test_invalid_header_is_a_400_listing_allowed_values(policy_set, pipeline):
    with pytest.raises(InvalidStrategyError) as info:
        resolve(policy_set, pipeline, "fastest", ctx(), False)
    assert isinstance(info.value, ValueError) and isinstance(info.value, InvalidRequestError)
    assert info.value.status == 400
    assert "cost, performance, balanced, custom" in str(info.value)


def test_blank_header_counts_as_absent(policy_set):
    assert resolve(policy_set, "code", "  ", ctx(), False).strategy_source == "pipeline"


def test_header_custom_needs_weights(policy_set):
    with pytest.raises(InvalidStrategyError, match="needs weights"):
        resolve(policy_set, "code", "custom", ctx(), False)
    weighted = _policy(
        """
        pipeline: w
        selection_schema: {strategy: cost, weights: {quality: 3, cost: 1}}
        """
    )
    res = resolve(PolicySet(pipelines={"w": weighted}), "w", "custom", ctx(), False)
    assert res.params.strategy == "custom" and res.params.weights["quality"] == 3


def test_unknown_pipeline_is_a_404(policy_set):
    with pytest.raises(UnknownPipelineError) as info:
        resolve(policy_set, "nope", None, ctx(), False)
    assert isinstance(info.value, NotFoundError) and info.value.status == 404
    assert info.value.known == ("code", "pinned")


def test_unknown_pipeline_falls_back_to_default_when_allowed(policy_set):
    res = resolve(policy_set, "nope", "cost", ctx(), True)
    assert res.policy is DEFAULT and res.params.strategy == "cost" and res.strategy_source == "header"
    assert any("unknown pipeline 'nope'" in n for n in res.notes)
    assert resolve(policy_set, "nope", None, ctx(), True).strategy_source == "default"


def test_pipeline_named_default_is_the_default_policy(policy_set):
    assert resolve(policy_set, "default", None, ctx(), False).policy is DEFAULT


def test_request_domain_beats_default_domain(policy_set):
    assert resolve(policy_set, "code", None, ctx(domain="math"), False).domain == "math"
    assert resolve(policy_set, "code", None, ctx(), False).default_domain == "code"


# --- expert triggers ----------------------------------------------------------------------------


def test_no_tools_no_experts(policy_set):
    res = resolve(policy_set, "code", None, ctx(), False)
    assert res.params.preferred == () and res.experts.trigger is None and res.params.preferred_reason is None


def test_forced_tool_selects_its_experts(policy_set):
    res = resolve(policy_set, "code", None, ctx(forced_tool="run_sql", tool_names=("run_sql",)), False)
    assert res.params.preferred == ("deepseek-coder", "claude-3-5-sonnet")
    assert res.experts.trigger == "forced" and res.experts.tools == ("run_sql",)
    assert "forced tool 'run_sql'" in res.params.preferred_reason


def test_last_tool_result_selects_that_tools_experts(policy_set):
    # The conversation ends with the result of an assistant `execute_code` call.
    c = ctx(tool_names=("run_sql", "execute_code"), last_tool_result="execute_code")
    res = resolve(policy_set, "code", None, c, False)
    assert res.params.preferred == ("claude-3-5-sonnet", "deepseek-coder", "gpt-4o")
    assert res.experts.trigger == "last_tool_result"


def test_forced_beats_last_tool_result_beats_offered(policy_set):
    c = ctx(tool_names=("execute_code", "run_sql"), forced_tool="run_sql", last_tool_result="execute_code")
    assert resolve(policy_set, "code", None, c, False).experts.trigger == "forced"
    c = ctx(tool_names=("run_sql",), last_tool_result="execute_code")
    res = resolve(policy_set, "code", None, c, False)
    assert res.experts.trigger == "last_tool_result" and res.params.preferred[0] == "claude-3-5-sonnet"


def test_a_trigger_without_experts_falls_through(policy_set):
    c = ctx(tool_names=("get_weather", "run_sql"), forced_tool="get_weather", last_tool_result="lookup")
    res = resolve(policy_set, "code", None, c, False)
    assert res.experts.trigger == "offered" and res.params.preferred == ("deepseek-coder", "claude-3-5-sonnet")
    assert any("forced tool 'get_weather' has no experts" in n for n in res.notes)
    assert any("tool result 'lookup' has no experts" in n for n in res.notes)


def test_single_offered_tool_uses_its_experts(policy_set):
    res = resolve(policy_set, "code", None, ctx(tool_names=("run_sql",)), False)
    assert res.params.preferred == ("deepseek-coder", "claude-3-5-sonnet") and res.experts.trigger == "offered"


def test_several_offered_tools_rank_by_coverage_then_position_then_tool_order(policy_set):
    c = ctx(tool_names=("search_docs", "run_sql", "execute_code", "get_weather"), max_output_tokens=100)
    res = resolve(policy_set, "code", None, c, False)
    # search_docs' cost cap leaves gpt-4o-mini and claude-3-haiku (claude-3-5-sonnet is too dear).
    # deepseek-coder and claude-3-5-sonnet are experts for two tools each; deepseek's run_sql is
    # offered before execute_code. Then single-tool experts by best position, then tool order.
    assert res.params.preferred == ("deepseek-coder", "claude-3-5-sonnet", "gpt-4o-mini", "claude-3-haiku", "gpt-4o")
    assert res.experts.tools == ("search_docs", "run_sql", "execute_code")
    assert "offered tools search_docs, run_sql, execute_code" in res.params.preferred_reason


def test_offered_order_breaks_ties(policy_set):
    a = resolve(policy_set, "code", None, ctx(tool_names=("run_sql", "execute_code")), False)
    b = resolve(policy_set, "code", None, ctx(tool_names=("execute_code", "run_sql")), False)
    assert a.params.preferred[:2] == ("deepseek-coder", "claude-3-5-sonnet")
    assert b.params.preferred[:2] == ("claude-3-5-sonnet", "deepseek-coder")


def test_per_expert_constraints_filter_only_the_experts(policy_set):
    res = resolve(policy_set, "code", None, ctx(forced_tool="premium", domain="chat"), False)
    # min_quality 0.91 drops gpt-4o (0.9) and deepseek-coder (0.85 outside code); anthropic is blocked.
    assert res.params.preferred == ()
    assert sum("not preferred" in n for n in res.notes) == 3
    # ...but they are not hard constraints for the request: the policy's constraints are unchanged.
    assert res.params.constraints.min_quality is None and res.params.constraints.blocked_providers == frozenset()
    # With domain "code" deepseek-coder's domain quality (0.95) meets the expert's floor.
    res = resolve(policy_set, "code", None, ctx(forced_tool="premium", domain="code"), False)
    assert res.params.preferred == ("deepseek-coder",)


def test_expert_constraints_read_the_policys_default_domain(policy_set):
    # No domain on the request: the pipeline's `default_domain` (code) is the request's domain, for
    # the experts' min_quality too (it was applied only after the experts were chosen, so deepseek-
    # coder was judged on its overall 0.85 and dropped).
    res = resolve(policy_set, "code", None, ctx(forced_tool="premium"), False)
    assert res.params.preferred == ("deepseek-coder",) and res.domain == "code"
    assert not any("deepseek-coder" in n and "not preferred" in n for n in res.notes)


def test_per_expert_cost_cap_uses_the_requests_size(policy_set):
    small = resolve(policy_set, "code", None, ctx(forced_tool="search_docs", input_tokens=100, max_output_tokens=10), False)
    assert small.params.preferred == ("claude-3-5-sonnet", "gpt-4o-mini", "claude-3-haiku")
    big = resolve(policy_set, "code", None, ctx(forced_tool="search_docs", input_tokens=100_000), False)
    assert big.params.preferred == ()


def test_expert_constraints_without_catalog_check_names_only():
    policy = _policy(
        """
        pipeline: p
        experts:
          t:
            models: [gpt-4o, gpt-4o-mini]
            constraints: {blocked_models: [gpt-4o], min_quality: 0.99}
        """
    )
    res = resolve(PolicySet(pipelines={"p": policy}, models=None), "p", None, ctx(forced_tool="t"), False)
    assert res.params.preferred == ("gpt-4o-mini",)


def test_header_strategy_and_experts_combine(policy_set):
    res = resolve(policy_set, "code", "cost", ctx(forced_tool="run_sql"), False)
    assert res.params.strategy == "cost" and res.params.preferred[0] == "deepseek-coder"
