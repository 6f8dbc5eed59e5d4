"""One contract suite, run against every backend: memory, single Redis, Redis Cluster."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from redis.crc import key_slot

from gateway.stats import MemoryStatsStore, Outcome, StatsConfig, StatsStore
from gateway.stats.events import CLIENT_SIDE, NANOS_PER_USD, RequestRecord, entry_order, usd_to_nanos
from gateway.selection.types import LiveStats
from gateway.stats.redis_store import RedisStatsStore
from tests._wait import wait_until_async

COOLDOWN_S = 0.3
CONFIG = StatsConfig(cooldown_s=COOLDOWN_S, probe_ttl_s=5.0)


def _out(dep: str = "m1", status: str = "ok", **kw: object) -> Outcome:
    base: dict[str, object] = {"pipeline": None, "latency_ms": 100.0, "ts": time.time()}
    base.update(kw)
    return Outcome(deployment=dep, status=status, **base)  # type: ignore[arg-type]


async def _half_open(store: StatsStore) -> LiveStats:
    """Wait out the cool-down (COOLDOWN_S) by polling, not by sleeping a fixed time."""
    async def state() -> LiveStats | None:
        s = (await store.read_stats())["m1"]
        return s if s.circuit_state == "half_open" else None

    return await wait_until_async(state, "the cool-down to end (circuit half-open)", timeout=COOLDOWN_S + 10)


def _new_store(request: pytest.FixtureRequest, config: StatsConfig) -> StatsStore:
    if request.param == "memory":
        return MemoryStatsStore(config)
    url = request.getfixturevalue("redis_server" if request.param == "redis" else "redis_cluster")
    return RedisStatsStore(url, key_prefix=f"t{uuid.uuid4().hex[:8]}", config=config)


@pytest.fixture(params=["memory", "redis", "cluster"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[StatsStore]:
    s = _new_store(request, CONFIG)
    yield s
    await s.close()


@pytest.fixture(params=["memory", "redis", "cluster"])
async def capped_store(request: pytest.FixtureRequest) -> AsyncIterator[StatsStore]:
    """Room for four feedback posteriors per deployment (`StatsConfig.max_posteriors`)."""
    s = _new_store(request, replace(CONFIG, max_posteriors=4))
    yield s
    await s.close()


async def test_ping(store: StatsStore) -> None:
    assert await store.ping() is True


async def test_record_and_read_figures(store: StatsStore) -> None:
    now = time.time()
    await store.record_many(
        [
            _out(latency_ms=1000.0, ttft_ms=200.0, output_tokens=81, cost_usd=0.01, ts=now),
            _out(latency_ms=3000.0, ttft_ms=400.0, output_tokens=261, cost_usd=0.03, ts=now),
            _out(latency_ms=500.0, output_tokens=10, cost_usd=0.002, ts=now),  # not streamed
            _out(status="server_error", latency_ms=50.0, ts=now),
            _out("m2", latency_ms=10.0, ts=now),
        ]
    )
    stats = await store.read_stats(now=now)
    m1 = stats["m1"]
    assert m1.samples == 4
    assert m1.latency_ms == pytest.approx(1500.0)  # successes only
    assert m1.ttft_ms == pytest.approx(300.0)
    assert m1.tokens_per_s == pytest.approx((81 + 261) / ((800 + 2600) / 1000))
    assert m1.cost_usd == pytest.approx(0.014)
    assert m1.output_tokens == pytest.approx(352 / 3)
    assert m1.error_rate == pytest.approx(0.25)
    assert dict(m1.error_rates) == pytest.approx({"server_error": 0.25})
    assert not m1.circuit_open and m1.circuit_state == "closed"
    assert stats["m2"].samples == 1 and stats["m2"].error_rate == 0.0


async def test_time_decay_half_life(store: StatsStore) -> None:
    now = time.time()
    hl = CONFIG.half_life_s
    # Newer first, then an older one in a later batch: order must not matter.
    await store.record_many([_out(latency_ms=400.0, ts=now)])
    await store.record_many([_out(latency_ms=100.0, ts=now - hl)])
    s = (await store.read_stats(now=now))["m1"]
    assert s.latency_ms == pytest.approx((0.5 * 100 + 400) / 1.5)
    assert s.samples == 2  # 1.5 effective samples
    later = (await store.read_stats(now=now + 3 * hl))["m1"]
    assert later.samples == 0  # no sample for three half-lives: stale
    assert later.latency_ms == pytest.approx(s.latency_ms)  # ratios are not changed by decay


async def test_stale_figures_restart_with_the_next_sample(store: StatsStore) -> None:
    # A slow spell, then silence until the figures are stale (samples reads 0): the next sample
    # starts them afresh instead of averaging with the old slowness.
    now = time.time()
    hl = CONFIG.half_life_s
    await store.record_many([_out(latency_ms=9_000.0, ttft_ms=3_000.0, output_tokens=32, ts=now)])
    await store.record_many([_out(status="server_error", latency_ms=9_000.0, ts=now)])
    faded = (await store.read_stats(now=now + 2.1 * hl))["m1"]
    assert faded.samples == 0 and faded.latency_ms == pytest.approx(9_000.0)
    await store.record_many([_out(latency_ms=300.0, output_tokens=30, ts=now + 2.1 * hl)])
    fresh = (await store.read_stats(now=now + 2.1 * hl))["m1"]
    assert fresh.samples == 1 and fresh.latency_ms == pytest.approx(300.0)
    assert fresh.output_tokens == pytest.approx(30.0)
    assert fresh.ttft_ms is None and fresh.stream_samples == 0 and fresh.error_rate == 0.0
    assert dict(fresh.error_rates) == {}
    # Still worth more than half a sample: decayed and kept, as always.
    await store.record_many([_out(latency_ms=900.0, ts=now + 3.0 * hl)])
    kept = (await store.read_stats(now=now + 3.0 * hl))["m1"]
    w = 2 ** -0.9
    assert kept.samples == 2 and kept.latency_ms == pytest.approx((w * 300.0 + 900.0) / (w + 1))


async def test_figures_are_stale_after_two_silent_half_lives(store: StatsStore) -> None:
    # However much traffic came before: a deployment that had plenty of samples, then none for
    # two half-lives, reads 0 samples, and its next sample starts the figures afresh.
    now = time.time()
    hl = CONFIG.half_life_s
    await store.record_many([_out(latency_ms=5_000.0, ts=now) for _ in range(40)])
    assert (await store.read_stats(now=now + 1.9 * hl))["m1"].samples == 11  # 40 / 2^1.9
    assert (await store.read_stats(now=now + 2.0 * hl))["m1"].samples == 0
    await store.record_many([_out(latency_ms=200.0, ts=now + 2.0 * hl)])
    s = (await store.read_stats(now=now + 2.0 * hl))["m1"]
    assert s.samples == 1 and s.latency_ms == pytest.approx(200.0)


async def test_a_slow_deployment_is_not_stale_while_an_answer_may_be_on_its_way(store: StatsStore) -> None:
    # Mean latency 50 s: stale after 3 x 50 s of silence, not after two half-lives (120 s). A
    # lone sample also keeps counting as one until then (the count is at least 1).
    now = time.time()
    await store.record_many([_out(latency_ms=50_000.0, ts=now)])
    assert (await store.read_stats(now=now + 126.0))["m1"].samples == 1
    assert (await store.read_stats(now=now + 150.0))["m1"].samples == 0


async def test_stream_samples_count_successful_streams(store: StatsStore) -> None:
    now = time.time()
    await store.record_many(
        [_out(ttft_ms=100.0, output_tokens=20, ts=now) for _ in range(3)]
        + [_out(output_tokens=20, ts=now), _out(status="timeout", ttft_ms=50.0, ts=now)]
    )
    s = (await store.read_stats(now=now))["m1"]
    assert (s.samples, s.stream_samples) == (5, 3)


async def test_error_classes(store: StatsStore) -> None:
    statuses = ["ok", "rate_limit", "timeout", "connection", "client_error", "context_window", "auth", "ok"]
    # One timestamp, read back at that time: the figures are exact counts, not decayed ones (with
    # a timestamp each, taken microseconds to milliseconds apart on a busy machine, the ratios
    # drift past pytest.approx's 1e-6).
    now = time.time()
    await store.record_many([_out(status=st, ts=now) for st in statuses])
    s = (await store.read_stats(now=now))["m1"]
    assert s.samples == 8
    assert s.error_rate == pytest.approx(3 / 8)  # server-side classes only
    assert dict(s.error_rates) == pytest.approx(
        {k: 1 / 8 for k in ("rate_limit", "timeout", "connection", "client_error", "context_window", "auth")}
    )


async def test_client_errors_never_trip(store: StatsStore) -> None:
    await store.record_many([_out(status=st) for st in ["client_error", "auth", "context_window"] * 10])
    s = (await store.read_stats())["m1"]
    assert not s.circuit_open and s.circuit_state == "closed"
    assert await store.try_acquire_probe("m1")


async def test_circuit_open_half_open_close(store: StatsStore) -> None:
    await store.record_many([_out(status="server_error") for _ in range(4)])
    assert (await store.read_stats())["m1"].circuit_state == "closed"
    await store.record_many([_out(status="timeout")])  # 5th consecutive
    s = (await store.read_stats())["m1"]
    assert s.circuit_open and s.circuit_state == "open"
    assert not await store.try_acquire_probe("m1")
    s = await _half_open(store)
    assert not s.circuit_open
    assert await store.try_acquire_probe("m1")  # the one probe
    assert not await store.try_acquire_probe("m1")
    assert (await store.read_stats())["m1"].circuit_open  # probe slot taken
    await store.record_many([_out()])
    s = (await store.read_stats())["m1"]
    assert s.circuit_state == "closed" and not s.circuit_open
    assert await store.try_acquire_probe("m1")


async def test_half_open_failure_reopens(store: StatsStore) -> None:
    await store.record_many([_out(status="connection") for _ in range(5)])
    await _half_open(store)
    assert await store.try_acquire_probe("m1")
    await store.record_many([_out(status="rate_limit")])
    s = (await store.read_stats())["m1"]
    assert s.circuit_state == "open" and s.circuit_open
    assert not await store.try_acquire_probe("m1")
    await _half_open(store)
    assert await store.try_acquire_probe("m1")  # a fresh probe after the new cool-down


@pytest.mark.parametrize("status", sorted(CLIENT_SIDE))
async def test_a_client_side_probe_outcome_frees_the_slot_at_once(store: StatsStore, status: str) -> None:
    """A probe spoilt by its client (a 400, an oversized prompt, a bad key, a hang-up) says nothing
    about the deployment: the next request probes now, not after `probe_ttl_s` (5 s here)."""
    await store.record_many([_out(status="server_error") for _ in range(5)])
    await store.record_many([_out(status=status)])  # while cooling: nothing to free, nothing cut short
    assert (await store.read_stats())["m1"].circuit_state == "open"
    await _half_open(store)
    assert await store.try_acquire_probe("m1")
    await store.record_many([_out(status=status)])
    s = (await store.read_stats())["m1"]
    assert s.circuit_state == "half_open" and not s.circuit_open  # neither closed nor re-opened
    assert await store.try_acquire_probe("m1")  # the next request is the probe
    assert not await store.try_acquire_probe("m1")  # ... and the only one
    await store.record_many([_out()])
    assert (await store.read_stats())["m1"].circuit_state == "closed"


async def test_after_a_freed_probe_a_server_failure_still_reopens(store: StatsStore) -> None:
    await store.record_many([_out(status="timeout") for _ in range(5)])
    await _half_open(store)
    assert await store.try_acquire_probe("m1")
    await store.record_many([_out(status="client_error"), _out(status="cancelled")])
    assert await store.try_acquire_probe("m1")
    await store.record_many([_out(status="server_error")])
    s = (await store.read_stats())["m1"]
    assert s.circuit_state == "open" and s.circuit_open
    assert not await store.try_acquire_probe("m1")


async def test_a_late_older_success_does_not_end_a_run_of_failures(store: StatsStore) -> None:
    # Replica B's success reaches the store after replica A's failures that came later: the run
    # of failures goes on, and the fifth one trips the breaker.
    now = time.time()
    await store.record_many([_out(status="server_error", ts=now + i) for i in range(4)])
    await store.record_many([_out(ts=now - 1)])
    await store.record_many([_out(status="server_error", ts=now + 4)])
    assert (await store.read_stats())["m1"].circuit_open


async def test_a_newer_success_ends_the_run(store: StatsStore) -> None:
    now = time.time()
    await store.record_many([_out(status="server_error", ts=now + i) for i in range(4)])
    await store.record_many([_out(ts=now + 4)])
    await store.record_many([_out(status="server_error", ts=now + 5)])
    assert not (await store.read_stats())["m1"].circuit_open


async def test_error_rate_trips_without_consecutive_run(store: StatsStore) -> None:
    now = time.time()
    pattern = ["server_error", "server_error", "ok"] * 3  # 9 samples, 6 failures, never 3 in a row
    await store.record_many([_out(status=st, ts=now) for st in pattern])
    assert not (await store.read_stats())["m1"].circuit_open  # fewer than min_samples
    await store.record_many([_out(status="server_error", ts=now)])  # 10th: 7/10 failed
    assert (await store.read_stats())["m1"].circuit_open


async def test_budget_exact_under_concurrency(store: StatsStore) -> None:
    rng = random.Random(7)
    amounts = [round(rng.uniform(0, 0.05), 9) for _ in range(200)] + [0.1] * 50
    results = await asyncio.gather(*(store.add_spend("pipe-a", a) for a in amounts))
    expected = sum(usd_to_nanos(a) for a in amounts) / NANOS_PER_USD
    totals = (await store.get_spend(["pipe-a", "pipe-none"]))
    assert totals["pipe-a"].day == expected and totals["pipe-a"].month == expected
    assert totals["pipe-none"].day == 0.0
    assert max(r.day for r in results) == expected  # the last add saw the full total
    # Outcome costs count too, and `get_spend()` without names lists every pipeline with spend.
    await store.record_many([_out(pipeline="pipe-b", cost_usd=0.001) for _ in range(300)])
    everything = await store.get_spend()
    assert everything["pipe-b"].day == 0.3 and everything["pipe-b"].month == 0.3
    assert set(everything) >= {"pipe-a", "pipe-b"}


async def test_feedback_posterior(store: StatsStore) -> None:
    for score, domain in [(1.0, "code"), (0.5, "code"), (0.0, "math"), (1.0, None)]:
        await store.add_feedback("m1", domain, score)
    quality = (await store.read_quality())["m1"]
    assert quality[None].alpha == pytest.approx(2.5) and quality[None].beta == pytest.approx(1.5)
    assert quality["code"].mean == pytest.approx(0.75) and quality["code"].samples == pytest.approx(2)
    assert quality["math"].mean == pytest.approx(0.0)
    s = (await store.read_stats())["m1"]  # feedback alone makes a deployment visible
    assert s.quality == pytest.approx(2.5 / 4) and s.quality_samples == 4
    assert dict(s.domain_quality) == pytest.approx({"code": 0.75, "math": 0.0})
    assert s.samples == 0 and s.latency_ms is None


async def test_feedback_makes_no_new_domain_posterior_past_the_cap(capped_store: StatsStore) -> None:
    # The second guard behind feedback keeping only known domains: whatever reaches the store,
    # every refresh reads a bounded number of posteriors per deployment.
    for domain in ["d0", "d1", "d2", "d3", "d4"]:
        await capped_store.add_feedback("m1", domain, 1.0)
    await capped_store.add_feedback("m1", "d0", 0.0)  # one it has: still learned
    await capped_store.add_feedback("m1", "d9", 0.5, "p1")  # a pipeline's overall: always learned
    await capped_store.add_feedback("m2", "d4", 1.0)  # the cap is per deployment
    quality = await capped_store.read_quality()
    assert set(quality["m1"]) == {None, "d0", "d1", "d2", "@p1"}
    assert quality["m1"][None].samples == pytest.approx(6) and quality["m1"]["d0"].mean == pytest.approx(0.5)
    assert quality["m1"]["@p1"].samples == pytest.approx(1)
    assert set(quality["m2"]) == {None, "d4"}


async def test_a_re_sent_probe_gets_the_slot_its_first_run_took(store: StatsStore) -> None:
    """redis-py re-sends a command whose reply timed out; the re-run must not find its own slot taken."""
    if not isinstance(store, RedisStatsStore):
        pytest.skip("Redis script only")
    await store.record_many([_out(status="connection") for _ in range(5)])
    await _half_open(store)
    _, c, cool, probe, _ = store.dep_keys("m1")
    run = lambda token: store._run([("script", "probe", (c, cool, probe), [5000, token])])  # noqa: E731
    assert await run("first") == [1]
    assert await run("first") == [1]  # the re-sent call
    assert await run("other") == [0]  # anyone else still finds it taken
    assert not await store.try_acquire_probe("m1")


async def test_redis_keys_have_ttls_and_share_slots(store: StatsStore) -> None:
    if not isinstance(store, RedisStatsStore):
        pytest.skip("Redis key layout only")
    await store.record_many(
        [_out("dep-a", status="server_error", pipeline="p1", cost_usd=0.5) for _ in range(5)] + [_out("dep-b")]
    )
    await store.add_feedback("dep-a", "code", 0.9)
    await store.add_spend("p2", 1.0)
    assert await store.try_acquire_probe("dep-b")
    keys = []
    nodes = store.client.get_primaries() if hasattr(store.client, "get_primaries") else [None]
    for node in nodes:
        kw = {"target_nodes": node} if node is not None else {}
        keys += [k async for k in store.client.scan_iter(match=f"{store.prefix}:*", **kw)]
    assert len(keys) >= 9
    for key in keys:
        assert await store.client.pttl(key) != -1, key  # -1: no TTL (-2: already expired)
    slots: dict[str, set[int]] = {}
    for key in keys:
        tag = key[key.index("{") + 1 : key.index("}")]
        slots.setdefault(tag, set()).add(key_slot(key.encode()))
    assert {"dep:dep-a", "dep:dep-b", "budget:p1", "budget:p2", "idx"} <= set(slots)
    assert all(len(s) == 1 for s in slots.values()), slots
    assert len(slots["dep:dep-a"] | slots["budget:p1"] | slots["idx"]) > 1  # tags do spread


# -- shared state beyond live figures (docs/scaling.md) ---------------------------------------------


def _rec(rid: str, principal: str | None = "alice", **kw: object) -> RequestRecord:
    base: dict[str, object] = {"deployment": "m1", "domain": "code", "pipeline": "p1", "cost_usd": 0.25,
                               "features": "AAEC"}
    base.update(kw)
    return RequestRecord(rid, principal=principal, **base)  # type: ignore[arg-type]


async def test_a_request_record_is_taken_once_and_only_by_its_key(store: StatsStore) -> None:
    await store.put_requests([_rec("r1"), _rec("r2", principal=None, domain=None, pipeline=None)])
    assert (await store.take_request("r1", "mallory")).status == "denied"  # left in place
    taken = await store.take_request("r1", "alice")
    assert taken.status == "ok" and taken.record == _rec("r1")
    assert (await store.take_request("r1", "alice")).status == "missing"  # learned from once
    assert (await store.take_request("r2", "alice")).status == "denied"  # made without a key
    assert (await store.take_request("r2", None)).record == _rec("r2", principal=None, domain=None, pipeline=None)
    assert (await store.take_request("never", None)).status == "missing"
    # A re-sent batch (at-least-once delivery) must not bring a consumed record back.
    await store.put_requests([_rec("r1")])
    assert (await store.take_request("r1", None)).status == "missing"
    await store.put_requests([_rec("r3")])
    await store.drop_request("r3")
    assert (await store.take_request("r3", None)).status == "missing"


async def test_concurrent_takes_consume_a_record_exactly_once(store: StatsStore) -> None:
    await store.put_requests([_rec(f"c{i}") for i in range(20)])
    results = await asyncio.gather(*(store.take_request(f"c{i % 20}", "alice") for i in range(100)))
    assert sum(r.status == "ok" for r in results) == 20
    assert {r.record.request_id for r in results if r.record is not None} == {f"c{i}" for i in range(20)}


async def test_request_records_expire() -> None:
    clock = [1000.0]
    store = MemoryStatsStore(StatsConfig(request_ttl_s=10.0), clock=lambda: clock[0])
    await store.put_requests([_rec("old")])
    clock[0] += 11.0
    await store.put_requests([_rec("new")])
    assert (await store.take_request("old", None)).status == "missing"
    assert (await store.take_request("new", None)).status == "ok"


async def test_learning_log_reads_after_an_id_and_checkpoints_trim_behind_the_previous_one(
    store: StatsStore,
) -> None:
    lineage = uuid.uuid4().hex[:8]
    first, floor, checkpoint = await store.sync_learning(lineage, "a", "d1", None)
    assert [(e.origin, e.blob) for e in first] == [("a", "d1")] and floor is None and checkpoint is None
    second, _, _ = await store.sync_learning(lineage, "b", "d2", first[-1].id)
    assert [(e.origin, e.blob) for e in second] == [("b", "d2")]
    everything, _, _ = await store.sync_learning(lineage, "a", None, None)
    assert [e.blob for e in everything] == ["d1", "d2"]
    assert entry_order(everything[0].id) < entry_order(everything[1].id)
    assert await store.load_learning_checkpoint(lineage) is None

    assert await store.save_learning_checkpoint(lineage, everything[0].id, "sum1")
    assert not await store.save_learning_checkpoint(lineage, everything[0].id, "stale")  # not newer
    assert await store.load_learning_checkpoint(lineage) == (everything[0].id, "sum1")
    third, _, checkpoint = await store.sync_learning(lineage, "a", "d3", everything[-1].id)
    assert checkpoint == everything[0].id
    assert await store.save_learning_checkpoint(lineage, third[-1].id, "sum3")
    assert await store.load_learning_checkpoint(lineage) == (third[-1].id, "sum3")
    # Trimmed before the previous checkpoint (d1's): d1 stays, a reader at d1 misses nothing.
    left, floor, checkpoint = await store.sync_learning(lineage, "a", None, None)
    assert floor == everything[0].id and checkpoint == third[-1].id
    assert [e.blob for e in left] == ["d1", "d2", "d3"]
    limited, _, _ = await store.sync_learning(lineage, "a", None, None, limit=2)
    assert [e.blob for e in limited] == ["d1", "d2"]


async def test_history_adds_up_across_writers_and_keeps_the_newest_decisions(store: StatsStore) -> None:
    now = int(time.time()) // 5 * 5
    await store.add_history({now - 5: {"m:a:ok": 2.0}, now: {"m:a:ok": 1.0, "m:a:lat": 120.5}}, ["d1", "d2"], keep=3)
    await store.add_history({now: {"m:a:ok": 3.0, "p:x:a": 1.0}}, ["d3", "d4"], keep=3)
    buckets, decisions = await store.read_history(now - 5, 3)
    assert buckets[now] == {"m:a:ok": 4.0, "m:a:lat": 120.5, "p:x:a": 1.0}
    assert buckets[now - 5] == {"m:a:ok": 2.0}
    assert decisions == ["d2", "d3", "d4"]
    later, _ = await store.read_history(now, 3)
    assert set(later) == {now}


async def test_read_view_agrees_with_a_direct_read(store: StatsStore) -> None:
    now = time.time()
    await store.record_many([_out("v1", latency_ms=200.0, pipeline="pv", cost_usd=0.5, ts=now)]
                            + [_out("v2", status="server_error", ts=now) for _ in range(5)])
    live, spend = await store.read_view(now=now)
    assert live == await store.read_stats(now=now)
    assert spend["pv"] == (await store.get_spend(["pv"]))["pv"]
    assert live["v2"].circuit_open and live["v2"].circuit_state == "open"


async def test_one_replica_publishes_the_view_the_others_fetch(request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("redis_server")
    prefix = f"t{uuid.uuid4().hex[:8]}"
    a, b = (RedisStatsStore(url, key_prefix=prefix, config=CONFIG) for _ in range(2))
    try:
        now = time.time()
        await a.record_many([_out("w1", latency_ms=300.0, ts=now)] + [_out("w2", status="timeout", ts=now)] * 5)
        live_a, _ = await a.read_view(now=now, every_s=5.0)  # a takes the lease and publishes
        assert await a.client.get(a.view_keys()[1]) == a.replica
        await a.record_many([_out("w1", latency_ms=900.0, ts=now)])
        live_b, _ = await b.read_view(now=now, every_s=5.0)  # b fetches a's snapshot: not the new sample
        assert live_b == live_a and live_b["w1"].latency_ms == pytest.approx(300.0)
        assert live_b["w2"].circuit_open
        # The cool-down is a deadline in the snapshot: past it, the reader sees half-open.
        later, _ = await b.read_view(now=now + COOLDOWN_S + 0.05, every_s=5.0)
        assert later["w2"].circuit_state == "half_open" and not later["w2"].circuit_open
        # A snapshot older than two leases (nobody publishes any more) is not used: b reads afresh.
        fresh, _ = await b.read_view(now=now + 41.0, every_s=5.0)
        assert fresh["w1"].latency_ms == pytest.approx(600.0, rel=0.01)
    finally:
        await a.close()
        await b.close()


async def test_index_names_are_added_once_a_minute_not_on_every_write(request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("redis_server")
    store = RedisStatsStore(url, key_prefix=f"t{uuid.uuid4().hex[:8]}", config=CONFIG)
    try:
        await store.record_many([_out("i1")])
        await store.client.delete(store._index_key("deps"))
        await store.record_many([_out("i1")])
        assert await store.client.smembers(store._index_key("deps")) == set()  # memo: not re-added
        await store.record_many([_out("i2")])  # a new name is
        assert await store.client.smembers(store._index_key("deps")) == {"i2"}
    finally:
        await store.close()


async def test_shared_state_keys_have_ttls_and_spread_over_slots(store: StatsStore) -> None:
    if not isinstance(store, RedisStatsStore):
        pytest.skip("Redis key layout only")
    await store.put_requests([_rec(f"k{i}") for i in range(8)])
    await store.take_request("k0", "alice")
    entries, _, _ = await store.sync_learning("lin", "a", "d1", None)
    await store.save_learning_checkpoint("lin", entries[-1].id, "sum")
    await store.add_history({int(time.time()): {"m:a:ok": 1.0}}, ["d"], keep=5)
    await store.read_view(every_s=1.0)
    keys = []
    nodes = store.client.get_primaries() if hasattr(store.client, "get_primaries") else [None]
    for node in nodes:
        kw = {"target_nodes": node} if node is not None else {}
        keys += [k async for k in store.client.scan_iter(match=f"{store.prefix}:*", **kw)]
    for key in keys:
        assert await store.client.pttl(key) != -1, key
    tags = {key[key.index("{") + 1 : key.index("}")] for key in keys}
    assert {"ql:lin", "hist:recent", "view"} <= tags
    records = {key_slot(k.encode()) for k in keys if k.startswith(f"{store.prefix}:{{rq:")}
    assert len(records) == 8 and len(records) > 1  # one key per request, spread by request id
