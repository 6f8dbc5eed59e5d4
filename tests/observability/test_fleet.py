"""The dashboard's history across processes: what two processes record adds up to one history."""

from __future__ import annotations

import random
import time
import uuid

import pytest

from gateway.observability._series import SeriesBuffer
from gateway.observability.fleet import FleetHistory
from gateway.stats import MemoryStatsStore
from gateway.stats.redis_store import RedisStatsStore

MODELS = ("a", "b/c:d")  # names with separators in them


def _add(buf: SeriesBuffer, rng: random.Random) -> None:
    ok = rng.random() < 0.8
    buf.add(rng.choice(["default", "p1"]), rng.choice(MODELS), rng.choice(MODELS) if ok else None,
            [] if ok else [rng.choice(MODELS)], rng.uniform(10, 900) if ok else None,
            rng.uniform(5, 50) if ok and rng.random() < 0.5 else None, rng.uniform(0, 0.01), rng.randint(0, 99))


@pytest.fixture(params=["memory", "redis"])
def store(request):
    if request.param == "memory":
        return MemoryStatsStore()
    return RedisStatsStore(request.getfixturevalue("redis_server"), key_prefix=f"t{uuid.uuid4().hex[:8]}")


async def test_two_processes_history_adds_up_to_one(store) -> None:
    # The buckets' clock stays in the past, as a real one does: its last bucket (30 s on) must not
    # lie ahead of now, or a store that reads up to now's block (Redis) rightly leaves it out.
    clock = [time.time() // 5 * 5 - 60]
    both = SeriesBuffer(5, 900, clock=lambda: clock[0])  # what one process seeing everything records
    parts = [SeriesBuffer(5, 900, clock=lambda: clock[0]) for _ in range(2)]
    recent: list[list[dict]] = [[], []]
    fleets = [FleetHistory(store, buf, recent[i], keep=5) for i, buf in enumerate(parts)]
    rng = random.Random(4)
    for step in range(40):
        i = rng.randrange(2)
        seed = rng.random()
        _add(parts[i], random.Random(seed))
        _add(both, random.Random(seed))
        recent[i].append({"ts": clock[0] + step / 100, "pipeline": "default", "n": step, "rejected": ()})
        if step % 7 == 0:
            clock[0] += 5  # a new bucket
            await fleets[rng.randrange(2)].push()
    for fleet in fleets:
        await fleet.push()
        await fleet.push()  # nothing new: nothing sent twice
    series, decisions = await fleets[0].read()
    expected = both.snapshot()
    assert [b["t"] for b in series["buckets"]] == [b["t"] for b in expected["buckets"]]
    for got, want in zip(series["buckets"], expected["buckets"], strict=True):
        assert got["pipelines"] == want["pipelines"]
        assert got["models"].keys() == want["models"].keys()
        for name, figures in want["models"].items():
            for key, value in figures.items():
                if value is None:
                    assert got["models"][name][key] is None, (name, key)
                else:
                    assert got["models"][name][key] == pytest.approx(value, rel=1e-6, abs=1e-9), (name, key)
    assert [d["n"] for d in decisions] == sorted(d["n"] for d in decisions)
    assert len(decisions) == 5 and decisions[-1]["n"] == 39
    await store.close()


async def test_a_failed_push_is_sent_again() -> None:
    class Flaky(MemoryStatsStore):
        fail = True

        async def add_history(self, *args, **kw):  # type: ignore[no-untyped-def]
            if self.fail:
                raise ConnectionError("down")
            return await super().add_history(*args, **kw)

    store = Flaky()
    buf = SeriesBuffer(5, 900)
    fleet = FleetHistory(store, buf, [{"ts": 1.0, "pipeline": "default", "rejected": ()}])
    buf.add("default", "a", "a", [], 100.0, None, 0.5, 10)
    with pytest.raises(ConnectionError):
        await fleet.push()
    buf.add("default", "a", "a", [], 300.0, None, 0.5, 10)
    store.fail = False
    await fleet.push()
    series, decisions = await fleet.read()
    assert series["buckets"][-1]["models"]["a"]["ok"] == 2
    assert series["buckets"][-1]["models"]["a"]["latency_ms"] == 200.0
    assert len(decisions) == 1
