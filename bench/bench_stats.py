"""Micro-benchmarks of the stats store hot path and Redis flush.

    .venv/bin/python bench/bench_stats.py            # starts a throwaway redis-server on 127.0.0.1
    .venv/bin/python bench/bench_stats.py --url redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import tempfile
import time

from gateway.stats import MemoryStatsStore, Outcome, StatsRecorder
from gateway.stats.redis_store import RedisStatsStore

STATUSES = ["ok"] * 17 + ["server_error", "rate_limit", "client_error"]


def _outcomes(n: int, deployments: int) -> list[Outcome]:
    now = time.time()
    return [
        Outcome(
            deployment=f"dep-{i % deployments}",
            pipeline=f"pipe-{i % 3}",
            status=STATUSES[i % len(STATUSES)],
            latency_ms=800.0 + i % 300,
            ttft_ms=200.0 if i % 2 else None,
            output_tokens=120 + i % 50,
            cost_usd=0.0012,
            ts=now,
        )
        for i in range(n)
    ]


def bench_record(n: int = 200_000) -> None:
    items = _outcomes(n, 16)
    for label, rec in (
        ("shared store (mirror + queue)", StatsRecorder(RedisStatsStore("redis://127.0.0.1:1"), max_buffer=n)),
        ("memory store (direct)", StatsRecorder(MemoryStatsStore())),
    ):
        record = rec.record
        t0 = time.perf_counter_ns()
        for o in items:
            record(o)
        dt = time.perf_counter_ns() - t0
        print(f"record() {label}: {dt / n:.0f} ns/op over {n} calls")


async def bench_flush(url: str, rounds: int = 200, batch: int = 256, deployments: int = 16) -> None:
    store = RedisStatsStore(url, key_prefix="bench")
    await store.record_many(_outcomes(8, 8))  # load scripts, open a connection
    times = []
    for _ in range(rounds):
        items = _outcomes(batch, deployments)
        t0 = time.perf_counter()
        await store.record_many(items)
        times.append((time.perf_counter() - t0) * 1000)
    reads = []
    for _ in range(50):
        t0 = time.perf_counter()
        await store.read_stats()
        await store.get_spend()
        reads.append((time.perf_counter() - t0) * 1000)
    await store.close()
    q = statistics.quantiles(times, n=100)
    print(
        f"flush of {batch} outcomes over {deployments} deployments + 3 pipelines: "
        f"median {statistics.median(times):.2f} ms, p99 {q[98]:.2f} ms ({rounds} rounds)"
    )
    print(f"snapshot refresh (read_stats + get_spend, {deployments} deployments): median {statistics.median(reads):.2f} ms")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", help="existing Redis; default: start a throwaway redis-server")
    args = ap.parse_args()
    bench_record()
    if args.url:
        asyncio.run(bench_flush(args.url))
        return
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", tmp],
            stdout=subprocess.DEVNULL,
        )
        try:
            time.sleep(0.3)
            asyncio.run(bench_flush(f"redis://127.0.0.1:{port}/0"))
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
