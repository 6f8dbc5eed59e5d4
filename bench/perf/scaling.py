"""How the gateway's cost grows with catalog size and with concurrency.

    .venv/bin/python bench/perf/scaling.py [--sizes 3,30,300] [--connections 1,8,64,256] [--seconds 4] [--vary-shapes]

Same set-up as run.py (gateway pinned to core 0; simulator and wrk on core 1; zero-latency
simulator). For each catalog size N it writes a catalog of N deployments (all served by the
simulator's `sim-model`, with prices, quality and speed priors spread so ranking has real work to
do), starts `gateway serve`, and runs wrk at each connection count: saturated req/s, wrk's p50/p99,
and the mean `x-gateway-overhead-ms` (the gateway's own time per request) at that load.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import urllib.request
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loadgen  # noqa: E402
import procs  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SIM_KEY = "sk-bench"


def _catalog(path: Path, n: int, sim_base: str, seed: int = 7) -> Path:
    rng = random.Random(seed)
    deployments = []
    for i in range(n):
        price = 10 ** rng.uniform(-7.5, -4.5)  # a 1000x spread of prices per token
        deployments.append({
            "name": f"dep-{i:03d}", "model": "openai/sim-model", "api_base": sim_base, "api_key_env": "BENCH_SIM_API_KEY",
            "transport": "openai",
            "metadata": {
                "provider": f"provider-{i % 7}", "input_cost_per_token": price, "output_cost_per_token": price * 4,
                "context_window": rng.choice([8192, 32768, 128000]), "max_output_tokens": 4096,
                "supports_tools": rng.random() < 0.7, "supports_json_schema": rng.random() < 0.5,
                "supports_streaming": True, "quality": round(rng.uniform(0.4, 0.95), 3),
                "domain_quality": {"code": round(rng.uniform(0.3, 0.95), 3)},
                "ttft_ms": rng.randint(100, 1500), "tokens_per_s": rng.randint(30, 300),
            },
        })
    doc = {"router": {"aliases": ["auto"], "default_strategy": "balanced"}, "deployments": deployments}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _overhead_ms(url: str, body: bytes, samples: int = 200) -> float:
    total = 0.0
    for _ in range(samples):
        req = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            total += float(resp.headers["x-gateway-overhead-ms"])
            resp.read()
    return total / samples


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="3,30,300")
    p.add_argument("--connections", default="1,8,64,256")
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--vary-shapes", action="store_true",
                   help="a random max_tokens (1..4000) per request: every request a new shape, so the ranking "
                        "memo (gateway/core/_ranking_memo.py) misses and every request is ranked")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "scaling.json")
    a = p.parse_args()
    sizes = [int(x) for x in a.sizes.split(",")]
    conns = [int(x) for x in a.connections.split(",")]
    os.sched_setaffinity(0, {1})
    work = Path(tempfile.mkdtemp(prefix="gateway-scaling-"))
    body = json.dumps({"model": "auto", "max_tokens": 16,
                       "messages": [{"role": "user", "content": "Write one short sentence."}]}).encode()
    lua = loadgen.write_lua(work / "s.lua", body.replace(b": 16", b": VARY") if a.vary_shapes else body,
                            vary=a.vary_shapes)
    results: list[dict] = []
    try:
        port = procs.free_port()
        sim = procs.spawn("simulator", [sys.executable, "-m", "gateway.simulator", "--profile",
                                        str(HERE / "sim_profile.yaml"), "--zero-latency", "--quiet", "--port", str(port)],
                          cpus={1}, env={**os.environ, "PYTHONPATH": str(REPO)}, log_dir=work)
        procs.wait_http_ok(sim, f"http://127.0.0.1:{port}/healthz", 20)
        sim_base = f"http://127.0.0.1:{port}/v1"
        (work / "policies").mkdir()
        for n in sizes:
            gport = procs.free_port()
            env = {**os.environ, "PYTHONPATH": str(REPO), "BENCH_SIM_API_KEY": SIM_KEY, "GATEWAY_LOG_LEVEL": "info"}
            env.pop("GATEWAY_REDIS_URL", None)
            cmd = [str(REPO / ".venv" / "bin" / "gateway"), "serve", "--config",
                   str(_catalog(work / f"catalog-{n}.yaml", n, sim_base)), "--policies", str(work / "policies"),
                   "--host", "127.0.0.1", "--port", str(gport)]
            gw = procs.spawn(f"gateway-{n}", cmd, cpus={0}, env=env, log_dir=work, cwd=REPO)
            base = f"http://127.0.0.1:{gport}"
            procs.wait_http_ok(gw, f"{base}/readyz", 30)
            url = f"{base}/v1/chat/completions"
            loadgen.wrk(url, lua, seconds=2, connections=16, cpus="1")  # warm-up
            overhead = _overhead_ms(url, body)
            for c in conns:
                r = loadgen.wrk(url, lua, seconds=a.seconds, connections=c, cpus="1")
                row = {"deployments": n, "connections": c, "rps": round(r["rps"]), "p50_ms": r["p50_ms"],
                       "p99_ms": r["p99_ms"], "errors": r["errors"], "overhead_ms_sequential": round(overhead, 3)}
                results.append(row)
                print(f"N={n:4d} c={c:4d}: {row['rps']:6d} req/s  p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms"
                      f"  errors {r['errors']}  (overhead, sequential: {overhead:.3f} ms)", flush=True)
            gw.stop()
    finally:
        procs.stop_all()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
