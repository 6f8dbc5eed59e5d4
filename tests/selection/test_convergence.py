"""Live figures converge and move decisions: outcomes fed into the memory stats store (on a fake
clock), selections made from its snapshots, as the gateway does between two stats refreshes.

Deterministic: seeded jitter, no sleeping, no threads.
"""

from __future__ import annotations

import random
import statistics
from collections import Counter

import pytest

from gateway.selection import (
    LiveStats,
    RequestContext,
    SelectionEngine,
    SelectionParams,
)
from gateway.stats import MemoryStatsStore, Outcome, StatsConfig

from ._factory import model

T0 = 1_700_000_000.0


class _World:
    """A stats store on a fake clock, and deployments that answer with seeded jitter."""

    def __init__(self, half_life_s: float = 60.0, seed: int = 7) -> None:
        self.now = T0
        self.store = MemoryStatsStore(StatsConfig(half_life_s=half_life_s), clock=lambda: self.now)
        self.rng = random.Random(seed)

    def live(self) -> dict[str, LiveStats]:
        return self.store.snapshot()

    def answer(self, name: str, ttft_ms: float, tokens_per_s: float, tokens: int, stream: bool,
               gap_s: float, cap: int | None = None) -> float:
        """One request's outcome (±20-25 % jitter on each part, the answer cut at `cap`),
        recorded after `gap_s`; its latency."""
        out = max(1, round(tokens * self.rng.uniform(0.75, 1.25)))
        out = out if cap is None else min(out, cap)
        ttft = ttft_ms * self.rng.uniform(0.8, 1.2)
        latency = ttft + out * 1000.0 / tokens_per_s * self.rng.uniform(0.8, 1.2)
        self.now += gap_s
        self.store.record_now(Outcome(name, None, "ok", latency, ttft if stream else None, out, ts=self.now))
        return latency


# Catalog guesses 4x too slow and answers of 512 tokens; the deployment answers ~40 tokens in
# ~150 ms + 40 / 120 tok/s.
_PESSIMISTIC = dict(ttft_ms=600.0, tokens_per_s=30.0)
_OPTIMISTIC = dict(ttft_ms=20.0, tokens_per_s=1_000.0)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize("prior", [_PESSIMISTIC, _OPTIMISTIC], ids=["catalog-4x-slow", "catalog-optimistic"])
@pytest.mark.parametrize("gap_s", [1.0, 10.0], ids=["1-per-s", "1-per-10s"])
# Answers run ~40 tokens: a max_tokens of 300 does not make them longer, one of 20 cuts them.
@pytest.mark.parametrize("max_tokens", [None, 300, 20], ids=["open-length", "max-300", "max-20"])
def test_expected_latency_converges_to_what_is_measured(stream, prior, gap_s, max_tokens):
    world = _World()
    engine = SelectionEngine()
    m = model("m", **prior)
    ctx = RequestContext("c", 200, max_output_tokens=max_tokens, stream=stream)
    errors = []
    for i in range(100):
        expected = engine.rank(ctx, [m], SelectionParams(), world.live()).winner.expected_latency_ms
        realised = world.answer("m", 150.0, 120.0, 40, stream, gap_s, max_tokens)
        if i >= 50:  # after 50 requests to the deployment
            errors.append(abs(expected - realised) / realised)
    assert statistics.median(errors) <= 0.25


def test_expected_output_learns_the_measured_length():
    world = _World()
    engine = SelectionEngine()
    m = model("m", **_PESSIMISTIC)
    ctx = RequestContext("c", 200)
    first = engine.rank(ctx, [m], SelectionParams(), world.live()).winner
    assert first.reasons[0].startswith("cost: $") and "(512 tokens out, prior)" in first.reasons[0]
    for _ in range(50):
        world.answer("m", 150.0, 120.0, 40, False, 1.0)
    stats = world.live()["m"]
    winner = engine.rank(ctx, [m], SelectionParams(), world.live(), detail=1).winner
    assert winner.expected_cost_usd == pytest.approx(
        200 * m.input_cost_per_token + stats.output_tokens * m.output_cost_per_token, rel=0.02
    )
    latency = next(r for r in winner.reasons if r.startswith("latency:"))
    assert f"over {stats.samples} recent requests; prior" in latency


# Victim and peer: same price and speed prior, the victim somewhat better. A third model is much
# better and 100x dearer: balanced keeps it out, so the victim's traffic can only go to the peer.
_CATALOG = (
    model("victim", quality=0.80, ttft_ms=100.0, tokens_per_s=100.0),
    model("peer", quality=0.74, ttft_ms=100.0, tokens_per_s=100.0),
    model("premium", quality=0.90, ttft_ms=100.0, tokens_per_s=100.0,
          input_cost_per_token=1e-4, output_cost_per_token=2e-4),
)
_SPEED = {"victim": 100.0, "peer": 100.0, "premium": 100.0}  # TTFT ms; throughput 100 tok/s


def _run(world: _World, engine: SelectionEngine, n: int, stream: bool) -> list[str]:
    """`n` requests one after another: each decided on the snapshot before the previous answer
    is in (a stats refresh behind), then answered; the next one starts when it is done."""
    served = []
    pending: list[Outcome] = []
    ctx = RequestContext("c", 200, stream=stream)
    for _ in range(n):
        live = world.live()
        for o in pending:
            world.store.record_now(o)
        pending.clear()
        name = engine.rank(ctx, _CATALOG, SelectionParams(), live).winner.model.name
        ttft = _SPEED[name] * world.rng.uniform(0.9, 1.1)
        latency = ttft + 30 * 10.0 * world.rng.uniform(0.9, 1.1)
        world.now += latency / 1000
        pending.append(Outcome(name, None, "ok", latency, ttft if stream else None, 30, ts=world.now))
        served.append(name)
    return served


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize("half_life_s", [5.0, 60.0])
def test_a_model_ten_times_slower_loses_its_traffic_and_wins_it_back(stream, half_life_s):
    world, engine = _World(half_life_s), SelectionEngine()
    healthy = _run(world, engine, 40, stream)
    assert Counter(healthy[5:])["victim"] == 35, healthy

    _SPEED["victim"] = 10 * (100.0 + 300.0) - 300.0  # 10x the whole answer: 4 s instead of 0.4 s
    try:
        slowed = _run(world, engine, 60, stream)
    finally:
        _SPEED["victim"] = 100.0
    # Within a few requests it is out (more of them when a long half-life keeps its fast past in
    # the mean), then tried again each time its figures go stale: two half-lives without a sample.
    assert slowed.index("peer") <= 6, slowed
    assert Counter(slowed)["victim"] <= 8, slowed
    assert "premium" not in slowed

    # Recovered: tried again once its slow figures are stale (at most two half-lives after its
    # last slow answer, 0.4 s per request here), it answers fast and keeps the traffic.
    per_half_life = int(half_life_s / 0.4)
    recovered = _run(world, engine, 2 * per_half_life + 40, stream)
    back = recovered.index("victim")
    assert back <= 2 * per_half_life + 5, recovered
    assert Counter(recovered[back:])["victim"] >= len(recovered[back:]) - 1, recovered[back:]
