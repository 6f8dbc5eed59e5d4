"""Redis load of the stats store at 100 deployments x 16 replicas, before and after the snapshot.

    .venv/bin/python bench/redis_scale.py                      # both modes, ~1 min
    .venv/bin/python bench/redis_scale.py --modes after --duration 20 --deployments 1000

Starts a throwaway redis-server on 127.0.0.1 and simulates `--replicas` gateway replicas, each a
real `StatsService` on a real `RedisStatsStore` (refresh every 0.25 s, flush every 0.05 s) recording
`--rate` outcomes per second spread over `--deployments` deployments and 3 pipelines. The replicas
run in `--procs` processes so that the client side keeps up. Measured from Redis itself (`INFO`)
over the steady window, after a warm-up:

- ops/s: `total_commands_processed` (a script call counts once, plus the commands it runs),
- CPU: `used_cpu_user + used_cpu_sys` of the redis-server process, as a share of one core,
- the busiest commands (`INFO commandstats`),
- refreshes per replica and second actually done, and their median duration (a client that falls
  behind would make Redis look idle).

Each mode runs twice: with the replicas only refreshing (reads; every deployment written once
beforehand), which gives Redis's cost per refresh and so its load at the full 4 refreshes per
second of every replica even when this machine's clients cannot keep up, and with traffic too.

Modes: "before" is the read path this branch replaced (every replica reads every deployment on
every refresh, and every flush re-adds its names to the index sets); "after" is the published
snapshot (one script call per replica and refresh; one leased replica reads every deployment) with
index names re-added once a minute. Writes (one script per deployment touched per flush) are the
same in both.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing as mp
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
STATUSES = ["ok"] * 18 + ["server_error", "client_error"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _info(url: str) -> dict:
    import redis

    client = redis.Redis.from_url(url)
    try:
        return client.info("all")
    finally:
        client.close()


def _commandstats(info: dict) -> dict[str, int]:
    return {k[8:]: int(v["calls"]) for k, v in info.items() if k.startswith("cmdstat_")}


async def _replicas(url: str, prefix: str, ids: list[int], deployments: int, rate: float, seconds: float,
                    snapshot: bool, out: mp.Queue) -> None:  # rate 0: no traffic, refreshes only
    from gateway.stats import Outcome, StatsService
    from gateway.stats.redis_store import RedisStatsStore

    # A client that falls behind logs "degraded" on every slow refresh; the table says it anyway.
    logging.getLogger("gateway").setLevel(logging.ERROR)
    services = []
    timings: list[float] = []
    counts = [0] * len(ids)
    for n, _ in enumerate(ids):
        store = RedisStatsStore(url, key_prefix=prefix, snapshot=snapshot, index_refresh_s=60.0 if snapshot else 0.0)
        svc = StatsService(store, refresh_s=0.25, flush_interval_s=0.05)
        refresh = svc.refresh

        async def timed(refresh=refresh, n=n) -> bool:  # type: ignore[no-untyped-def]
            t0 = time.perf_counter()
            ok = await refresh()
            timings.append(time.perf_counter() - t0)
            counts[n] += 1
            return ok

        svc.refresh = timed  # type: ignore[method-assign]
        services.append(svc)
    for svc in services:
        await svc.start()

    async def traffic(svc: StatsService, seed: int) -> None:
        rng = random.Random(seed)
        while True:
            await asyncio.sleep(rng.expovariate(rate))
            status = rng.choice(STATUSES)
            svc.record(Outcome(deployment=f"dep-{rng.randrange(deployments)}", pipeline=f"pipe-{rng.randrange(3)}",
                               status=status, latency_ms=rng.uniform(200, 2000), ttft_ms=rng.uniform(50, 300),
                               output_tokens=rng.randint(10, 400), cost_usd=0.0004 if status == "ok" else 0.0))

    tasks = [asyncio.create_task(traffic(svc, i)) for svc, i in zip(services, ids, strict=True) if rate > 0]
    await asyncio.sleep(seconds)
    for task in tasks:
        task.cancel()
    out.put((counts, timings))
    for svc in services:
        await svc.stop()


def _proc(url: str, prefix: str, ids: list[int], deployments: int, rate: float, seconds: float, snapshot: bool,
          out: mp.Queue) -> None:
    asyncio.run(_replicas(url, prefix, ids, deployments, rate, seconds, snapshot, out))


async def _seed(url: str, prefix: str, deployments: int) -> None:
    from gateway.stats import Outcome
    from gateway.stats.redis_store import RedisStatsStore

    store = RedisStatsStore(url, key_prefix=prefix)
    await store.record_many([Outcome(deployment=f"dep-{i}", pipeline=f"pipe-{i % 3}", status="ok", latency_ms=500.0,
                                     ttft_ms=100.0, output_tokens=50, cost_usd=0.0004) for i in range(deployments)])
    await store.close()


def run_phase(url: str, mode: str, traffic: bool, args: argparse.Namespace) -> dict:
    prefix = f"bench-{mode}-{'rw' if traffic else 'r'}-{os.getpid()}"
    asyncio.run(_seed(url, prefix, args.deployments))
    snapshot = mode == "after"
    total = args.warmup + args.duration + 1.0
    ids = list(range(args.replicas))
    groups = [ids[i :: args.procs] for i in range(args.procs)]
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    rate = args.rate if traffic else 0.0
    procs = [ctx.Process(target=_proc, args=(url, prefix, g, args.deployments, rate, total, snapshot, out))
             for g in groups]
    for p in procs:
        p.start()
    time.sleep(args.warmup)
    before, t0 = _info(url), time.monotonic()
    time.sleep(args.duration)
    after, t1 = _info(url), time.monotonic()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    dt = t1 - t0
    ops = (int(after["total_commands_processed"]) - int(before["total_commands_processed"])) / dt
    cpu = sum(float(after[k]) - float(before[k]) for k in ("used_cpu_user", "used_cpu_sys")) / dt
    b, a = _commandstats(before), _commandstats(after)
    top = sorted(((name, (a[name] - b.get(name, 0)) / dt) for name in a), key=lambda kv: -kv[1])[:5]
    counts = [c for r in results for c in r[0]]
    timings = [t for r in results for t in r[1]]
    refresh_s = statistics.median(counts) / total  # per replica
    return {
        "mode": mode, "phase": "refresh + traffic" if traffic else "refresh only", "ops_s": ops, "cpu": cpu,
        "top": top, "refresh_s": refresh_s,
        "refresh_ms": statistics.median(timings) * 1000 if timings else float("nan"),
        # Per refresh of one replica (reads only), and Redis's load were every replica at 4/s.
        "ops_per_refresh": ops / (refresh_s * args.replicas),
        "cpu_us_per_refresh": cpu * 1e6 / (refresh_s * args.replicas),
    }


async def _per_request(url: str, n: int) -> list[tuple[str, float, float]]:
    """Redis CPU (us) and commands per request for the writes that grow with traffic, each sent the
    way the gateway sends it (batched by the recorder's flush, or one call per request)."""
    from gateway.learning import FeatureHasher
    from gateway.learning.feedback import encode_features
    from gateway.stats import Outcome
    from gateway.stats.events import RequestRecord
    from gateway.stats.redis_store import RedisStatsStore

    store = RedisStatsStore(url, key_prefix=f"bench-req-{os.getpid()}")
    rng = random.Random(5)
    # A prompt of ~150 distinct words (features are distinct unigrams and bigrams, not length).
    features = encode_features(FeatureHasher().transform(" ".join(f"w{rng.randrange(5000)}" for _ in range(150))))
    out = []

    async def measure(label: str, calls: int, per_call: int, send) -> None:  # type: ignore[no-untyped-def]
        a = _info(url)
        for i in range(calls):
            await send(i)
        b = _info(url)
        cpu = sum(float(b[k]) - float(a[k]) for k in ("used_cpu_user", "used_cpu_sys"))
        ops = int(b["total_commands_processed"]) - int(a["total_commands_processed"]) - 1  # the INFO
        out.append((label, cpu * 1e6 / (calls * per_call), ops / (calls * per_call)))

    batch = 256
    await measure("outcome (flush of 256 over 16 deployments, 3 pipelines)", n // batch, batch, lambda i: store.record_many(
        [Outcome(deployment=f"dep-{rng.randrange(16)}", pipeline=f"pipe-{rng.randrange(3)}", status="ok",
                 latency_ms=500.0, ttft_ms=80.0, output_tokens=100, cost_usd=0.0004) for _ in range(batch)]))
    kinds = (("plain", "feedback record, no features", ""),
             ("feats", f"feedback record, {len(features)} B of features", features))
    for tag, label, feats in kinds:
        await measure(label, n // batch, batch, lambda i, feats=feats, tag=tag: store.put_requests(
            [RequestRecord(f"req_{tag}_{i}_{j}_0123456789abcdef", "dep-1", "code", "default", "alice", 0.0004, feats)
             for j in range(batch)]))
    await measure("budget reservation + settlement (reject budgets)", n // 4, 1, lambda i: _reserve(store, i))
    for tag, label, _ in kinds:
        key = store.request_key(f"req_{tag}_0_0_0123456789abcdef")
        out.append((f"  memory of one such record (MEMORY USAGE, bytes): {label}",
                    float(await store.client.memory_usage(key)), float("nan")))
    await store.close()
    return out


async def _reserve(store, i: int) -> None:  # type: ignore[no-untyped-def]
    await store.reserve_spend("metered", f"r{i}", 0.001, daily_limit=1e9, monthly_limit=None, ttl_s=60)
    await store.settle_spend("metered", f"r{i}", 0.0008)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--deployments", type=int, default=100)
    p.add_argument("--replicas", type=int, default=16)
    p.add_argument("--procs", type=int, default=4, help="processes the replicas run in")
    p.add_argument("--rate", type=float, default=25.0, help="outcomes per second per replica")
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds per phase")
    p.add_argument("--warmup", type=float, default=4.0)
    p.add_argument("--modes", nargs="+", default=["before", "after"], choices=["before", "after"])
    p.add_argument("--per-request", type=int, default=20_000, metavar="N",
                   help="also measure the per-request writes over N requests (0: skip)")
    args = p.parse_args()
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = subprocess.Popen([REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                   "--appendonly", "no", "--dir", tmp], stdout=subprocess.DEVNULL)
        url = f"redis://127.0.0.1:{port}/0"
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    _info(url)
                    break
                except Exception:  # noqa: BLE001
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            version = _info(url)["redis_version"]
            print(f"redis-server {version} on 127.0.0.1, {args.deployments} deployments x {args.replicas} replicas "
                  f"({args.procs} processes), {args.rate:g} outcomes/s per replica, refresh 0.25 s, flush 0.05 s, "
                  f"{args.duration:g} s measured per phase")
            if args.per_request:
                print(f"\nWrites that grow with traffic ({args.per_request} requests each), Redis CPU and commands "
                      "per request:")
                for label, us, ops in asyncio.run(_per_request(url, args.per_request)):
                    if ops != ops:  # nan: a memory figure
                        print(f"{label}: {us:,.0f}")
                    else:
                        print(f"  {label:<58} {us:>6.1f} us  {ops:>5.2f} commands")
                print()
            rows = [run_phase(url, mode, traffic, args) for mode in args.modes for traffic in (False, True)]
            print(f"{'mode':<7} {'phase':<18} {'Redis ops/s':>11} {'Redis CPU':>9} {'refresh/s':>9} "
                  f"{'refresh ms':>10}  busiest commands (calls/s; script internals included)")
            for r in rows:
                top = ", ".join(f"{name} {rate:,.0f}" for name, rate in r["top"])
                print(f"{r['mode']:<7} {r['phase']:<18} {r['ops_s']:>11,.0f} {r['cpu']:>9.1%} {r['refresh_s']:>9.2f} "
                      f"{r['refresh_ms']:>10.1f}  {top}")
            print(f"\nReads alone, per replica refresh, and projected to {args.replicas} replicas x 4 refreshes/s:")
            print(f"{'mode':<7} {'ops/refresh':>11} {'CPU us/refresh':>14} {'ops/s':>9} {'Redis CPU':>9}")
            for r in rows:
                if r["phase"] == "refresh only":
                    n = args.replicas * 4
                    print(f"{r['mode']:<7} {r['ops_per_refresh']:>11,.1f} {r['cpu_us_per_refresh']:>14,.0f} "
                          f"{r['ops_per_refresh'] * n:>9,.0f} {r['cpu_us_per_refresh'] * n / 1e6:>9.1%}")
        finally:
            server.terminate()
            server.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
