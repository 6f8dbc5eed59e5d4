"""One contract suite, run against every backend: memory, single Redis, Redis Cluster."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.crc import key_slot

from gateway.stats import MemoryStatsStore, Outcome, StatsConfig, StatsStore
from gateway.stats.events import NANOS_PER_USD, usd_to_nanos
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


@pytest.fixture(params=["memory", "redis", "cluster"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[StatsStore]:
    if request.param == "memory":
        s: StatsStore = MemoryStatsStore(CONFIG)
    else:
        url = request.getfixturevalue("redis_server" if request.param == "redis" else "redis_cluster")
        s = RedisStatsStore(url, key_prefix=f"t{uuid.uuid4().hex[:8]}", config=CONFIG)
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
    assert later.samples == 0  # 1.5 / 8 effective samples
    assert later.latency_ms == pytest.approx(s.latency_ms)  # ratios are not changed by decay


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
