"""`gateway benchmark` against the simulator: recovered accuracies next to the profile's truth.

    python bench/benchmark_recovery.py [--profile config/simulator.yaml] [--config config/demo.yaml]
                                       [--repeats 3] [--concurrency 16]

Starts the simulator (its profile names the answer key and each model's accuracy per domain), runs
`gateway benchmark` on the demo catalog through the real transports, and prints a markdown table:
per deployment and domain the profile's accuracy, the measured one with its 95% Wilson interval,
and whether the interval holds the truth. docs/benchmark.md quotes its output.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", type=Path, default=ROOT / "config/simulator.yaml")
    ap.add_argument("--config", type=Path, default=ROOT / "config/demo.yaml")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=16)
    args = ap.parse_args()

    from gateway.cli import main as gateway
    from gateway.simulator import SimulatorThread, load_profile
    from gateway.simulator._answers import accuracy_for

    profile = load_profile(args.profile)
    with SimulatorThread(profile) as sim, tempfile.TemporaryDirectory() as tmp:
        os.environ["GATEWAY_SIMULATOR_URL"] = sim.base_url
        os.environ["SIMULATOR_API_KEY"] = profile.api_key or "unused"
        started = time.perf_counter()
        code = gateway(["benchmark", "--config", str(args.config), "--out", tmp, "--repeats", str(args.repeats),
                        "--concurrency", str(args.concurrency), "--quiet"])
        took = time.perf_counter() - started
        overlay = yaml.safe_load((Path(tmp) / "quality.yaml").read_text())
    catalog = {d["name"]: d.get("metadata", {}) for d in yaml.safe_load(args.config.read_text())["deployments"]}
    domains = sorted({d for e in overlay["deployments"].values() for d in e["domain_quality"]})
    print(f"\n{args.repeats} repeats of {overlay['suite']['items']} items per deployment, {took:.0f} s, exit {code}\n")
    print("| deployment | domain | profile (truth) | catalog prior | measured [95% CI] | n | CI holds truth |")
    print("|---|---|---:|---:|---:|---:|:---:|")
    inside = total = 0
    for name, entry in overlay["deployments"].items():
        for domain in domains:
            m = entry["domain_quality"][domain]
            truth = accuracy_for(profile.models[name].accuracy, domain)
            prior = (catalog.get(name, {}).get("domain_quality") or {}).get(domain, "-")
            ok = m["interval"][0] <= truth <= m["interval"][1]
            inside += ok
            total += 1
            print(f"| {name} | {domain} | {truth:.2f} | {prior} | {m['score']:.2f} [{m['interval'][0]:.2f}-"
                  f"{m['interval'][1]:.2f}] | {m['samples']} | {'yes' if ok else '**no**'} |")
    print(f"\n{inside} of {total} 95% intervals hold the profile's accuracy (about {0.95 * total:.0f} expected).")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
