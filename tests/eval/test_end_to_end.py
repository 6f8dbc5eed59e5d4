import json

import pytest

from gateway.eval.command import register
from gateway.eval.data import load_eval_data
from gateway.eval.runner import EvalOptions, run_eval

from ._synth import write_synthetic

pytestmark = pytest.mark.slow  # trains and sweeps a router model

FAST = EvalOptions(points=8, n_boot=20, seed=3)


def _run(path, **kw):
    return run_eval(load_eval_data(path), EvalOptions(**{**FAST.__dict__, **kw}))


def test_routes_learns_and_reports(tmp_path):
    report = _run(write_synthetic(tmp_path / "s.jsonl"))
    assert report["domain_classifier"]["test_accuracy"] > 0.9
    main = next(r for r in report["routers"] if r["role"] == "main" and r["strategy"] == "balanced")
    # The cheap model is good at history only: learned routing beats the zero router.
    assert main["aiq"] > report["baselines"]["zero_router"]["aiq"]
    assert main["aiq_ci"] is not None
    assert {r["domain"] for r in report["routers"]} >= {"inferred", "given"}
    assert report["targets"]["aiq_above_zero_router"]["met"]


def test_deterministic_given_seed(tmp_path):
    path = write_synthetic(tmp_path / "s.jsonl")
    a, b = _run(path), _run(path)
    for r in (a, b):
        r.pop("elapsed_s")
        r["domain_classifier"].pop("estimate_p50_ms")
        r["domain_classifier"].pop("estimate_p90_ms")
    assert json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def test_two_models_report_apgr_and_cpt(tmp_path):
    report = _run(write_synthetic(tmp_path / "s.jsonl", models=2), strategies=("balanced",), compare=False)
    rl = report["routers"][0]["routellm"]
    assert rl["strong"] == "dear" and rl["weak"] == "cheap"
    assert 0.0 <= rl["apgr"] <= 1.0 and 0.0 <= rl["cpt_50"] <= rl["cpt_80"] <= 1.0


def test_missing_domains_and_fractional_scores(tmp_path):
    report = _run(write_synthetic(tmp_path / "s.jsonl", domains=False, fractional=True), compare=True)
    assert report["domain_classifier"]["trained"] is False
    assert {r["domain"] for r in report["routers"]} == {"inferred"}  # nothing to compare "given" with
    assert all(0.0 <= p["score"] <= 1.0 for r in report["routers"] for p in r["points"])


def test_command_writes_json_png_and_table(tmp_path, capsys):
    import argparse

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    data = write_synthetic(tmp_path / "s.jsonl")
    args = parser.parse_args(["eval", str(data), "--out", str(tmp_path / "out"), "--points", "6",
                              "--bootstrap", "10", "--quiet", "--no-compare"])
    assert args.func(args) == 0
    assert (tmp_path / "out" / "report.json").exists()
    assert (tmp_path / "out" / "curves.png").stat().st_size > 1000
    assert "zero router AIQ" in capsys.readouterr().out


def test_command_reports_bad_file(tmp_path, capsys):
    import argparse

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"format": "nope"}\n')
    args = parser.parse_args(["eval", str(bad), "--quiet"])
    assert args.func(args) == 2
    assert "first line must be a header" in capsys.readouterr().err


@pytest.mark.parametrize("strategy", ["cost", "performance"])
def test_other_strategies_sweep_their_knob(tmp_path, strategy):
    report = _run(write_synthetic(tmp_path / "s.jsonl"), strategies=(strategy,), compare=False)
    run = report["routers"][0]
    assert run["knob"] == {"cost": "min_quality", "performance": "max_cost_usd"}[strategy]
    costs = [p["cost_per_request"] for p in run["points"]]
    assert max(costs) > min(costs)  # the knob moves the operating point


def test_saved_router_model_is_what_serve_loads(tmp_path):
    """`--save-model` writes the trained router; it loads and infers the same domains as in eval."""
    from gateway.learning import RouterModel

    data_path = write_synthetic(tmp_path / "s.jsonl")
    report = _run(data_path, compare=False, strategies=("balanced",), save_model=str(tmp_path / "router"))
    router = RouterModel.load(tmp_path / "router")
    data = load_eval_data(data_path)
    test = data.split(False)
    right = sum(router.estimate(data.texts[i], ()).domain == data.domains[i] for i in test)
    assert right / len(test) == pytest.approx(report["domain_classifier"]["test_accuracy"])
    assert router.mode == report["quality_model"]["default_mode"]
    assert set(router.quality.models) == set(data.model_names)
