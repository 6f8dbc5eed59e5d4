"""What deciding before the domain inference costs in CPU: `decide()` plus settling, per decision.

Run from the repo root: ``.venv/bin/python bench/bench_late_domain.py [--decisions N]``.

The decider ranks with the performance benchmark's catalog and policy (bench/perf/) and one
repeated request, its live stats replaced every N requests as a stats refresh replaces them
(every 250 ms by default: N = 25 at 100 requests a second). Two deciders take turns, one that
may leave the domain inference for the upstream call's wait (`Decider._later`) and one that
infers first, and each decision is settled as the request pipeline settles it. The figure is
CPU per decision in process, not time on the critical path: for that, see
bench/perf/critical_path.py and bench/perf/ab.py --latency. `ranks/decision` counts the
engine's rankings (the memo's misses), where the extra work goes at low rates: the rankings of
the other domains, made once a shape has asked once per graded domain in a live map.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from types import MappingProxyType

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("BENCH_SIM_API_KEY", "sk-bench")

from gateway.catalog import load_catalog, load_config  # noqa: E402
from gateway.core.decision import Decider, settled  # noqa: E402
from gateway.policy import PolicyStore  # noqa: E402
from gateway.selection import LiveStats, SelectionEngine  # noqa: E402

BODY = {"model": "auto", "max_tokens": 16,
        "messages": [{"role": "user", "content": "Write one short sentence about request routers."}]}


class _CountingEngine(SelectionEngine):
    def __init__(self) -> None:
        super().__init__()
        self.ranks = 0

    def rank(self, *args, **kwargs):
        self.ranks += 1
        return super().rank(*args, **kwargs)


def _run(defer: bool, per_map: int, decisions: int, catalog, policies) -> tuple[float, float]:
    live = [MappingProxyType({})]
    engine = _CountingEngine()
    decider = Decider(catalog, engine, lambda: policies, lambda pipeline: live[0], defer_domain=defer)
    started = time.process_time()
    for i in range(decisions):
        if i % per_map == 0:  # a refresh: a new live map
            live[0] = MappingProxyType({"sim-model": LiveStats(samples=i + 1)})
        settled(decider.decide(BODY, {}, "req"))
    return (time.process_time() - started) / decisions * 1e6, engine.ranks / decisions


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--decisions", type=int, default=5000)
    p.add_argument("--per-map", default="3,7,25,1000", help="requests per live map, comma-separated")
    a = p.parse_args()
    catalog = load_catalog(load_config(REPO / "bench/perf/gateway_catalog.yaml"))
    policies = PolicyStore(REPO / "bench/perf/policies").current
    sizes = [int(x) for x in a.per_map.split(",")]
    print(f"{'requests per live map':<24}" + "".join(f"{n:>16}" for n in sizes))
    for label, defer in (("inference first", False), ("waiting when it can", True)):
        cells = [_run(defer, n, a.decisions, catalog, policies) for n in sizes]
        print(f"{label:<24}" + "".join(f"{us:>9.1f} us {r:>4.2f}" for us, r in cells))
    print("(us of CPU per decision, then ranks per decision)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
