"""Slowdown experiment: does a model that turns slow lose its traffic, and win it back?

Run from the repo root: ``.venv/bin/python bench/slowdown.py [--half-life S] [--requests N]``.

The demo stack on loopback: the simulator with ``config/simulator.yaml`` and a gateway with
``config/demo.yaml`` and the shipped ``policies/`` (both in this process, as `gateway demo` runs
them), strategy ``balanced``, no ``max_tokens`` (so expected output lengths matter). For plain
and then streamed traffic, each on a fresh gateway:

1. healthy: N requests; the model that served most of them is the victim;
2. slowed: the simulator makes the victim 25x slower (3 s to first token, 5 tokens/s; it
   answers in ~9.4 s instead of ~0.4 s) and N more requests are sent;
3. recovered: the victim's profile is restored and N more requests are sent.

Requests go one at a time, as fast as they are answered. Printed per phase: the victim's share of
the traffic, the request it first served in the phase and its share from then on (in the
recovered phase: once it was tried again), the median latency, and the median error between the
winner's expected latency (from its decision's reasons) and the latency it realised.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: The issue's slowdown: 3 s before the first byte / token, then 5 tokens/s (32 tokens: ~9.4 s).
SLOW = {"latency_ms": 3000.0, "ttft_ms": 3000.0, "tokens_per_s": 5.0}
PROMPT = "Write a haiku about routers."
_EXPECTED = re.compile(r"^latency: ([\d,]+) ms expected")


def _send(client: httpx.Client, stream: bool) -> tuple[str, str, float]:
    body: dict = {"model": "auto", "messages": [{"role": "user", "content": PROMPT}]}
    headers = {"x-selection-strategy": "balanced"}
    started = time.perf_counter()
    if stream:
        body["stream"] = True
        with client.stream("POST", "/v1/chat/completions", json=body, headers=headers) as resp:
            for _ in resp.iter_bytes():
                pass
    else:
        resp = client.post("/v1/chat/completions", json=body, headers=headers)
    elapsed = (time.perf_counter() - started) * 1000
    if resp.status_code != 200:
        return f"error {resp.status_code}", "", elapsed
    return resp.headers["x-gateway-model"], resp.headers["x-gateway-request-id"], elapsed


def _expectation_errors(client: httpx.Client, ids: set[str]) -> list[float]:
    """|expected - realised| / realised for this phase's requests that the winner served."""
    errors = []
    for d in client.get("/v1/gateway/stats").json()["recent_decisions"]:
        if d["request_id"] not in ids or d["served"] != d["winner"] or not d["latency_ms"]:
            continue
        expected = next((m for r in d["reasons"] if (m := _EXPECTED.match(r))), None)
        if expected is not None:
            value = float(expected.group(1).replace(",", ""))
            errors.append(abs(value - d["latency_ms"]) / d["latency_ms"])
    return errors


def _phase(client: httpx.Client, n: int, stream: bool) -> tuple[list[str], list[float], list[float]]:
    served, ids, elapsed = [], set(), []
    for _ in range(n):
        model, request_id, ms = _send(client, stream)
        served.append(model)
        ids.add(request_id)
        elapsed.append(ms)
    time.sleep(0.3)  # the last decisions reach the recent list
    return served, elapsed, _expectation_errors(client, ids)


def _patch(sim_url: str, model: str, fields: dict) -> None:
    httpx.patch(f"{sim_url}/_sim/models/{model}", json=fields, timeout=10).raise_for_status()


def run(half_life_s: float, n: int, modes: list[str]) -> list[tuple]:
    from gateway.settings import Settings
    from gateway.simulator import SimulatorThread, load_profile
    from gateway.tools.harness import GatewayThread

    profile = load_profile(ROOT / "config" / "simulator.yaml")
    rows = []
    with SimulatorThread(profile) as sim:
        os.environ["GATEWAY_SIMULATOR_URL"] = sim.base_url
        os.environ["SIMULATOR_API_KEY"] = profile.api_key or "sim-no-auth"
        for mode in modes:
            stream = mode == "stream"
            settings = Settings(
                config=ROOT / "config" / "demo.yaml", policies=ROOT / "policies", port=0,
                log_requests=False, stats_half_life_s=half_life_s, stats_refresh_s=0.1,
            )  # fmt: skip
            with GatewayThread(settings) as gw, httpx.Client(base_url=gw.url, timeout=120) as client:
                healthy, ms, errs = _phase(client, n, stream)
                victim = Counter(healthy).most_common(1)[0][0]
                rows.append((mode, "healthy", victim, healthy, ms, errs))
                before = httpx.get(f"{sim.url}/_sim/models", timeout=10).json()[victim]
                _patch(sim.url, victim, SLOW)
                try:
                    rows.append((mode, "slowed 25x", victim, *_phase(client, n, stream)))
                finally:
                    _patch(sim.url, victim, {k: before[k] for k in SLOW})
                rows.append((mode, "recovered", victim, *_phase(client, n, stream)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--half-life", type=float, default=5.0, help="GATEWAY_STATS_HALF_LIFE_S (the demo's: 5)")
    parser.add_argument("--requests", type=int, default=40, help="requests per phase")
    parser.add_argument("--modes", default="plain,stream")
    args = parser.parse_args()
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    started = time.monotonic()
    rows = run(args.half_life, args.requests, args.modes.split(","))
    victims = ", ".join(sorted({f"{r[2]} ({r[0]})" for r in rows}))
    print(f"half-life {args.half_life:g} s, {args.requests} requests per phase, one at a time, balanced;"
          f" slowed: {victims}\n")
    header = ("traffic", "phase", "victim share", "first served", "share since", "median ms", "exp. error",
              "served")
    print("{:<8} {:<11} {:>12} {:>12} {:>11} {:>9} {:>10}  {}".format(*header))
    for mode, phase, victim, served, ms, errs in rows:
        share = served.count(victim) / len(served)
        first = next((i for i, s in enumerate(served) if s == victim), None)
        since = "-" if first is None else f"{served[first:].count(victim) / len(served[first:]):.0%}"
        err = f"{statistics.median(errs):.0%}" if errs else "-"
        mix = ", ".join(f"{m} {c}" for m, c in Counter(served).most_common(3))
        print(f"{mode:<8} {phase:<11} {share:>12.0%} {'never' if first is None else first + 1:>12}"
              f" {since:>11} {statistics.median(ms):>9,.0f} {err:>10}  {mix}")
    print(f"\n({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
