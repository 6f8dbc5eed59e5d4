"""`gateway benchmark` against the real simulator, whose models answer the starter suite right at
known rates: the measured accuracies recover those rates, the outputs feed `gateway eval` and the
catalog, the cost cap holds and an interrupted run resumes without asking anything twice."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
import yaml

from gateway.benchmark import load_suite, wilson
from gateway.benchmark.command import STARTER_SUITE
from gateway.catalog import load_catalog, load_config
from gateway.cli import main
from gateway.quality_overlay import apply_quality_overlay, load_quality_overlay
from tests.conftest import SIM_KEY, write_catalog

# The truth the benchmark must recover: accuracy per model and domain ("default": the rest).
ACCURACY = {
    "bench-strong": {"math": 0.95, "code": 0.85, "extraction": 0.9, "reasoning": 0.8},
    "bench-mid": {"math": 0.7, "code": 0.5, "default": 0.6},
    "bench-weak": {"math": 0.2, "default": 0.35},
}
DOMAINS = ("code", "extraction", "math", "reasoning")
REPEATS = 5


@pytest.fixture(scope="module")
def sim():
    from gateway.simulator import SimulatorProfile, SimulatorThread

    profile = SimulatorProfile.model_validate({
        "api_key": SIM_KEY, "seed": 19, "answer_key": str(STARTER_SUITE),
        "models": {name: {"accuracy": acc, "output_tokens": 8} for name, acc in ACCURACY.items()},
    })
    with SimulatorThread(profile) as thread:
        yield thread


def _sim(sim, method: str, path: str) -> dict:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, never a proxy
    with opener.open(urllib.request.Request(sim.url + path, method=method), timeout=5) as resp:
        return json.loads(resp.read() or b"{}")


@pytest.fixture
def catalog(sim, tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SIM_TEST_KEY", SIM_KEY)
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    _sim(sim, "POST", "/_sim/reset")
    deps = {name: dict(info_from="gpt-4o-mini", quality=0.5) for name in ACCURACY}
    path = write_catalog(tmp_path / "catalog.yaml", sim.base_url, deps)
    doc = yaml.safe_load(path.read_text())
    doc["deployments"][-1]["transport"] = "litellm"  # both of the gateway's transports are exercised
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _bench(catalog: Path, out: Path, *extra: str) -> int:
    return main(["benchmark", str(STARTER_SUITE), "--config", str(catalog), "--out", str(out), "--quiet",
                 "--concurrency", "8", *extra])


def test_benchmark_recovers_the_simulated_accuracies(sim, catalog, tmp_path):
    out = tmp_path / "out"
    assert _bench(catalog, out, "--repeats", str(REPEATS)) == 0
    overlay = yaml.safe_load((out / "quality.yaml").read_text())["deployments"]
    items = load_suite(STARTER_SUITE).items
    per_domain = {d: sum(i.domain == d for i in items) for d in DOMAINS}
    # Family-wise 95%: every (model, domain) interval at 1 - 0.05/12 (Bonferroni, z = 2.87), so the
    # check is a sound statistical test for any seed, not a tuned one.
    z = 2.87
    for name, truth in ACCURACY.items():
        entry = overlay[name]
        for domain in DOMAINS:
            measured = entry["domain_quality"][domain]
            assert measured["samples"] == per_domain[domain] * REPEATS
            p = truth.get(domain, truth.get("default"))
            lo, hi = wilson(measured["score"] * measured["samples"], measured["samples"], z)
            assert lo <= p <= hi, (name, domain, p, measured)
            assert measured["interval"][0] <= measured["score"] <= measured["interval"][1]
        expected_overall = sum(per_domain[d] * truth.get(d, truth.get("default")) for d in DOMAINS) / len(items)
        lo, hi = wilson(entry["quality"] * entry["samples"], entry["samples"], z)
        assert lo <= expected_overall <= hi
    # Every attempt reached the simulator exactly once.
    stats = _sim(sim, "GET", "/_sim/stats")["models"]
    assert {n: stats[n]["requests"] for n in ACCURACY} == {n: len(items) * REPEATS for n in ACCURACY}


def test_outputs_feed_gateway_eval_and_the_catalog(sim, catalog, tmp_path):
    from gateway.eval.data import load_eval_data
    from gateway.eval.runner import EvalOptions, run_eval

    out = tmp_path / "out"
    assert _bench(catalog, out) == 0
    data = load_eval_data(out / "routing-eval.jsonl")
    assert data.model_names == tuple(ACCURACY) and len(data.ids) == 144
    assert set(data.domains) == set(DOMAINS)
    report = run_eval(data, EvalOptions(strategies=("balanced",), points=4, n_boot=0, compare=False))
    assert report["routers"]

    # The overlay replaces the hand-written quality priors (0.5) with the measured ones.
    overlay = load_quality_overlay(out / "quality.yaml")
    resolved = load_catalog(apply_quality_overlay(load_config(catalog), overlay))
    for name in ACCURACY:
        info = resolved.deployments[name].info
        assert info.quality == overlay[name].quality != 0.5
        assert dict(info.domain_quality) == {d: s.score for d, s in overlay[name].domain_quality.items()}


def test_cost_cap_stops_and_the_same_command_resumes(sim, catalog, tmp_path):
    out = tmp_path / "out"
    assert _bench(catalog, out, "--max-cost", "0.004") == 1  # stops at the cap, work left
    attempts = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()[1:]]
    spent = sum(a["cost_usd"] for a in attempts)
    assert 0 < len(attempts) < 3 * 144 and spent <= 0.004
    # A crash can tear the last line; the next run ignores it.
    with (out / "results.jsonl").open("a") as fh:
        fh.write('{"item": "math-00')
    assert _bench(catalog, out) == 0
    stats = _sim(sim, "GET", "/_sim/stats")["models"]
    assert sum(stats[n]["requests"] for n in ACCURACY) == 3 * 144  # nothing was asked twice
    rows = (out / "routing-eval.jsonl").read_text().splitlines()
    assert len(rows) == 1 + 144


def test_ctrl_c_keeps_what_was_done_and_the_rerun_finishes(sim, catalog, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    for name in ACCURACY:  # slow enough that the interrupt lands mid-run
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        req = urllib.request.Request(f"{sim.url}/_sim/models/{name}", data=b'{"latency_ms": 40}', method="PATCH")
        opener.open(req, timeout=5).read()
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "gateway", "benchmark", str(STARTER_SUITE), "--config", str(catalog), "--out", str(out),
           "--concurrency", "4", "--quiet"]
    # A child inherits an ignored SIGINT, and a test run started in the background by a
    # non-interactive shell ignores it (`cmd &`, as CI runners and batch scripts do): the benchmark
    # would then run to the end. While it is spawned, this process handles SIGINT, so the child
    # starts with the default disposition, as under a terminal's Ctrl-C.
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen(cmd, env={**os.environ}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    finally:
        signal.signal(signal.SIGINT, inherited)
    results = out / "results.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if results.exists() and len(results.read_text().splitlines()) > 40:
            break
        time.sleep(0.05)
    # What the failure message needs if the interrupt does not land mid-run.
    seen = (f"SIGINT after {60 - (deadline - time.monotonic()):.1f} s, at "
            f"{len(results.read_text().splitlines()) if results.exists() else 0} lines, exit code then {proc.poll()}")
    proc.send_signal(signal.SIGINT)
    out_text, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (seen, err.decode(), out_text.decode()[-1000:])
    assert b"run the same command again to resume" in err
    kept = len(results.read_text().splitlines()) - 1
    assert 40 <= kept < 3 * 144
    assert _bench(catalog, out) == 0
    sent = sum(_sim(sim, "GET", "/_sim/stats")["models"][n]["requests"] for n in ACCURACY)
    assert 3 * 144 <= sent <= 3 * 144 + 4  # at most the requests in flight at Ctrl-C are asked again
