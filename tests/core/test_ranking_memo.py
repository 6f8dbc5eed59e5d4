"""The ranking memo returns exactly what `SelectionEngine.rank` would, and forgets on every change
that could change a ranking: new live stats, new params, another request shape."""

from __future__ import annotations

import random
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.catalog import GatewayConfig, load_catalog
from gateway.core._ranking_memo import RankingMemo
from gateway.core.decision import Decider
from gateway.policy import PolicySet
from gateway.policy.models import Policy
from gateway.selection import (
    Constraints,
    LiveStats,
    ModelInfo,
    RequestContext,
    SelectionEngine,
    SelectionParams,
)

_DOMAINS = ("code", "math", "chat")


def _models(n: int = 12, seed: int = 3) -> tuple[ModelInfo, ...]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        price = 10 ** rng.uniform(-7.3, -4.3)
        out.append(ModelInfo(
            name=f"m{i:02d}", provider=rng.choice(("openai", "anthropic", "google")), litellm_model=f"sim/m{i}",
            input_cost_per_token=price, output_cost_per_token=price * 4,
            context_window=rng.choice((8_192, 32_768, 128_000)), max_output_tokens=rng.choice((2_048, 8_192)),
            supports_tools=rng.random() < 0.7, supports_vision=rng.random() < 0.5,
            supports_json_schema=rng.random() < 0.6, quality=rng.uniform(0.3, 0.95),
            domain_quality=MappingProxyType({d: rng.uniform(0.3, 0.95) for d in _DOMAINS if rng.random() < 0.6}),
            ttft_ms=rng.uniform(150, 1500), tokens_per_s=rng.uniform(20, 200),
        ))
    return tuple(out)


MODELS = _models()
PARAMS = {
    name: SelectionParams(strategy=name, preferred=("m05",) if name == "cost" else ())
    for name in ("cost", "performance", "balanced")
}
PARAMS["capped"] = SelectionParams(strategy="balanced", constraints=Constraints(max_cost_per_request_usd=0.002))


def _live(seed: int) -> MappingProxyType:
    rng = random.Random(seed)
    return MappingProxyType({
        m.name: LiveStats(samples=rng.randint(1, 400), ttft_ms=m.ttft_ms * rng.uniform(0.5, 2.0),
                          error_rate=rng.uniform(0, 0.1), circuit_open=rng.random() < 0.1)
        for m in MODELS if rng.random() < 0.6
    })


shapes = st.fixed_dictionaries({
    "input_tokens": st.sampled_from((5, 900, 30_000, 120_000)),
    "max_output_tokens": st.sampled_from((None, 16, 4_000)),
    "required_capabilities": st.frozensets(st.sampled_from(("tools", "vision", "json_schema")), max_size=2),
    "domain": st.sampled_from((None, *_DOMAINS)),
    "forced_tool": st.sampled_from((None, "search")),
})


@settings(max_examples=120, deadline=None)
@given(requests=st.lists(st.tuples(shapes, st.sampled_from(sorted(PARAMS)), st.integers(0, 2)), min_size=1,
                         max_size=12))
def test_a_remembered_ranking_is_the_ranking(requests):
    engine, memo = SelectionEngine(), RankingMemo(max_lives=2, max_candidates=40)
    lives = [_live(seed) for seed in range(3)]
    for i, (shape, params, live) in enumerate(requests):
        ctx = RequestContext(request_id=f"r{i}", **shape)
        got = memo.rank(engine.rank, ctx, MODELS, PARAMS[params], lives[live], 3)
        want = engine.rank(ctx, MODELS, PARAMS[params], lives[live], detail=3)
        assert got == want  # every candidate, score, reason, rejection and note
        assert memo.rank(engine.rank, ctx, MODELS, PARAMS[params], lives[live], 3) is got


def _ctx(request_id: str = "r", **kw) -> RequestContext:
    return RequestContext(request_id=request_id, input_tokens=kw.pop("input_tokens", 50), **kw)


def test_the_same_shape_with_the_same_stats_and_params_is_ranked_once():
    engine, memo = SelectionEngine(), RankingMemo()
    live = _live(1)
    calls = []

    def rank(*args, **kwargs):
        calls.append(args[0].request_id)
        return engine.rank(*args, **kwargs)

    first = memo.rank(rank, _ctx("a"), MODELS, PARAMS["balanced"], live, 3)
    assert memo.rank(rank, _ctx("b"), MODELS, PARAMS["balanced"], live, 3) is first
    assert calls == ["a"]
    # Anything the ranking reads is part of the key.
    memo.rank(rank, _ctx("c", input_tokens=51), MODELS, PARAMS["balanced"], live, 3)
    memo.rank(rank, _ctx("d", domain="code"), MODELS, PARAMS["balanced"], live, 3)
    memo.rank(rank, _ctx("e", required_capabilities=frozenset({"tools"})), MODELS, PARAMS["balanced"], live, 3)
    memo.rank(rank, _ctx("f", last_tool_result="search"), MODELS, PARAMS["cost"], live, 3)
    memo.rank(rank, _ctx("g"), MODELS, PARAMS["cost"], live, 3)
    memo.rank(rank, _ctx("h"), MODELS, PARAMS["balanced"], live, 4)
    memo.rank(rank, _ctx("i"), MODELS[:5], PARAMS["balanced"], live, 3)
    assert calls == ["a", "c", "d", "e", "f", "g", "h", "i"]
    assert len(memo) == 8


def test_new_live_stats_are_ranked_afresh():
    engine, memo = SelectionEngine(), RankingMemo()
    before = memo.rank(engine.rank, _ctx(), MODELS, PARAMS["balanced"], MappingProxyType({}), 3)
    winner = before.ranked[0].model.name
    tripped = MappingProxyType({winner: LiveStats(samples=10, circuit_open=True)})
    after = memo.rank(engine.rank, _ctx(), MODELS, PARAMS["balanced"], tripped, 3)
    assert after.ranked[0].model.name != winner
    assert winner in {r.model for r in after.rejected}


def test_what_could_change_under_it_is_never_remembered():
    engine, memo = SelectionEngine(), RankingMemo()
    plain: dict[str, LiveStats] = {}
    before = memo.rank(engine.rank, _ctx(), MODELS, PARAMS["balanced"], plain, 3)
    plain[before.ranked[0].model.name] = LiveStats(samples=10, circuit_open=True)  # changed in place
    after = memo.rank(engine.rank, _ctx(), MODELS, PARAMS["balanced"], plain, 3)
    assert after.ranked[0].model.name != before.ranked[0].model.name
    # Learned per-prompt quality is the prompt's own.
    live = MappingProxyType({})
    learned = _ctx(quality_estimates={"m01": 0.99})
    assert memo.rank(engine.rank, learned, MODELS, PARAMS["balanced"], live, 3) is not \
        memo.rank(engine.rank, learned, MODELS, PARAMS["balanced"], live, 3)
    assert len(memo) == 0


def test_memory_is_bounded_by_live_maps_and_by_candidates():
    engine = SelectionEngine()
    memo = RankingMemo(max_lives=3, max_candidates=10_000)
    for seed in range(10):  # ten refreshes: only the last three maps can be held
        memo.rank(engine.rank, _ctx(), MODELS, PARAMS["balanced"], _live(seed), 3)
    assert 1 <= len(memo) <= 3
    memo = RankingMemo(max_candidates=3 * (len(MODELS) + 1))
    live = _live(0)
    for tokens in range(1, 20):
        memo.rank(engine.rank, _ctx(input_tokens=tokens), MODELS, PARAMS["balanced"], live, 3)
        assert memo._held <= 3 * (len(MODELS) + 1)
    assert 1 <= len(memo) <= 3


def _decider(live) -> Decider:
    deps = [{"name": n, "model": "openai/gpt-4o-mini", "api_base": "http://127.0.0.1:9/v1",
             "metadata": {"input_cost_per_token": c, "output_cost_per_token": c}}
            for n, c in (("a", 1e-6), ("b", 3e-6))]
    catalog = load_catalog(GatewayConfig.model_validate({"deployments": deps}), env={})
    policies = PolicySet()
    return Decider(catalog, SelectionEngine(), lambda: policies, lambda pipeline: live[0])


BODY = {"model": "auto", "max_tokens": 20, "messages": [{"role": "user", "content": "Say hello."}]}


def test_the_decider_ranks_a_repeated_request_once_per_stats_refresh():
    live = [MappingProxyType({})]
    decider = _decider(live)
    first = decider.decide(BODY, {}, "r1")
    second = decider.decide(BODY, {}, "r2")
    # The decision adds its own notes (the inferred domain) to a copy; the ranked list is shared.
    assert second.ranking.ranked is first.ranking.ranked and second.ctx.request_id == "r2"
    live[0] = MappingProxyType({"a": LiveStats(samples=5, circuit_open=True)})  # a refresh
    third = decider.decide(BODY, {}, "r3")
    assert third.ranking.ranked is not first.ranking.ranked
    assert [c.model.name for c in third.ranking.ranked] == ["b"]
    # Explanations carry every candidate's reasons and are ranked afresh.
    assert decider.decide(BODY, {}, "r4", explain=True).ranking.ranked is not third.ranking.ranked
    # Another strategy is another params object.
    other = decider.decide(BODY, {"x-selection-strategy": "performance"}, "r5").ranking.ranked
    assert other is not third.ranking.ranked


def test_selection_params_are_one_object_per_policy_strategy_and_experts():
    policies = PolicySet(pipelines={"p": Policy(pipeline="p")})
    policy = policies.get("p")
    a = policies.selection_params(policy, None, (), None)
    assert policies.selection_params(policy, None, (), None) is a
    assert policies.selection_params(policy, "cost", (), None) is not a
    assert policies.selection_params(policy, None, ("m1",), "expert") is not a
    assert policies.selection_params(policy, None, (), None) == policy.selection_params()
    reloaded = PolicySet(pipelines={"p": Policy(pipeline="p")})
    assert reloaded.selection_params(reloaded.get("p"), None, (), None) is not a


@pytest.mark.parametrize("strategy", ["nope", "custom"])
def test_a_bad_strategy_is_refused_every_time(strategy):
    policies = PolicySet()
    for _ in range(2):
        with pytest.raises(ValueError):
            policies.selection_params(policies.default, strategy, (), None)


def test_half_open_names_are_read_once_per_live_map():
    memo = RankingMemo()
    live = MappingProxyType({"a": LiveStats(samples=3, circuit_state="half_open"),
                             "b": LiveStats(samples=3, circuit_state="half_open", circuit_open=True),
                             "c": LiveStats(samples=3)})
    assert memo.half_open(live) == {"a"}
    assert memo.half_open(live) is memo.half_open(live)
    plain = {"c": LiveStats(samples=3)}
    assert memo.half_open(plain) == frozenset()
    plain["c"] = LiveStats(samples=3, circuit_state="half_open")  # changed in place: read again
    assert memo.half_open(plain) == {"c"}


def test_the_attempt_order_is_rebuilt_when_anything_it_follows_changes():
    memo, built = RankingMemo(), []
    ranked, deployments = ("x",), {"x": 1}

    def build(tag):
        return lambda: built.append(tag) or (tag,)

    assert memo.attempt_order(ranked, (), deployments, build(1)) == (1,)
    assert memo.attempt_order(ranked, (), deployments, build(2)) == (1,)
    assert memo.attempt_order(ranked, ("y",), deployments, build(3)) == (3,)
    assert memo.attempt_order(tuple("x"), ("y",), deployments, build(4)) == (4,)  # another tuple object
    assert memo.attempt_order(ranked, ("y",), {"x": 1}, build(5)) == (5,)  # another catalog
    assert built == [1, 3, 4, 5]


def test_a_half_open_deployment_still_gets_its_probe_through_the_memo():
    live = [MappingProxyType({})]
    decider = _decider(live)
    first = decider.decide(BODY, {}, "r1")
    runner_up = first.ranking.ranked[1].model.name
    live[0] = MappingProxyType({runner_up: LiveStats(samples=5, circuit_state="half_open")})
    for rid in ("r2", "r3"):
        decision = decider.decide(BODY, {}, rid)
        assert decision.candidates[0].name == runner_up
        assert any("half-open" in n for n in decision.ranking.notes)

