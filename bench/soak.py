"""Bounded soak: a fixed mix of streamed, plain, erroring and slow requests at a fixed rate against
`gateway serve --workers 2` with Redis stats and the simulator upstream, all on 127.0.0.1.

Every interval (10 s) it records requests, statuses, unexpected statuses, latency, and the RSS and
open file descriptors of all gateway processes (the supervisor and its workers). It passes when:
- no request ended in an unexpected 5xx, a broken stream or a transport error;
- after the warm-up, the gateway's RSS stays within +/-10% of its first post-warm-up sample;
- 20 s (--idle-wait) after the load stops, its open fds are back within max(20, 10%) of their first
  post-warm-up count (under load they follow concurrency, and are recorded).
It writes a JSON result and a PNG of the curves, prints a summary and exits 1 on failure.

    .venv/bin/python bench/soak.py                       # 300 s at 50 req/s -> docs/soak.{json,png}
    .venv/bin/python bench/soak.py --duration 20 --out-dir /tmp/soak
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE / "perf"))
sys.path.insert(0, str(HERE))

import procs  # noqa: E402  (bench/perf/procs.py: spawn, readiness, process trees, RSS)
from soak_load import KINDS, Bucket, run_load  # noqa: E402

KEY = "soak-sim-key"
REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=300.0, help="seconds of traffic (default 300)")
    p.add_argument("--rate", type=float, default=50.0, help="requests per second (default 50)")
    p.add_argument("--workers", type=int, default=2, help="gateway worker processes (default 2)")
    p.add_argument("--interval", type=float, default=10.0, help="seconds per recorded bucket (default 10)")
    p.add_argument("--warmup", type=float, default=60.0, help="seconds before RSS/fds must be flat (default 60)")
    p.add_argument("--idle-wait", type=float, default=20.0,
                   help="seconds after the load before the leak check reads fds (default 20)")
    p.add_argument("--out-dir", type=Path, default=REPO / "docs", help="where soak.json and soak.png go")
    return p.parse_args(argv)


def _fds(pid: int) -> int:
    total = 0
    for p in procs.tree_pids(pid):
        try:
            total += len(os.listdir(f"/proc/{p}/fd"))
        except OSError:
            pass
    return total


def _start(tmp: Path, workers: int) -> tuple[str, procs.Proc]:
    """Redis, the simulator and the gateway; returns (gateway base URL, gateway process)."""
    redis_port = procs.free_port()
    redis = procs.spawn("redis", [REDIS, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                                  "--appendonly", "no", "--dir", str(tmp)], cpus=None, log_dir=tmp)
    procs.wait_port(redis_port)

    profile = tmp / "sim.yaml"
    model = {"latency_ms": 20, "ttft_ms": 40, "tokens_per_s": 300, "output_tokens": 20}
    profile.write_text(yaml.safe_dump({"api_key": KEY, "seed": 1, "models": {"fm-a": model, "fm-b": model}}))
    sim_port = procs.free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    sim = procs.spawn("simulator", [sys.executable, "-m", "gateway.simulator", "--port", str(sim_port),
                                    "--profile", str(profile)], cpus=None, env=env, log_dir=tmp, cwd=REPO)
    procs.wait_http_ok(sim, f"http://127.0.0.1:{sim_port}/healthz", 20)

    meta = {"provider": "self-hosted", "context_window": 8192, "max_output_tokens": 1024}
    deployments = [
        {"name": name, "model": f"openai/{name}", "api_base": f"http://127.0.0.1:{sim_port}/v1",
         "api_key_env": "SOAK_SIM_KEY", "metadata": {**meta, "input_cost_per_token": cost,
                                                      "output_cost_per_token": cost, "quality": q}}
        for name, cost, q in (("fm-a", 1e-7, 0.8), ("fm-b", 1e-6, 0.7))
    ]
    config = tmp / "catalog.yaml"
    config.write_text(yaml.safe_dump({"router": {"aliases": ["auto"]}, "deployments": deployments}))
    (tmp / "policies").mkdir()
    port = procs.free_port()
    env.update(SOAK_SIM_KEY=KEY, GATEWAY_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0", GATEWAY_LOG_REQUESTS="false",
               GATEWAY_LOG_LEVEL="warning", GATEWAY_REQUEST_TIMEOUT_S="30", GATEWAY_SHUTDOWN_GRACE_S="10",
               # The mix's errors are on purpose, so the breaker must not take them as an outage
               # (it would, early on, when a deployment has few samples): no error-rate trips, and
               # a consecutive-failure bar that two failing requests in a row cannot reach.
               GATEWAY_MAX_RETRIES="1", GATEWAY_CIRCUIT_FAILURE_THRESHOLD="10", GATEWAY_CIRCUIT_ERROR_RATE="1",
               PROMETHEUS_MULTIPROC_DIR=str(tmp / "prom"))
    gw = procs.spawn("gateway", [sys.executable, "-m", "gateway", "serve", "--config", str(config),
                                 "--policies", str(tmp / "policies"), "--port", str(port),
                                 "--workers", str(workers)], cpus=None, env=env, log_dir=tmp, cwd=REPO)
    procs.wait_http_ok(gw, f"http://127.0.0.1:{port}/readyz", 60)
    return f"http://127.0.0.1:{port}/v1", gw


async def _soak(args: argparse.Namespace, base_url: str, gw: procs.Proc) -> tuple[list[Bucket], list[dict]]:
    buckets: list[Bucket] = []
    samples: list[dict] = []
    t0 = time.monotonic()
    load = asyncio.create_task(run_load(base_url, args.rate, args.duration, args.interval, buckets))

    async def sample() -> None:
        n = 0
        while not load.done():
            n += 1
            await asyncio.sleep(max(0.0, t0 + n * args.interval - time.monotonic()))
            samples.append({"t": round(time.monotonic() - t0, 1), "rss_mib": round(procs.rss_kib(gw.pid) / 1024, 1),
                            "fds": _fds(gw.pid), "processes": len(procs.tree_pids(gw.pid))})
            done = buckets[-2].summary() if len(buckets) > 1 else {}
            print(f"  t={samples[-1]['t']:>5.0f}s  rss={samples[-1]['rss_mib']:>7.1f} MiB  fds={samples[-1]['fds']:>4}"
                  f"  last bucket: {done.get('requests', '-')} req {done.get('statuses', '')}", flush=True)

    sampler = asyncio.create_task(sample())
    await load
    sampler.cancel()
    # Idle again: once keep-alive connections have expired (client side 5 s, upstream pool 15 s),
    # whatever is still open was leaked.
    await asyncio.sleep(args.idle_wait)
    samples.append({"t": round(time.monotonic() - t0, 1), "rss_mib": round(procs.rss_kib(gw.pid) / 1024, 1),
                    "fds": _fds(gw.pid), "processes": len(procs.tree_pids(gw.pid)), "idle": True})
    return buckets, samples


def _checks(args: argparse.Namespace, buckets: list[Bucket], samples: list[dict]) -> dict:
    rows = [b.summary() for b in buckets]
    bad = sum(r["unexpected_5xx"] + r["transport_errors"] + r["statuses"].get("broken-stream", 0) for r in rows)
    idle = samples[-1] if samples and samples[-1].get("idle") else None
    steady = [s for s in samples if s["t"] > args.warmup and not s.get("idle")]
    out = {"unexpected_5xx": {"ok": bad == 0, "count": bad,
                              "detail": _merge(r["unexpected"] for r in rows)}}
    if len(steady) < 2:
        out["rss_flat"] = out["fds_flat"] = {"ok": False, "why": "fewer than two samples after the warm-up"}
        return out
    base_rss, base_fds = steady[0]["rss_mib"], steady[0]["fds"]
    worst_rss = max((abs(s["rss_mib"] - base_rss) / base_rss for s in steady), default=0.0)
    fd_slack = max(20, 0.1 * base_fds)
    # Under load the fd count follows concurrency (pooled connections come and go); a leak is what
    # stays open once the load is gone.
    idle_fds = idle["fds"] if idle else max(s["fds"] for s in steady)
    out["rss_flat"] = {"ok": worst_rss <= 0.10, "baseline_mib": base_rss, "max_deviation": round(worst_rss, 4),
                       "min_mib": min(s["rss_mib"] for s in steady), "max_mib": max(s["rss_mib"] for s in steady),
                       "slope_mib_per_min": _slope([(s["t"], s["rss_mib"]) for s in steady])}
    out["fds_flat"] = {"ok": idle_fds <= base_fds + fd_slack, "baseline": base_fds, "idle_after_load": idle_fds,
                       "allowed": base_fds + fd_slack, "min_under_load": min(s["fds"] for s in steady),
                       "max_under_load": max(s["fds"] for s in steady)}
    return out


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares trend in units per minute: flat within the band can still be a slow climb."""
    n = len(points)
    mt, mv = sum(t for t, _ in points) / n, sum(v for _, v in points) / n
    den = sum((t - mt) ** 2 for t, _ in points)
    return round(60 * sum((t - mt) * (v - mv) for t, v in points) / den, 3) if den else 0.0


def _merge(dicts) -> dict:
    total: dict[str, int] = {}
    for d in dicts:
        for k, v in d.items():
            total[k] = total.get(k, 0) + v
    return total


def _plot(path: Path, buckets: list[Bucket], samples: list[dict], args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    t = [s["t"] for s in samples]
    rss, fds = [s["rss_mib"] for s in samples], [s["fds"] for s in samples]
    axes[0].plot(t, rss, marker="o")
    axes[0].set_ylabel("gateway RSS (MiB)")
    axes[1].plot(t, fds, marker="o", color="tab:orange")
    axes[1].set_ylabel("open fds (gateway)")
    steady = [s for s in samples if s["t"] > args.warmup and not s.get("idle")]
    if steady:  # the pass bands, from the first sample after the warm-up
        base = steady[0]
        axes[0].axhspan(base["rss_mib"] * 0.9, base["rss_mib"] * 1.1, color="tab:blue", alpha=0.08, label="+/-10%")
        slack = max(20, 0.1 * base["fds"])
        axes[1].axhspan(base["fds"] - slack, base["fds"] + slack, color="tab:orange", alpha=0.08)
        axes[0].legend(loc="lower right")
    axes[0].set_ylim(0, max(rss, default=1) * 1.25)
    axes[1].set_ylim(0, max(fds, default=1) * 1.5)
    rows = [b.summary() for b in buckets]
    bt = [i * args.interval for i in range(len(rows))]
    axes[2].bar(bt, [r["requests"] for r in rows], width=args.interval * 0.8, align="edge",
                label="requests", color="tab:green")
    errors = [sum(v for k, v in r["statuses"].items() if k != "200") for r in rows]
    axes[2].bar(bt, errors, width=args.interval * 0.8, align="edge", label="non-200 (expected)", color="tab:red")
    axes[2].set_ylabel(f"requests / {args.interval:.0f} s")
    axes[2].set_xlabel("seconds")
    axes[2].legend(loc="lower right")
    for ax in axes:
        ax.axvline(args.warmup, color="grey", linestyle=":", linewidth=1)
        ax.grid(alpha=0.3)
    fig.suptitle(f"soak: {args.rate:.0f} req/s for {args.duration:.0f} s, {args.workers} workers, Redis stats")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="gateway-soak-"))
    try:
        base_url, gw = _start(tmp, args.workers)
        print(f"soak: {args.rate:.0f} req/s for {args.duration:.0f} s against {base_url} ({args.workers} workers)")
        buckets, samples = asyncio.run(_soak(args, base_url, gw))
        gw_log = gw.log_tail(4000)
    finally:
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    checks = _checks(args, buckets, samples)
    ok = all(c["ok"] for c in checks.values())
    result = {
        "ok": ok, "checks": checks,
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "mix": {k.name: {"weight": k.weight, "expect": sorted(k.expect)} for k in KINDS},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "buckets": [b.summary() for b in buckets], "samples": samples,
        "totals": {"requests": sum(b.requests for b in buckets),
                   "statuses": _merge({str(k): v for k, v in b.statuses.items()} for b in buckets)},
        "gateway_log_tail": gw_log if not ok else "",
    }
    (args.out_dir / "soak.json").write_text(json.dumps(result, indent=2))
    _plot(args.out_dir / "soak.png", buckets, samples, args)
    print(f"requests: {result['totals']['requests']}  statuses: {result['totals']['statuses']}")
    for name, c in checks.items():
        print(f"  {'PASS' if c['ok'] else 'FAIL'}  {name}: {', '.join(f'{k}={v}' for k, v in c.items() if k != 'ok')}")
    print(f"wrote {args.out_dir / 'soak.json'} and {args.out_dir / 'soak.png'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
