"""Feedback from any replica: two processes' worth of `FeedbackProcessor` on one real redis-server.

A request remembered by one replica is scored through the other, once, by its own key only; feedback
that overtakes the record's flush waits for it (bounded); a store outage falls back to the memory
of the replica that served the request."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import errors
from gateway.learning import FeatureHasher, FeedbackProcessor, PromptQualityModel, SparseFeatures
from gateway.learning.feedback import decode_features, encode_features
from gateway.stats import StatsConfig, StatsService
from gateway.stats.redis_store import RedisStatsStore


@dataclass
class Key:
    name: str
    pipeline: str | None = None
    master: bool = False


ALICE, BOB, MASTER = Key("alice"), Key("bob"), Key("root", master=True)
FEATURES = FeatureHasher(16).transform("merge two sorted lists in python")


def _service(url: str, prefix: str, **kw: float) -> StatsService:
    store = RedisStatsStore(url, key_prefix=prefix, config=StatsConfig(request_ttl_s=60), timeout_s=0.5)
    return StatsService(store, refresh_s=kw.pop("refresh_s", 10.0), timeout_s=1.0, **kw)  # type: ignore[arg-type]


@pytest.fixture
async def replicas(redis_process):
    prefix = f"t{uuid.uuid4().hex[:8]}"
    services = [_service(redis_process.url, prefix) for _ in range(2)]
    for svc in services:
        await svc.start()
    procs = [FeedbackProcessor(svc, PromptQualityModel(n_bits=16), wait_s=1.0) for svc in services]
    yield procs, redis_process
    for svc in services:
        await svc.stop()


async def test_any_replica_scores_a_request_once_and_only_its_key(replicas) -> None:
    (a, b), _ = replicas
    for i in range(12):
        a.remember(f"r{i}", "m1", "code", FEATURES, pipeline="default", principal="alice", cost_usd=0.001)
    assert await b.submit("r0", 1.0, BOB) is False  # another key's request: not even its existence
    results = [await (b if i % 2 else a).submit(f"r{i}", 1.0, ALICE) for i in range(12)]
    assert results == [True] * 12
    assert [await a.submit("r1", 0.0, ALICE), await b.submit("r2", 0.0, MASTER)] == [False, False]  # once
    assert a.applied + b.applied == 12 and b.quality_model.prior("m1", "code")[1] == 6
    # The prompt's features travelled with the record: B learned from them as if it had served it.
    assert b.quality_model.predict(FEATURES, "code", ["m1"])["m1"] > 0.5 + 0.05


async def test_feedback_that_overtakes_the_flush_waits_for_it(replicas) -> None:
    (a, b), _ = replicas
    await a.stats.recorder.stop()  # no background flush: the record stays queued on A

    async def flush_later() -> None:
        await asyncio.sleep(0.3)  # the race under test: B hears of it before A flushes
        await a.stats.flush()

    a.remember("late", "m1", None, None, principal="alice")
    task = asyncio.create_task(flush_later())
    started = time.monotonic()
    assert await b.submit("late", 0.5, ALICE) is True
    assert 0.25 <= time.monotonic() - started < 1.0
    await task


async def test_unknown_ids_answer_after_the_bounded_wait(replicas) -> None:
    (a, _), _ = replicas
    a.wait_s = 0.3
    started = time.monotonic()
    assert await a.submit("never-served", 1.0, None) is False
    assert 0.3 <= time.monotonic() - started < 1.5


async def test_a_store_outage_falls_back_to_the_serving_replicas_memory(replicas) -> None:
    (a, b), redis = replicas
    a.remember("here", "m1", None, None)
    await a.stats.flush()
    redis.stop()
    try:
        assert await a.submit("here", 1.0, None) is True  # this process served it
        with pytest.raises(errors.ServiceUnavailableError):
            await b.submit("elsewhere", 1.0, None)  # maybe another replica's: say so, do not 404
    finally:
        redis.start()
    # The local apply queued a tombstone: once Redis is back, nobody learns from it again.
    deadline = time.monotonic() + 10
    while not await a.stats.flush():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert await b.submit("here", 1.0, None) is False


async def test_a_domain_nothing_knows_gets_no_posterior_in_the_shared_store(replicas) -> None:
    # A made-up X-Task-Domain stayed a hash field of every scored deployment (TTL refreshed on each
    # write: for good), read by every refresh of every replica.
    (a, b), _ = replicas
    for proc in (a, b):
        proc.known_domains = lambda: frozenset({"code"})
    for i, domain in enumerate(["code", "made-up-0", "made-up-1", None]):
        a.remember(f"d{i}", "m1", domain, FEATURES, principal="alice")
        assert await b.submit(f"d{i}", 1.0, ALICE) is True  # scored through the other replica
    await b.stats.flush()
    store = b.stats.store
    assert sorted(await store.client.hkeys(store.dep_keys("m1")[4])) == ["a", "a:code", "b", "b:code"]
    assert (await store.read_quality())["m1"][None].samples == 4
    assert set(b.quality_model._counts["m1"]) == {None, "code"}


async def test_without_a_shared_store_the_memory_is_the_process() -> None:
    svc = StatsService()
    proc = FeedbackProcessor(svc, None)
    proc.remember("r", "m1", None, None, principal="alice")
    assert await proc.submit("r", 1.0, BOB) is False
    assert await proc.submit("r", 1.0, ALICE) is True
    assert await proc.submit("r", 1.0, ALICE) is False


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**26 - 1), st.floats(-1, 1, width=32)), unique_by=lambda t: t[0]),
       st.integers(0, 10_000))
def test_features_survive_their_encoding(pairs: list[tuple[int, float]], n_tokens: int) -> None:
    pairs.sort()
    f = SparseFeatures(np.array([i for i, _ in pairs], dtype=np.int64), np.array([v for _, v in pairs]), n_tokens)
    g = decode_features(encode_features(f))
    assert np.array_equal(g.indices, f.indices) and g.n_tokens == n_tokens
    assert np.array_equal(g.values.astype(np.float32), f.values.astype(np.float32))
