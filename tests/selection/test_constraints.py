from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.selection import CIRCUIT_OPEN, Constraints, HardConstraints, LiveStats, Priors
from gateway.selection._estimate import estimate

from ._factory import constraints, contexts, ctx, model, models

_CASES = [
    # (id, model overrides, context overrides, constraints, live, expected reason)
    ("circuit", {}, {}, Constraints(), LiveStats(circuit_open=True), CIRCUIT_OPEN),
    (
        "allowed-models",
        {},
        {},
        Constraints(allowed_models=frozenset({"other"})),
        None,
        "model: m not in allowed models",
    ),
    (
        "blocked-model",
        {},
        {},
        Constraints(blocked_models=frozenset({"m"})),
        None,
        "model: m is blocked",
    ),
    (
        "allowed-providers",
        {},
        {},
        Constraints(allowed_providers=frozenset({"anthropic", "sim"})),
        None,
        "provider: openai not allowed (allowed: anthropic, sim)",
    ),
    (
        "blocked-provider",
        {},
        {},
        Constraints(blocked_providers=frozenset({"openai"})),
        None,
        "provider: openai is blocked",
    ),
    (
        "capability-ctx",
        {"supports_tools": False},
        {"required_capabilities": frozenset({"vision", "tools"})},
        Constraints(),
        None,
        "capability: missing tools, vision",
    ),
    (
        "capability-policy",
        {},
        {},
        Constraints(required_capabilities=frozenset({"json_schema"})),
        None,
        "capability: missing json_schema",
    ),
    (
        "max-tokens",
        {"max_output_tokens": 4_096},
        {"max_output_tokens": 8_000},
        Constraints(),
        None,
        "max_tokens: requested 8,000 > model max output 4,096",
    ),
    (
        "context",
        {"context_window": 8_192},
        {"input_tokens": 8_120, "max_output_tokens": 1_000},
        Constraints(),
        None,
        "context: needs 9,120 tokens (8,120 in + 1,000 out) > window 8,192",
    ),
    (
        "cost",
        {"input_cost_per_token": 1e-5, "output_cost_per_token": 3e-5},
        {"input_tokens": 1_000, "max_output_tokens": 500},
        Constraints(max_cost_per_request_usd=0.01),
        None,
        "cost: expected $0.025 > max $0.01 per request",
    ),
    (
        "quality-overall",
        {"quality": 0.6},
        {},
        Constraints(min_quality=0.7),
        None,
        "quality: 0.60 (overall) < min 0.70",
    ),
    (
        "quality-domain",
        {"quality": 0.9, "domain_quality": {"sql": 0.55}},
        {"domain": "sql"},
        Constraints(min_quality=0.7),
        None,
        "quality: 0.55 (domain sql) < min 0.70",
    ),
    (
        "latency",
        {"ttft_ms": 500.0, "tokens_per_s": 50.0},
        {"max_output_tokens": 500},
        Constraints(max_latency_ms=2_000),
        None,
        "latency: expected 10,500 ms > max 2,000 ms",
    ),
]


@pytest.mark.parametrize(
    ("model_kw", "ctx_kw", "limits", "stats", "reason"),
    [case[1:] for case in _CASES],
    ids=[case[0] for case in _CASES],
)
def test_each_constraint_rejects_with_its_reason(model_kw, ctx_kw, limits, stats, reason):
    m, c = model(**model_kw), ctx(**ctx_kw)
    hard = HardConstraints.for_request(c, limits)
    est = estimate(m, c, stats, Priors())
    assert hard.violations(est, stats) == (reason,)
    assert not hard.admits(est, stats)


def test_domain_quality_falls_back_to_overall_when_model_has_no_score():
    m, c = model(quality=0.8), ctx(domain="sql")
    est = estimate(m, c, None, Priors())
    assert HardConstraints.for_request(c, Constraints(min_quality=0.75)).admits(est, None)


def test_all_reasons_are_collected():
    m = model(context_window=4_096, supports_tools=False, provider="sim")
    c = ctx(input_tokens=4_000, required_capabilities=frozenset({"tools"}))
    hard = HardConstraints.for_request(c, Constraints(blocked_providers=frozenset({"sim"})))
    stats = LiveStats(circuit_open=True)
    reasons = hard.violations(estimate(m, c, stats, Priors()), stats)
    assert reasons == (
        CIRCUIT_OPEN,
        "provider: sim is blocked",
        "capability: missing tools",
        "context: needs 4,500 tokens (4,000 in + 500 out) > window 4,096",
    )


def test_feasible_model_has_no_reasons():
    c = ctx()
    hard = HardConstraints.for_request(c, Constraints())
    est = estimate(model(), c, None, Priors())
    assert hard.admits(est, None) and hard.violations(est, None) == ()


@settings(max_examples=80, deadline=None)
@given(data=st.data(), catalog=models(), c=contexts, limits=constraints)
def test_admits_agrees_with_violations(data, catalog, c, limits):
    hard = HardConstraints.for_request(c, limits)
    for m in catalog:
        stats = data.draw(st.one_of(st.none(), st.builds(LiveStats, circuit_open=st.booleans())))
        est = estimate(m, c, stats, Priors())
        assert hard.admits(est, stats) == (not hard.violations(est, stats))


@pytest.mark.parametrize("extra, capability, reason", [
    ({"n": 2}, "multiple_choices", "capability: missing multiple_choices (n > 1)"),
    ({"logprobs": True, "top_logprobs": 2}, "logprobs", "capability: missing logprobs (logprobs: true)"),
])
def test_parameters_that_change_the_answer_are_capabilities(extra, capability, reason):
    from gateway.core.context import build_context

    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}], **extra}
    request = build_context(body, request_id="t", pinned_model=None, domain=None, pipeline=None)
    assert capability in request.required_capabilities
    limits = HardConstraints.for_request(request, Constraints())
    without = model("claude", **{f"supports_{capability}": False})
    est = estimate(without, request, None, Priors())
    assert not limits.admits(est, None) and reason in limits.violations(est, None)
    assert limits.admits(estimate(model("gpt"), request, None, Priors()), None)
    # n = 1 and logprobs: false ask for nothing special.
    plain = build_context({**body, "n": 1, "logprobs": False}, request_id="t", pinned_model=None, domain=None,
                          pipeline=None)
    assert not {"multiple_choices", "logprobs"} & plain.required_capabilities
