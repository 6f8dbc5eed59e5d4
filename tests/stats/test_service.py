"""StatsService / StatsRecorder: hot-path recording, local snapshot, sharing, Redis faults."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence

import pytest

from gateway.stats import MemoryStatsStore, Outcome, StatsConfig, StatsRecorder, StatsService
from gateway.stats.redis_store import RedisStatsStore

from tests._fresh import modules_loaded
from tests._wait import wait_until_async
from tests.redis_fixtures import RedisProcess

CONFIG = StatsConfig(cooldown_s=0.3)


def _out(dep: str = "m1", status: str = "ok", **kw: object) -> Outcome:
    return Outcome(deployment=dep, pipeline=kw.pop("pipeline", None), status=status, latency_ms=100.0, **kw)  # type: ignore[arg-type]


async def _until(cond, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    await wait_until_async(cond, "the condition", timeout)


def _redis_service(url: str, prefix: str, **kw: float) -> StatsService:
    store = RedisStatsStore(url, key_prefix=prefix, config=CONFIG, timeout_s=0.5)
    return StatsService(store, refresh_s=kw.pop("refresh_s", 0.05), timeout_s=1.0, **kw)  # type: ignore[arg-type]


async def test_memory_service_live_and_spend() -> None:
    svc = StatsService(MemoryStatsStore(CONFIG), refresh_s=0.02)
    await svc.start()
    try:
        for _ in range(3):
            svc.record(_out(pipeline="p", cost_usd=0.25))
        await _until(lambda: "m1" in svc.live and svc.live["m1"].samples == 3)
        assert svc.spend["p"].day == 0.75
        assert svc.tracked_spend(["p", "q"])["q"].day == 0.0
        assert svc.status == "ok"
    finally:
        await svc.stop()


async def test_refresh_listeners_work_in_steps_after_each_refresh(caplog: pytest.LogCaptureFixture) -> None:
    svc = StatsService(MemoryStatsStore(CONFIG), refresh_s=0.02)
    seen: list[object] = []  # the live map each step saw, and what ran between the steps
    done = asyncio.Event()

    def steps():
        for i in range(3):
            seen.append(("step", i, svc.live))
            yield

    async def other() -> None:
        while not done.is_set():
            seen.append("other")
            await asyncio.sleep(0)

    def broken():
        raise RuntimeError("boom")
        yield  # pragma: no cover - a generator that fails at its first step

    svc.add_refresh_listener(broken)  # first: the one after it still runs
    svc.add_refresh_listener(steps)
    await svc.start()
    runner = asyncio.create_task(other())
    try:
        await _until(lambda: sum(1 for s in seen if s != "other") >= 6)  # two refreshes
    finally:
        done.set()
        await runner
        await svc.stop()
    stepped = [s for s in seen if s != "other"]
    assert [s[1] for s in stepped[:6]] == [0, 1, 2, 0, 1, 2]
    assert stepped[0][2] is stepped[2][2] and stepped[3][2] is not stepped[0][2]  # each pass on its new map
    # Between two steps of a pass the loop ran something else: a request waits for one step at most.
    at = [seen.index(step) for step in stepped[:3]]
    assert "other" in seen[at[0]:at[1]] and "other" in seen[at[1]:at[2]]
    assert "refresh listener failed" in caplog.text


async def test_local_trip_is_visible_immediately_and_admit_probes() -> None:
    svc = StatsService(MemoryStatsStore(CONFIG), refresh_s=10)  # no refresh during the test
    await svc.start()
    try:
        for _ in range(5):
            svc.record(_out(status="server_error"))
        assert svc.live["m1"].circuit_open  # without waiting for a refresh
        assert svc.admit_now("m1") is False and svc.admit_now("unknown") is True
        assert not await svc.admit("m1")

        async def half_open() -> bool:  # the cool-down runs out
            await svc.refresh()
            return svc.live["m1"].circuit_state == "half_open"

        await wait_until_async(half_open, "the cool-down to end")
        assert svc.admit_now("m1") is None  # half-open: only the store can say (one probe)
        assert await svc.admit("m1") and not await svc.admit("m1")  # one probe
        svc.record(_out())
        assert not svc.live["m1"].circuit_open
        assert await svc.admit("m1") and await svc.admit("unknown")
    finally:
        await svc.stop()


async def test_a_client_side_probe_outcome_lets_the_next_request_probe_at_once() -> None:
    svc = StatsService(MemoryStatsStore(CONFIG), refresh_s=10)  # no refresh during the test
    seen: list[tuple[str, str]] = []
    svc.add_circuit_listener(lambda dep, state: seen.append((dep, state)))
    await svc.start()
    try:
        for _ in range(5):
            svc.record(_out(status="server_error"))

        async def half_open() -> bool:
            await svc.refresh()
            return svc.live["m1"].circuit_state == "half_open"

        await wait_until_async(half_open, "the cool-down to end")
        assert await svc.admit("m1") and not await svc.admit("m1")
        svc.record(_out(status="client_error"))  # the probe's request was malformed
        # Without waiting for a refresh: still half-open, and the next request is the probe.
        assert svc.live["m1"].circuit_state == "half_open" and not svc.live["m1"].circuit_open
        assert await svc.admit("m1") and not await svc.admit("m1")
        assert seen == [("m1", "open"), ("m1", "half_open"), ("m1", "half_open")]  # no state change announced
    finally:
        await svc.stop()


async def test_record_never_raises_and_counts_errors() -> None:
    rec = StatsRecorder(MemoryStatsStore())
    rec.record(None)  # type: ignore[arg-type]
    assert rec.errors == 1


async def test_stop_flushes_everything(redis_server: str) -> None:
    prefix = f"s{uuid.uuid4().hex[:8]}"
    store = RedisStatsStore(redis_server, key_prefix=prefix, config=CONFIG)
    rec = StatsRecorder(store, flush_interval_s=10)  # only the stop() flush ships anything
    rec.start()
    now = time.time()
    for i in range(1000):
        rec.record(_out(f"d{i % 3}", ts=now))
    await rec.stop()
    stats = await store.read_stats(now)
    assert sum(s.samples for s in stats.values()) == 1000
    assert rec.pending == 0 and rec.dropped == 0
    await store.close()


async def test_two_services_share_stats(redis_server: str) -> None:
    prefix = f"s{uuid.uuid4().hex[:8]}"
    a, b = _redis_service(redis_server, prefix), _redis_service(redis_server, prefix)
    await a.start()
    await b.start()
    try:
        for _ in range(4):
            a.record(_out("only-a", pipeline="p", cost_usd=0.5))
        b.record(_out("only-b"))
        await _until(lambda: "only-a" in b.live and b.live["only-a"].samples == 4)
        await _until(lambda: "only-b" in a.live and b.spend.get("p") is not None and b.spend["p"].day == 2.0)
        for _ in range(5):
            a.record(_out("shared", status="timeout"))
        await _until(lambda: "shared" in b.live and b.live["shared"].circuit_open)
    finally:
        await a.stop()
        await b.stop()


class _FailingStore(MemoryStatsStore):
    async def record_many(self, outcomes: Sequence[Outcome], **kw: object) -> None:
        raise ConnectionError("down")


async def test_buffer_overflow_drops_oldest() -> None:
    rec = StatsRecorder(_FailingStore(), MemoryStatsStore(), max_buffer=10, batch_size=4)
    for i in range(25):
        rec.record(_out(ts=float(i)))
    assert rec.pending == 10 and rec.dropped == 15
    assert not await rec.flush()
    assert rec.pending == 10 and rec.dropped == 15
    assert [o.ts for o in rec._buf] == [float(i) for i in range(15, 25)]  # newest kept, in order


async def test_redis_outage_degrades_and_resyncs(redis_process: RedisProcess, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gateway.stats.service")
    svc = _redis_service(redis_process.url, "fault", flush_interval_s=0.02)
    await svc.start()
    try:
        svc.record(_out("before"))
        await _until(lambda: "before" in svc.live and svc.recorder.pending == 0)
        assert svc.status == "ok"

        redis_process.stop()
        now = time.time()
        for i in range(300):
            svc.record(_out("during", status="server_error" if i < 5 else "ok", ts=now, pipeline="p", cost_usd=0.01))
        await _until(lambda: svc.status == "degraded")
        await _until(lambda: svc.live["during"].samples >= 300)  # next refresh: from the local mirror
        for _ in range(20):  # the request path keeps working while degraded
            svc.record(_out("during", ts=now))
            assert svc.live["during"].samples >= 300
            assert await svc.admit("during") in (True, False)
        await asyncio.sleep(0.3)
        assert svc.recorder.pending == 320
        assert svc.spend["p"].day == pytest.approx(3.0)  # last shared spend + local spend since

        redis_process.start()  # same port, empty: scripts must be re-loaded (NOSCRIPT path)
        await _until(lambda: svc.status == "ok" and svc.recorder.pending == 0, timeout=10)
        store = svc.store
        assert isinstance(store, RedisStatsStore)
        assert (await store.read_stats(now))["during"].samples == 320  # every buffered outcome landed
        await _until(lambda: "during" in svc.live and svc.live["during"].samples >= 300)
        assert (await store.get_spend(["p"]))["p"].day == pytest.approx(3.0)
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]  # logged once, not per request
        assert any("reachable again" in r.getMessage() for r in caplog.records)
        assert svc.dropped == 0
    finally:
        await svc.stop()


def test_an_in_memory_gateway_never_imports_redis():
    """redis-py is imported only by `StatsService.from_url` with a URL: ~50 ms of every start-up
    (bench/startup.py) that an in-memory gateway has no use for."""
    setup = ("import gateway.app, gateway.cli\n"
             "from gateway.stats import StatsConfig, StatsService\n"
             "StatsService.from_url(None, config=StatsConfig())")
    assert modules_loaded(setup, ("redis",)) == []
