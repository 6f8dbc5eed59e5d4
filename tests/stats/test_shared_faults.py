"""Sharing through Redis when Redis misbehaves: data lost without a restart (FLUSHALL), a stall
longer than the client's socket timeout (writes whose reply was lost, and re-sent), and the
answers replicas act on meanwhile (probe slots, feedback records)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from gateway.observability._series import SeriesBuffer
from gateway.observability.fleet import FleetHistory
from gateway.security.config import Limits, RateLimitConfig
from gateway.security.keys import Principal
from gateway.security.ratelimit import RateLimiter, RedisCounterStore
from gateway.stats import Outcome, StatsConfig, StatsRecorder, StatsService
from gateway.stats.events import Feedback
from gateway.stats.redis_store import RedisStatsStore

from tests._wait import wait_until_async
from tests.redis_fixtures import RedisProcess

CONFIG = StatsConfig(cooldown_s=0.3)


def _out(dep: str = "m1", status: str = "ok", **kw: Any) -> Outcome:
    return Outcome(deployment=dep, pipeline=kw.pop("pipeline", None), status=status, latency_ms=100.0, **kw)


def _store(url: str, prefix: str, **kw: Any) -> RedisStatsStore:
    return RedisStatsStore(url, key_prefix=prefix, config=CONFIG, timeout_s=kw.pop("timeout_s", 0.5), **kw)


@pytest.fixture
def debug_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A private redis-server that takes DEBUG SLEEP (a stall)."""
    server = RedisProcess(tmp_path / "redis", None, "--enable-debug-command", "yes")
    server.start()
    yield server
    server.stop()


def _lose_replies(store: RedisStatsStore, script: str, times: int = 1) -> list[int]:
    """Make the next `times` calls that run `script` apply it, then fail as a lost reply does."""
    real = store._run
    lost = [0]

    async def run(ops: Sequence[tuple[Any, ...]]) -> list[Any]:
        res = await real(ops)
        if lost[0] < times and any(op[0] == "script" and op[1] == script for op in ops):
            lost[0] += 1
            raise TimeoutError("reply lost")
        return res

    store._run = run  # type: ignore[method-assign]
    return lost


# -- 1. FLUSHALL: the index is rebuilt by the next writes ------------------------------------------


async def test_the_index_is_rebuilt_by_the_next_writes_after_flushall(redis_process: RedisProcess) -> None:
    prefix = f"i{uuid.uuid4().hex[:8]}"
    a, b = _store(redis_process.url, prefix), _store(redis_process.url, prefix)
    try:
        now = time.time()
        await a.record_many([_out("d1", pipeline="p", cost_usd=0.5, ts=now)])
        await a.add_feedback("d2", None, 1.0)
        await a.settle_spend("p2", "r0", 0.25)
        assert set(await b.read_stats()) == {"d1", "d2"}  # the memo is fresh now: a minute
        redis_process.cli("FLUSHALL")  # data gone, scripts kept: no NOSCRIPT to notice it by
        await a.record_many([_out("d1", pipeline="p", cost_usd=0.5, ts=now + 1)])
        await a.add_feedback("d2", None, 1.0)
        await a.settle_spend("p2", "r1", 0.25)
        stats = await b.read_stats()
        assert set(stats) == {"d1", "d2"} and stats["d1"].samples == 1
        assert stats["d2"].quality_samples == 1.0
        spend = await b.get_spend()  # every pipeline with spend: from the index
        assert spend["p"].day == 0.5 and spend["p2"].day == 0.25
        live, spend = await b.read_view()  # the published snapshot sees them too
        assert {"d1", "d2"} <= set(live) and {"p", "p2"} <= set(spend)
    finally:
        await a.close()
        await b.close()


async def test_steady_writes_do_not_re_add_names(redis_process: RedisProcess) -> None:
    """The rebuild costs nothing in steady state: names whose keys exist are not re-added."""
    store = _store(redis_process.url, f"i{uuid.uuid4().hex[:8]}")
    try:
        await store.record_many([_out("d1", pipeline="p", cost_usd=0.5)])
        sent: list[list[Any]] = []
        real = store._run

        async def run(ops):  # type: ignore[no-untyped-def]
            sent.append(list(ops))
            return await real(ops)

        store._run = run  # type: ignore[method-assign]
        for _ in range(3):
            await store.record_many([_out("d1", pipeline="p", cost_usd=0.5)])
        assert len(sent) == 3  # one round trip per batch
        assert not any(op[0] == "cmd" and op[1] == "SADD" for ops in sent for op in ops)
    finally:
        await store.close()


# -- 2. A stall: `reject` budgets judged locally at once -----------------------------------------


async def test_reject_budgets_do_not_wait_for_a_stalled_store(debug_redis: RedisProcess) -> None:
    prefix = f"b{uuid.uuid4().hex[:8]}"
    store = _store(debug_redis.url, prefix)
    svc = StatsService(store, refresh_s=0.05, timeout_s=0.4)
    await svc.start()
    limits = {"daily_limit": 100.0, "monthly_limit": None, "ttl_s": 60.0}
    try:
        assert (await svc.reserve("p", "r-before", 0.01, **limits)).ok
        stall = asyncio.create_task(asyncio.to_thread(debug_redis.cli, "DEBUG", "SLEEP", "2.5"))
        await asyncio.sleep(0.2)
        waits = []
        for i in range(10):
            t0 = time.monotonic()
            verdict = await svc.reserve("p", f"r{i}", 0.01, **limits)
            waits.append(time.monotonic() - t0)
            assert verdict.ok  # judged locally: the budget has room
            await asyncio.sleep(0.1)
        assert sum(1 for w in waits if w > 0.2) <= 1, waits  # only a reservation in flight waits
        assert svc.status == "degraded"
        await stall
        await wait_until_async(lambda: not svc._budget_local, "the store answering again", 5)
        await svc.reserve("p", "r-after", 0.01, **limits)
        res_key = store.reservation_keys("p")[0]
        assert await store.client.hexists(res_key, "r-after")  # held in Redis again
        await wait_until_async(lambda: svc.status == "ok", "recovery", 5)
    finally:
        await svc.stop()


# -- 3. Writes whose reply was lost are applied once ---------------------------------------------


async def test_a_batch_whose_reply_was_lost_is_applied_once(redis_process: RedisProcess) -> None:
    store = _store(redis_process.url, f"o{uuid.uuid4().hex[:8]}")
    lost_record = _lose_replies(store, "record")
    rec = StatsRecorder(store)
    try:
        now = time.time()
        for _ in range(3):
            rec.record(_out("d1", pipeline="p", cost_usd=0.1, ts=now))
        assert not await rec.flush()  # applied, but the reply never came
        assert lost_record == [1] and rec.pending == 3
        assert await rec.flush()  # the same batch again
        stats = await store.read_stats(now)
        assert stats["d1"].samples == 3
        assert (await store.get_spend(["p"]))["p"].day == pytest.approx(0.3, abs=1e-12)

        _lose_replies(store, "feedback")
        rec.feedback(Feedback("d1", None, 1.0))
        rec.feedback(Feedback("d1", None, 0.0))
        assert not await rec.flush()
        assert await rec.flush()
        assert (await store.read_stats(now))["d1"].quality_samples == 2.0
        # Newer batches after a re-sent one are still applied.
        rec.record(_out("d1", pipeline="p", cost_usd=0.1, ts=now))
        assert await rec.flush()
        assert (await store.read_stats(now))["d1"].samples == 4
    finally:
        await store.close()


async def test_a_settlement_whose_reply_was_lost_is_applied_once(redis_process: RedisProcess) -> None:
    store = _store(redis_process.url, f"s{uuid.uuid4().hex[:8]}")
    svc = StatsService(store, refresh_s=0.05, timeout_s=1.0)
    await svc.start()
    try:
        lost = _lose_replies(store, "settle")
        limits = {"daily_limit": 10.0, "monthly_limit": None, "ttl_s": 60.0}
        assert (await svc.reserve("p", "r1", 1.0, **limits)).ok
        svc.settle("p", "r1", 0.25)
        svc.settle("p", "r2", 0.5)  # queued behind it: sent after it, in order
        await wait_until_async(lambda: lost == [1] and not svc._unsettled, "the retried settlements", 5)
        day = (await store.get_spend(["p"]))["p"].day
        assert day == pytest.approx(0.75, abs=1e-12)
        held = await store.client.hget(store.reservation_keys("p")[0], "_total")
        assert int(held) == 0
    finally:
        await svc.stop()


async def test_a_reservation_sent_twice_is_held_once(redis_server: str) -> None:
    store = _store(redis_server, f"v{uuid.uuid4().hex[:8]}")
    try:
        kw = {"daily_limit": 10.0, "monthly_limit": None, "ttl_s": 60.0}
        first = await store.reserve_spend("p", "r1", 1.0, **kw)
        again = await store.reserve_spend("p", "r1", 1.0, **kw)  # redis-py re-sent it
        assert first.ok and again.ok
        assert first.reserved == again.reserved == 1.0
        await store.settle_spend("p", "r1", 0.5)
        assert int(await store.client.hget(store.reservation_keys("p")[0], "_total")) == 0
    finally:
        await store.close()


async def test_rate_limit_increments_whose_reply_was_lost_count_once(redis_server: str) -> None:
    client = Redis.from_url(redis_server, decode_responses=True)
    store = RedisCounterStore(client)
    real_pipeline = client.pipeline
    lose = [1]

    def pipeline(*args: Any, **kw: Any) -> Any:
        pipe = real_pipeline(*args, **kw)
        execute = pipe.execute

        async def execute_then_lose(*a: Any, **k: Any) -> Any:
            res = await execute(*a, **k)
            if lose[0]:
                lose[0] -= 1
                raise TimeoutError("reply lost")
            return res

        pipe.execute = execute_then_lose
        return pipe

    client.pipeline = pipeline  # type: ignore[method-assign]
    prefix = "t" + uuid.uuid4().hex[:8]
    now = [1_000_040.0]
    limiter = RateLimiter(RateLimitConfig(), store, prefix=prefix, clock=lambda: now[0])
    key = Principal("k", limits=Limits(rpm=100))
    try:
        for _ in range(3):
            limiter.admit(key, None, 1)
        assert not await limiter.sync()  # applied; the reply was lost
        limiter.admit(key, None, 1)  # counted meanwhile
        assert await limiter.sync()
        counter = f"{prefix}:{{rl:key:k}}:r:{int(now[0] // 60)}"
        assert int(await client.get(counter)) == 4
        assert limiter._known[counter] == 4
        limiter.admit(key, None, 1)
        assert await limiter.sync()
        assert int(await client.get(counter)) == 5
    finally:
        await client.aclose()


async def test_a_history_push_whose_reply_was_lost_is_added_once(redis_server: str) -> None:
    store = _store(redis_server, f"h{uuid.uuid4().hex[:8]}")
    real = store.add_history
    lose = [1]

    async def add_history(*args: Any, **kw: Any) -> None:
        await real(*args, **kw)
        if lose[0]:
            lose[0] -= 1
            raise TimeoutError("reply lost")

    store.add_history = add_history  # type: ignore[method-assign]
    clock = [time.time() // 5 * 5 - 60]
    buf = SeriesBuffer(5, 900, clock=lambda: clock[0])
    recent = [{"ts": clock[0], "pipeline": "default", "rejected": ()}]
    fleet = FleetHistory(store, buf, recent, keep=5)
    try:
        buf.add("default", "a", "a", [], 100.0, None, 0.5, 10)
        with pytest.raises(TimeoutError):
            await fleet.push()
        buf.add("default", "a", "a", [], 300.0, None, 0.5, 10)
        await fleet.push()
        series, decisions = await fleet.read()
        models = [b["models"]["a"] for b in series["buckets"] if "a" in b["models"]]
        assert sum(m["ok"] for m in models) == 2
        assert len(decisions) == 1
    finally:
        await store.close()


async def test_a_stall_longer_than_the_socket_timeout_counts_spend_once(debug_redis: RedisProcess) -> None:
    """The probe's scenario: DEBUG SLEEP past the 0.3 s socket timeout while spend is flushed."""
    store = _store(debug_redis.url, f"z{uuid.uuid4().hex[:8]}", timeout_s=0.3)
    rec = StatsRecorder(store, timeout_s=0.5)
    try:
        stall = asyncio.create_task(asyncio.to_thread(debug_redis.cli, "DEBUG", "SLEEP", "2"))
        await asyncio.sleep(0.1)
        now = time.time()
        for _ in range(5):
            rec.record(_out("d1", pipeline="p", cost_usd=0.1, ts=now))
        await rec.flush()  # times out (perhaps after Redis applied it); redis-py re-sends it
        await stall
        for _ in range(20):
            if await rec.flush():
                break
            await asyncio.sleep(0.1)
        assert rec.pending == 0
        assert (await store.get_spend(["p"]))["p"].day == pytest.approx(0.5, abs=1e-12)
        assert (await store.read_stats(now))["d1"].samples == 5
    finally:
        await store.close()


# -- 4. Probe answers: closed is not "your probe is out" ------------------------------------------


@contextlib.asynccontextmanager
async def _two_replicas(url: str) -> AsyncIterator[tuple[StatsService, StatsService]]:
    """Two started services on one Redis prefix: two replicas, refreshed only when a test says."""
    prefix = f"c{uuid.uuid4().hex[:8]}"
    a = StatsService(_store(url, prefix), refresh_s=30.0, timeout_s=1.0)
    b = StatsService(_store(url, prefix), refresh_s=30.0, timeout_s=1.0)
    await a.start()
    await b.start()
    try:
        yield a, b
    finally:
        await a.stop()
        await b.stop()


async def _trip_and_cool(svc: StatsService, dep: str) -> None:
    for _ in range(5):
        svc.record(_out(dep, status="timeout"))
    assert await svc.flush()
    await asyncio.sleep(CONFIG.cooldown_s + 0.05)


async def test_a_circuit_closed_elsewhere_is_not_refused_here(redis_process: RedisProcess) -> None:
    async with _two_replicas(redis_process.url) as (a, b):
        await _trip_and_cool(b, "d")
        assert await a.refresh() and await b.refresh()
        assert a.live["d"].circuit_state == "half_open" == b.live["d"].circuit_state
        assert await b.admit("d")  # B probes
        b.record(_out("d"))  # ... and its success closes the circuit
        assert b.live["d"].circuit_state == "closed" and b.admit_now("d")  # at once, not at refresh
        assert await b.flush()
        # A still thinks half-open: the store says closed, which is not a probe of A's.
        assert await a.admit("d")
        assert a.admit_now("d") is True and a.live["d"].circuit_state == "closed"
        assert await a.admit("d")


async def test_our_own_probe_closes_the_circuit_here_at_once(redis_process: RedisProcess) -> None:
    async with _two_replicas(redis_process.url) as (a, b):
        await _trip_and_cool(b, "d")  # tripped by B's outcomes: A's own breaker never tripped
        assert await a.refresh()
        assert await a.admit("d")  # A probes
        assert a.admit_now("d") is False  # its probe is out
        a.record(_out("d"))
        assert a.admit_now("d") is True and a.live["d"].circuit_state == "closed"


# -- 5. Feedback on a request this replica served, after Redis lost its data -----------------------


async def test_feedback_on_our_own_request_survives_lost_records(redis_process: RedisProcess) -> None:
    from gateway.learning import FeedbackProcessor, PromptQualityModel

    prefix = f"f{uuid.uuid4().hex[:8]}"
    cfg = StatsConfig(request_ttl_s=60)
    services = [StatsService(RedisStatsStore(redis_process.url, key_prefix=prefix, config=cfg, timeout_s=0.5),
                             refresh_s=10.0, timeout_s=1.0) for _ in range(2)]
    for svc in services:
        await svc.start()
    a, b = (FeedbackProcessor(svc, PromptQualityModel(n_bits=16), wait_s=1.0) for svc in services)
    try:
        for rid in ("r1", "r2", "r3"):
            a.remember(rid, "m1", "code", None, pipeline="default", principal="alice")
        assert await services[0].flush()
        assert await b.submit("r3", 1.0, None)  # consumed through the other replica
        redis_process.cli("FLUSHALL")  # records gone (as after a restart without persistence)
        t0 = time.monotonic()
        assert await a.submit("r1", 1.0, None)  # the serving replica remembers it
        assert time.monotonic() - t0 < 0.5  # and does not wait for a record that cannot come
        assert await a.submit("r1", 1.0, None) is False  # once
        assert await b.submit("r2", 1.0, None) is False  # another replica cannot know it
        # The known limit: the loss took r3's tombstone too, so the serving replica may score it once
        # more (its memory forgets it then: never a third time).
        assert await a.submit("r3", 1.0, None) is True
        assert await a.submit("r3", 1.0, None) is False
    finally:
        for svc in services:
            await svc.stop()
