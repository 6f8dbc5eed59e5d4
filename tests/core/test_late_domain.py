"""The domain inference waits for the upstream call only where it cannot change the winner, and the
decision it settles into is the one the request would have got with the inference first."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import replace
from types import MappingProxyType

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gateway.catalog import GatewayConfig, load_catalog
from gateway.core import _ranking_memo
from gateway.core._ranking_memo import DIFFERENT, FILL, SAME, UNKNOWN, RankingMemo
from gateway.core.decision import Decider, Decision, settled
from gateway.core.pipeline import Admitted, Call
from gateway.learning import RouterModel
from gateway.learning.default_domains import load_default
from gateway.policy import PolicySet
from gateway.policy.models import Policy
from gateway.selection import LiveStats, RequestContext, SelectionEngine, SelectionParams
from gateway.selection.types import with_domain

CLASSES = load_default().classes
PROMPTS = (
    "Write a Python function that merges two sorted lists and add unit tests.",
    "Solve for x: 3x + 7 = 22, and show each step.",
    "Write a short poem about autumn leaves.",
    "Hi there, how are you today?",
    "Extract every email address from this text: bob@example.com wrote to amy@example.org.",
    "If all bloops are razzies and all razzies are lazzies, are all bloops lazzies? Explain.",
)


def _catalog(models: list[tuple[str, float, float, dict[str, float]]]):
    deps = [{"name": n, "model": f"openai/{n}", "api_base": "http://127.0.0.1:9/v1",
             "metadata": {"input_cost_per_token": c, "output_cost_per_token": 4 * c, "quality": q,
                          "domain_quality": dq, "context_window": 128_000, "max_output_tokens": 4096}}
            for n, c, q, dq in models]
    return load_catalog(GatewayConfig.model_validate({"deployments": deps}), env={})


def _deciders(catalog, live, policies=None) -> tuple[Decider, Decider]:
    policies = policies or PolicySet()
    make = lambda defer: Decider(catalog, SelectionEngine(), lambda: policies,  # noqa: E731
                                 lambda pipeline: live[0], defer_domain=defer)
    return make(True), make(False)


def _body(prompt: str, max_tokens: int = 64) -> dict:
    return {"model": "auto", "max_tokens": max_tokens, "messages": [{"role": "user", "content": prompt}]}


def _same(a: Decision, b: Decision) -> None:
    """Every field a request's response, stats and log read."""
    assert a.settle is None and b.settle is None
    assert a.ctx == b.ctx
    assert [(c.model.name, c.total, c.reasons) for c in a.ranking.ranked] == \
           [(c.model.name, c.total, c.reasons) for c in b.ranking.ranked]
    assert list(a.ranking.rejected) == list(b.ranking.rejected)
    assert a.ranking.notes == b.ranking.notes and a.notes == b.notes
    assert [d.name for d in a.candidates] == [d.name for d in b.candidates]
    assert (a.strategy, a.strategy_source, a.pipeline, a.budget_key) == \
           (b.strategy, b.strategy_source, b.pipeline, b.budget_key)
    assert (a.features is None) == (b.features is None)
    if a.features is not None:
        assert np.array_equal(a.features.indices, b.features.indices)
        assert np.array_equal(a.features.values, b.features.values)


def _decide_twice(deferring: Decider, eager: Decider, body: dict, headers: dict, rid: str) -> Decision:
    """The deferring decider's decision (as it comes, before settling), checked against the eager one."""
    early = deferring.decide(body, headers, rid)
    final = settled(early)
    _same(final, eager.decide(body, headers, rid))
    if early.settle is not None:  # what the forwarder read first is what the request was decided for
        assert early.candidates[0].name == final.candidates[0].name
    return early


# One model is best everywhere; code quality differs enough to drop another one (a constraint),
# so only the fallbacks differ between domains.
SAME_WINNER = [("small", 1e-7, 0.80, {"chat": 0.8, "code": 0.75}),
               ("big", 3e-5, 0.90, {"chat": 0.9, "code": 0.88}),
               ("tiny", 5e-8, 0.55, {"chat": 0.6, "code": 0.45})]


def _until_deferred(deferring: Decider, eager: Decider, body: dict, limit: int = 8) -> int:
    """How many requests of one shape were decided with the domain first before one was not."""
    for i in range(limit):
        early = _decide_twice(deferring, eager, body, {}, f"warm{i}")
        if early.settle is not None and early.ctx.domain is None:
            return i
    raise AssertionError(f"no request was decided before its domain in {limit}")


def _min_quality_deciders() -> tuple[list, Decider, Decider]:
    """Over SAME_WINNER with min_quality 0.5, which "tiny" breaks for code only."""
    live = [MappingProxyType({})]
    policies = PolicySet(default=Policy.model_validate({
        "pipeline": "default", "selection_schema": {"constraints": {"min_quality": 0.5}}}))
    return live, *_deciders(_catalog(SAME_WINNER), live, policies)


def test_the_winner_leaves_before_the_domain_is_inferred():
    live, deferring, eager = _min_quality_deciders()
    body = _body(PROMPTS[0])
    # Only chat and code are graded: the other domains rank as none does. The shape asks once for
    # each of those three, the last ask ranks the missing ones, and the next request waits for nothing.
    assert _until_deferred(deferring, eager, body) == 3
    third = deferring.decide(body, {}, "r3")
    assert third.settle is not None and third.ctx.domain is None and third.features is None
    final = settled(third)
    assert final.ctx.domain == "code" and final.features is not None
    assert any(n.startswith("domain inferred from the prompt: code") for n in final.notes)
    # For code, "tiny" breaks min_quality: the settled fallbacks are the code ones.
    assert [d.name for d in third.candidates] == ["small"]
    assert [d.name for d in final.candidates] == ["small", "big"]
    _same(final, eager.decide(body, {}, "r3"))
    # A refresh (a new live map): the shape keeps coming, so its first request has the domain
    # inferred first and fills the new map's rankings while its call is in flight; the next one
    # waits for nothing again.
    live[0] = MappingProxyType({"big": LiveStats(samples=3)})
    fourth = _decide_twice(deferring, eager, body, {}, "r4")
    assert fourth.ctx.domain == "code" and fourth.settle is not None  # the fill
    fifth = _decide_twice(deferring, eager, body, {}, "r5")
    assert fifth.settle is not None and fifth.ctx.domain is None


def test_without_a_graded_domain_even_a_new_shape_does_not_wait():
    models = [(n, c, q, {}) for n, c, q, _ in SAME_WINNER]
    live = [MappingProxyType({})]
    deferring, eager = _deciders(_catalog(models), live)
    for i, prompt in enumerate(PROMPTS):  # every one another shape
        early = _decide_twice(deferring, eager, _body(prompt, 16 + i), {}, f"r{i}")
        assert early.settle is not None and early.ctx.domain is None


@settings(max_examples=60, deadline=None)
@given(models=st.lists(st.tuples(st.floats(-7.5, -4.5), st.floats(0.3, 0.97),
                                 st.dictionaries(st.sampled_from(CLASSES[:3]), st.floats(0.3, 0.97), max_size=3)),
                       min_size=1, max_size=6),
       feedback=st.dictionaries(st.integers(0, 5), st.dictionaries(st.sampled_from(CLASSES[:4]), st.floats(0, 1),
                                                                  max_size=2), max_size=3),
       strategy=st.sampled_from(("cost", "performance", "balanced")), tokens=st.integers(1, 5000))
def test_a_domain_no_model_is_graded_for_ranks_as_none(models, feedback, strategy, tokens):
    # What lets `Decider` remember one ranking for none and every such domain, and ask nothing of
    # the memo when no domain the router infers is graded.
    catalog = _catalog([(f"m{i}", 10 ** c, q, dq) for i, (c, q, dq) in enumerate(models)])
    live = MappingProxyType({
        f"m{i}": LiveStats(samples=10, quality=0.7, quality_samples=5, domain_quality=fb,
                           domain_quality_samples={d: 4.0 for d in fb})
        for i, fb in feedback.items() if i < len(models)})
    graded = {d for m in catalog.models for d in m.domain_quality} | {d for s in live.values() for d in s.domain_quality}
    engine, params = SelectionEngine(), SelectionParams(strategy=strategy)
    ctx = RequestContext(request_id="r", input_tokens=tokens, max_output_tokens=256)
    none = engine.rank(ctx, catalog.models, params, live, detail=3)
    for domain in CLASSES:
        if domain in graded:
            continue
        other = engine.rank(with_domain(ctx, domain, "inferred"), catalog.models, params, live, detail=3)
        assert [(c.model.name, c.total, c.reasons) for c in other.ranked] == \
               [(c.model.name, c.total, c.reasons) for c in none.ranked]
        assert [(r.model, r.reasons) for r in other.rejected] == [(r.model, r.reasons) for r in none.rejected]
        assert other.notes == none.notes and other.strategy == none.strategy


def test_feedback_for_a_domain_makes_it_count():
    live = [MappingProxyType({})]
    deferring, eager = _deciders(_catalog(SAME_WINNER), live)
    asks = _until_deferred(deferring, eager, _body(PROMPTS[2]))
    live[0] = MappingProxyType({"tiny": LiveStats(samples=3, domain_quality={"math": 0.9},
                                                  domain_quality_samples={"math": 3.0})})
    assert _until_deferred(deferring, eager, _body(PROMPTS[2])) == asks + 1  # math is graded now


def test_a_domain_that_changes_the_winner_is_inferred_first():
    models = [("coder", 1e-6, 0.6, {"code": 0.97}), ("writer", 1e-6, 0.8, {"code": 0.3})]
    live = [MappingProxyType({})]
    deferring, eager = _deciders(_catalog(models), live)
    for i in range(4):
        decision = _decide_twice(deferring, eager, _body(PROMPTS[0]), {}, f"r{i}")
        assert decision.settle is None or decision.ctx.domain == "code"  # a fill at most, never early
    assert decision.settle is None and decision.candidates[0].name == "coder"


@pytest.mark.parametrize("headers, policy", [
    ({"x-task-domain": "code"}, None),  # nothing to infer
    ({"x-quality-target": "0.9"}, None),  # a target reads the estimates
    ({}, {"exploration": {"method": "thompson", "rate": 0.5}}),  # draws on the scores
])
def test_what_reads_more_than_the_winner_never_waits(headers, policy):
    live = [MappingProxyType({})]
    policies = PolicySet(default=Policy.model_validate(
        {"pipeline": "default", "selection_schema": policy})) if policy else None
    deferring, _ = _deciders(_catalog(SAME_WINNER), live, policies)
    for i in range(4):
        assert deferring.decide(_body(PROMPTS[2]), headers, f"r{i}").settle is None
    assert deferring.decide(_body(PROMPTS[2]), {}, "x", explain=True).settle is None


def test_a_half_open_deployment_keeps_the_domain_first():
    live = [MappingProxyType({"tiny": LiveStats(samples=3, circuit_state="half_open")})]
    deferring, _ = _deciders(_catalog(SAME_WINNER), live)
    decisions = [deferring.decide(_body(PROMPTS[3]), {}, f"r{i}") for i in range(4)]
    assert all(d.settle is None for d in decisions)
    assert decisions[-1].candidates[0].name == "tiny"  # its probe


def test_same_winner_reads_remembered_rankings_only():
    catalog = _catalog(SAME_WINNER)
    models, params, memo = catalog.models, SelectionParams(strategy="balanced"), RankingMemo()
    live = MappingProxyType({})
    calls = []

    def rank(*a, **k):
        calls.append(a[0].domain)
        return SelectionEngine().rank(*a, **k)

    ctx = RequestContext(request_id="r", input_tokens=20, max_output_tokens=64)
    domains = (None, *CLASSES)
    # Asked once per domain before the missing ones are worth ranking (at most one per ask).
    assert [memo.same_winner(ctx, models, params, live, domains) for _ in domains] == \
           [UNKNOWN] * (len(domains) - 1) + [FILL]
    assert calls == []
    for domain in domains:
        memo.rank(rank, with_domain(ctx, domain, "inferred") if domain else ctx, models, params, live, 3)
    assert memo.same_winner(ctx, models, params, live, domains) == SAME
    assert memo.same_winner(ctx, models, params, live, domains) == SAME  # remembered
    assert len(calls) == len(domains)
    assert memo.same_winner(ctx, models, params, dict(live), domains) == DIFFERENT  # a map `rank` would not keep
    other = SelectionParams(strategy="cost")  # another params object: asked afresh
    assert memo.same_winner(ctx, models, other, live, domains) == UNKNOWN


def test_a_shape_that_keeps_coming_is_filled_at_its_first_ask_after_a_refresh(monkeypatch):
    catalog = _catalog(SAME_WINNER)
    models, params = catalog.models, SelectionParams(strategy="balanced")
    now = [100.0]
    memo = RankingMemo(recurring_s=2.0, clock=lambda: now[0])
    ctx = RequestContext(request_id="r", input_tokens=20, max_output_tokens=64)
    domains = (None, *CLASSES)
    asks = [UNKNOWN] * (len(domains) - 1) + [FILL]
    live = MappingProxyType({})
    assert [memo.same_winner(ctx, models, params, live, domains) for _ in domains] == asks
    now[0] += 1.0
    assert memo.same_winner(ctx, models, params, MappingProxyType({}), domains) == FILL  # a refresh later
    other = RequestContext(request_id="o", input_tokens=900, max_output_tokens=64)  # a shape never filled
    assert memo.same_winner(other, models, params, MappingProxyType({}), domains) == UNKNOWN
    now[0] += 2.0  # it stopped coming: a refresh after that counts its asks again
    live = MappingProxyType({})
    assert [memo.same_winner(ctx, models, params, live, domains) for _ in domains] == asks
    # What it remembers is bounded: past the cap it starts over.
    monkeypatch.setattr(_ranking_memo, "_MAX_RECURRING", 3)
    for tokens in range(1, 6):
        shape = RequestContext(request_id="s", input_tokens=tokens, max_output_tokens=64)
        for _ in domains:
            memo.same_winner(shape, models, params, live, domains)
        assert len(memo._recurring) <= 3


def test_the_shapes_that_keep_coming_are_handed_back_once_per_refresh():
    catalog = _catalog(SAME_WINNER)
    models, params = catalog.models, SelectionParams(strategy="balanced")
    now = [100.0]
    memo = RankingMemo(recurring_s=2.0, clock=lambda: now[0])
    domains = (None, *CLASSES)
    shape = lambda tokens: RequestContext(request_id="r", input_tokens=tokens, max_output_tokens=64)  # noqa: E731
    live = MappingProxyType({})
    for _ in domains:
        memo.same_winner(shape(20), models, params, live, domains, "twenty")  # the last ask fills
        memo.same_winner(shape(30), models, params, live, domains)  # no origin: nothing to hand back
    memo.same_winner(shape(40), models, params, live, domains, "forty")  # asked once: not recurring
    now[0] += 0.25
    assert memo.take_recurring() == ["twenty"]
    assert memo.take_recurring() == []  # nothing asked since
    now[0] += 0.25
    live = MappingProxyType({})  # a refresh: the first ask in the new map hands it back again
    assert memo.same_winner(shape(20), models, params, live, domains, "twenty again") == FILL
    now[0] += 0.25
    assert memo.take_recurring() == ["twenty again"]
    now[0] += 2.0  # it stopped coming: a refresh after that hands nothing back, and forgets it
    live = MappingProxyType({})
    assert memo.same_winner(shape(20), models, params, live, domains, "late") == UNKNOWN
    assert len(memo._recurring) == 2  # this one and the one without an origin
    assert memo.take_recurring() == []
    assert memo._recurring == {}  # (what its origin held, a reloaded router model say, is let go)


def test_a_refill_after_a_refresh_lets_even_the_first_request_go_first():
    live, deferring, eager = _min_quality_deciders()
    body = _body(PROMPTS[0])
    assert _until_deferred(deferring, eager, body) == 3
    for refresh in range(2):
        live[0] = MappingProxyType({"big": LiveStats(samples=3 + refresh)})
        # The stats service's pass: one step per ranking (None, chat and code: the graded domains).
        assert list(deferring.refill()) == [None] * 3
        first = _decide_twice(deferring, eager, body, {}, f"r{refresh}")
        assert first.settle is not None and first.ctx.domain is None  # not the fill: the inference waits
        assert settled(first).ctx.domain == "code"
    live[0] = MappingProxyType({"big": LiveStats(samples=9)})
    assert list(deferring.refill()) == [None] * 3  # the first ask of the last map: handed back
    live[0] = MappingProxyType({"big": LiveStats(samples=10)})
    assert list(deferring.refill()) == []  # nothing asked since: no work for a shape that stopped
    # Bounded: a pass makes no ranking past a quarter of what the memo holds (each here holds 4).
    assert _decide_twice(deferring, eager, body, {}, "r8").ctx.domain == "code"  # the fill, as before
    live[0] = MappingProxyType({"big": LiveStats(samples=11)})
    deferring._memo._max_candidates = 40
    assert list(deferring.refill()) == [None] * 2
    fill = _decide_twice(deferring, eager, body, {}, "r9")  # one ranking missing: the fill, as before
    assert fill.ctx.domain == "code" and fill.settle is not None


def test_the_forwarder_reads_the_winner_without_settling_and_the_fallbacks_settled():
    _, deferring, eager = _min_quality_deciders()
    body = _body(PROMPTS[0])
    _until_deferred(deferring, eager, body)
    early = deferring.decide(body, {}, "r3")
    assert early.settle is not None
    admitted = Admitted(Call("r3", "chat", body, {}), early, 0.0, None)
    walk = iter(admitted.candidates[:3])  # as the forwarder takes them
    assert next(walk).name == "small"
    assert admitted._decision is early  # the winner was read without settling
    assert [d.name for d in walk] == ["big"]  # "tiny" is not a fallback for code
    assert admitted.decision.ctx.domain == "code" and admitted.decision.settle is None


def test_an_inference_that_fails_after_the_call_leaves_the_decision_without_a_domain(monkeypatch, caplog):
    _, deferring, eager = _min_quality_deciders()
    body = _body(PROMPTS[0])
    _until_deferred(deferring, eager, body)
    early = deferring.decide(body, {}, "r9")
    assert early.settle is not None

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the classifier")

    monkeypatch.setattr(RouterModel, "estimate", broken)
    final = settled(early)
    assert final.settle is None and final.ctx.domain is None
    # The winner it went to, and the fallbacks of no domain ("tiny" too: only code drops it).
    assert [d.name for d in final.candidates] == ["small", "big", "tiny"]
    assert "the domain inference of r9 failed" in caplog.text


def test_the_pipeline_settles_while_the_upstream_call_waits():
    live = [MappingProxyType({})]
    deferring, eager = _deciders(_catalog(SAME_WINNER), live)
    body = _body(PROMPTS[2])
    _until_deferred(deferring, eager, body)
    early = deferring.decide(body, {}, "r3")
    admitted = Admitted(Call("r3", "chat", body, {}), early, 0.0, None)

    async def upstream_call() -> bool:
        admitted.settle_soon()
        pending = admitted._decision.settle is not None  # the request is written first
        await asyncio.sleep(0)  # the upstream's wait
        return pending and admitted._decision.settle is None

    assert asyncio.run(upstream_call())


# -- the settled decision is the eager one, whatever the catalog ------------------------------------

_quality = st.floats(0.3, 0.97)
_model = st.tuples(st.floats(-7.5, -4.5), _quality,
                   st.dictionaries(st.sampled_from(CLASSES), _quality, max_size=len(CLASSES)))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(models=st.lists(_model, min_size=2, max_size=6), requests=st.lists(
    st.tuples(st.sampled_from(PROMPTS), st.sampled_from((None, "cost", "performance", "balanced")),
              st.sampled_from((16, 256, 2048))), min_size=1, max_size=4),
       min_quality=st.sampled_from((None, 0.5, 0.7)), seed=st.integers(0, 1000))
def test_deferred_or_not_a_request_gets_the_same_decision(models, requests, min_quality, seed):
    catalog = _catalog([(f"m{i}", 10 ** c, q, dq) for i, (c, q, dq) in enumerate(models)])
    rng = random.Random(seed)
    live = [MappingProxyType({})]
    schema = {"constraints": {"min_quality": min_quality}} if min_quality is not None else {}
    policies = PolicySet(default=Policy.model_validate({"pipeline": "default", "selection_schema": schema}))
    deferring, eager = _deciders(catalog, live, policies)
    for i, (prompt, strategy, max_tokens) in enumerate(requests * 8):  # repeated: past the fills
        if rng.random() < 0.03:  # a refresh
            live[0] = MappingProxyType({f"m{rng.randrange(len(models))}": LiveStats(
                samples=rng.randint(1, 50), ttft_ms=rng.uniform(100, 2000), error_rate=rng.uniform(0, 0.2))})
            if rng.random() < 0.7:  # and, mostly, the refill the stats service runs after it
                for _ in deferring.refill():
                    pass
        headers = {"x-selection-strategy": strategy} if strategy else {}
        try:
            early = _decide_twice(deferring, eager, _body(prompt, max_tokens), headers, f"r{i}")
        except Exception as exc:  # no feasible model: both must refuse alike
            with pytest.raises(type(exc)) as refused:
                eager.decide(_body(prompt, max_tokens), headers, f"r{i}")
            assert str(refused.value) == str(exc)
            continue
        if early.settle is not None and early.ctx.domain is None:
            event("the domain waited")  # (hypothesis statistics: how often the property ran that path)


# -- through a gateway over the simulator ----------------------------------------------------------

def _waits(decider: Decider) -> list[bool]:
    """Whether each request `decider` decides from here on had its domain inference wait for the call."""
    waited: list[bool] = []
    later = decider._later

    def spy(*args):
        decision = later(*args)
        waited.append(decision.settle is not None and decision.ctx.domain is None)
        return decision

    decider._later = spy  # type: ignore[method-assign]
    return waited


def test_a_fallback_after_the_domain_waited_goes_down_the_settled_ranking(gateway_factory):
    from tests import loopback
    from tests.conftest import TEST_DEPLOYMENTS

    # No model is graded for a domain: every domain ranks as none does, so no request waits for the
    # inference, the first of a shape included.
    deployments = {n: {k: v for k, v in meta.items() if k != "domain_quality"} for n, meta in TEST_DEPLOYMENTS.items()}
    gw = gateway_factory(deployments, stats_refresh_s=60)  # one live map for the whole test
    state = gw.state
    finished = []
    state.pipeline.subscribe(finished.append)
    waited = _waits(state.decider)
    keys = [f"{i:032x}" for i in range(4)]  # equal lengths: one request shape
    for i, key in enumerate(keys):
        # The last one's winner fails twice (its attempt and one retry), then the next answers.
        content = f"[sim:fail_first={2 if i == 3 else 0};key={key}] Write a Python function that reverses a list."
        r = loopback.post(f"{gw.url}/v1/chat/completions", timeout=30,
                          json={"model": "auto", "max_tokens": 32, "messages": [{"role": "user", "content": content}]})
        assert r.status_code == 200, r.text
    assert waited == [True, True, True, True]
    for _ in range(100):
        if len(finished) == 4:
            break
        time.sleep(0.02)
    event = finished[-1]
    decision = event.decision
    assert decision.settle is None and decision.ctx.domain == "code"
    assert any(n.startswith("domain inferred from the prompt: code") for n in decision.notes)
    winner, runner_up = (c.model.name for c in decision.ranking.ranked[:2])
    assert [a.deployment for a in event.attempts] == [winner, winner]
    assert event.served.name == runner_up == r.headers["x-gateway-model"]
    assert r.headers["x-gateway-decision"].startswith(f"winner={winner};")
    # A stream waits for it no more; its record is the settled decision's too.
    for key in ("e" * 32, "f" * 32):
        content = f"[sim:fail_first=0;key={key}] Write a Python function that reverses a list."
        with loopback.stream("POST", f"{gw.url}/v1/chat/completions", timeout=30, json={
                "model": "auto", "max_tokens": 32, "stream": True, "messages": [{"role": "user", "content": content}]}) as r:
            assert r.status_code == 200 and b"[DONE]" in r.read()
    assert waited[-2:] == [True, True]
    for _ in range(100):
        if len(finished) == 6:
            break
        time.sleep(0.02)
    assert finished[-1].decision.ctx.domain == "code" and finished[-1].decision.settle is None
    assert finished[-1].ttft_ms is not None


def test_after_each_stats_refresh_a_shape_that_keeps_coming_goes_first(gateway_factory):
    from tests import loopback

    gw = gateway_factory(stats_refresh_s=0.5)  # graded domains: a new shape infers first until it fills
    state = gw.state
    waited = _waits(state.decider)

    def ask(i: int) -> None:
        content = f"[sim:key={i:032x}] Write a Python function that reverses a list."  # one shape
        r = loopback.post(f"{gw.url}/v1/chat/completions", timeout=30,
                          json={"model": "auto", "max_tokens": 32, "messages": [{"role": "user", "content": content}]})
        assert r.status_code == 200, r.text

    for i in range(12):
        ask(i)
        if waited[-1]:
            break
    assert waited[-1], waited  # filled: the inference waits for the call
    for i in range(3):
        # Just after a refresh (a new live map), its first request: without the refill that the
        # stats service runs after each refresh, it would be the shape's fill, with the inference first.
        seen = state.stats.live
        deadline = time.monotonic() + 10
        while state.stats.live is seen and time.monotonic() < deadline:
            time.sleep(0.005)
        assert state.stats.live is not seen
        time.sleep(0.05)  # the refill's steps (a few rankings); the next refresh is 0.5 s away
        ask(100 + i)
        assert waited[-1], waited


@pytest.mark.parametrize("given", ["header", "policy"])
def test_a_given_domain_hashes_no_prompt_that_nothing_reads(given: str, monkeypatch) -> None:
    # With the domain given and no per-prompt quality model, the estimate would only hash the
    # prompt into features, which only a feedback learner that wants them reads: without one the
    # hashing is skipped (it ran before the upstream call), and the decision is the same.
    live = [MappingProxyType({})]
    schema = {"default_domain": "code"} if given == "policy" else {}
    policies = PolicySet(default=Policy.model_validate({"pipeline": "default", "selection_schema": schema}))
    calls: list[str] = []
    estimate = RouterModel.estimate
    monkeypatch.setattr(RouterModel, "estimate", lambda self, text, *a, **k: calls.append(text) or
                        estimate(self, text, *a, **k))
    catalog = _catalog(SAME_WINNER)
    make = lambda keep: Decider(catalog, SelectionEngine(), lambda: policies,  # noqa: E731
                                lambda pipeline: live[0], keep_features=lambda: keep)
    headers = {"x-task-domain": "code"} if given == "header" else {}
    body = _body(PROMPTS[3])  # a chat prompt: the given domain, not an inferred one, must rule
    lean = settled(make(False).decide(body, headers, "r1"))
    assert calls == [] and lean.features is None
    assert lean.ctx.domain == "code" and lean.ctx.domain_source == given
    keeping = settled(make(True).decide(body, headers, "r1"))
    assert calls == [PROMPTS[3]] and keeping.features is not None
    _same(lean, replace(keeping, features=None))
    # Nothing given: the domain is still inferred (here, with the inference first or later).
    inferred = settled(make(False).decide(body, {}, "r2"))
    if given == "header":
        assert len(calls) == 2 and inferred.ctx.domain_source == "inferred", inferred.ctx
