"""What `wires.py` and `endpoints.py` share: a simulator and one gateway started on their own cores,
and sequential requests in interleaved rounds with the gateway's CPU per request counted.

The simulator (`--zero-latency`) and the client run on core 1, the gateway on core 0; every process
is stopped by process group at the end. 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent / "perf"))
import procs  # noqa: E402
from ab import cpu_seconds  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
Mode = TypeVar("Mode")
Sample = tuple[float, "float | None"]


def arguments(doc: str, unit: str, *, warmup: int) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--requests", type=int, default=300, help=f"measured requests per {unit} and mode")
    p.add_argument("--warmup", type=int, default=warmup)
    return p.parse_args()


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


@contextmanager
def served(tmp: Path, profile: dict, catalog: Callable[[str], dict], policies: Path,
           env: dict[str, str]) -> Iterator[tuple[procs.Proc, str]]:
    """(the gateway's process, its root URL): the simulator with `profile`, then `gateway serve` with
    `catalog(simulator root URL)` and `policies`; this process moves to core 1."""
    (tmp / "sim.yaml").write_text(yaml.safe_dump(profile))
    sim_port, gw_port = procs.free_port(), procs.free_port()
    (tmp / "catalog.yaml").write_text(yaml.safe_dump(catalog(f"http://127.0.0.1:{sim_port}")))
    env = {**os.environ, **env, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    try:
        procs.spawn("simulator", [sys.executable, "-m", "gateway.simulator", "--profile", str(tmp / "sim.yaml"),
                                  "--port", str(sim_port), "--zero-latency", "--quiet"],
                    cpus={1}, env=env, log_dir=tmp, cwd=REPO)
        procs.wait_port(sim_port, 60)
        gw = procs.spawn("gateway", [sys.executable, "-m", "gateway", "serve", "--config", str(tmp / "catalog.yaml"),
                                     "--policies", str(policies), "--port", str(gw_port)],
                         cpus={0}, env=env, log_dir=tmp, cwd=REPO)
        procs.wait_http_ok(gw, f"http://127.0.0.1:{gw_port}/readyz", 180)
        os.sched_setaffinity(0, {1})
        yield gw, f"http://127.0.0.1:{gw_port}"
    finally:
        procs.stop_all()


def interleaved(modes: Sequence[Mode], one: Callable[[Mode], Sample], gw: procs.Proc, *, warmup: int,
                requests: int, rounds: int = 10) -> tuple[dict[Mode, list[Sample]], dict[Mode, float]]:
    """`one(mode)` `requests` times per mode, in `rounds` rounds that each run every mode in turn (so a
    neighbour's burst hits every mode alike), after `warmup` each: the samples per mode, and the
    gateway's CPU seconds (its process tree's utime + stime) while each mode's requests ran."""
    for mode in modes:  # imports, connections, caches
        for _ in range(warmup):
            one(mode)
    per_round = max(1, requests // rounds)
    results: dict[Mode, list[Sample]] = {}
    cpu: dict[Mode, float] = {}
    for _ in range(rounds):
        for mode in modes:
            c0 = cpu_seconds(gw.pid)
            results.setdefault(mode, []).extend(one(mode) for _ in range(per_round))
            cpu[mode] = cpu.get(mode, 0.0) + cpu_seconds(gw.pid) - c0
    return results, cpu
