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
    main = next(r for r in report["routers"] if r["role"] == "main" and r["name"].startswith("balanced"))
    assert main["strategy"] == "frontier" and main["knob"] == "lam"
    # The cheap model is good at history only: learned routing beats the zero router.
    assert main["aiq"] > report["baselines"]["zero_router"]["aiq"]
    assert main["aiq_ci"] is not None
    assert {r["domain"] for r in report["routers"]} >= {"inferred", "given"}
    assert report["targets"]["aiq_above_zero_router"]["met"]
    assert report["aiq_range"][1] >= max(s["cost_per_request"] for s in report["baselines"]["single"]
                                         if s["model"] == report["baselines"]["best_single"])


def test_operating_points_default_and_targets(tmp_path):
    report = _run(write_synthetic(tmp_path / "s.jsonl", n=400))
    op = report["operating_point"]
    table = op["table"]
    assert table["reference"] == "dear" and len(table["rows"]) > 5
    oof = report["quality_model"]["out_of_fold"]
    assert oof["folds"] == 3 and set(oof["modes"]) == {"prompt", "domain", "knn"}
    # The shipped default is one of the main sweep's points and is measured against its hull.
    d = op["default"]
    main = next(r for r in report["routers"] if r["role"] == "main" and r["name"].startswith("balanced"))
    assert any(abs(p["score"] - d["score"]) < 1e-12 and abs(p["cost_per_request"] - d["cost_per_request"]) < 1e-12
               for p in main["points"])
    assert d["gap_below_hull"] >= 0 and d["within_tolerance"] == (d["gap_below_hull"] <= d["tolerance"])
    if d["gap_ci95"] is not None:  # the paired mean is the hull's quality minus the default's, at its cost
        assert sum(d["gap_ci95"]) / 2 == pytest.approx(d["hull_quality_at_cost"] - d["score"], abs=1e-9)
    assert d["on_hull"] == (d["within_tolerance"] or (d["gap_ci95"] is not None and d["gap_ci95"][0] <= 0))
    kinds = [(t["kind"], t["value"]) for t in op["targets"]]
    assert kinds == [("quality", 0.9), ("quality", 0.95), ("quality", 0.99), ("cost", 0.3), ("strong", 0.3)]
    q = [t["realised"]["quality_share"] for t in op["targets"][:3]]
    c = [t["realised"]["cost_share"] for t in op["targets"][:3]]
    assert q[0] <= q[2] and c[0] <= c[2]  # a higher target buys more quality for more money
    pair = report["routellm_pair"]
    assert (pair["strong"], pair["weak"]) == ("dear", "cheap")
    assert pair["routers"]["oracle"]["apgr"] > pair["routers"]["inferred, domain"]["apgr"]


def test_single_domain_subset(tmp_path):
    from gateway.eval.data import only_domain

    data = only_domain(load_eval_data(write_synthetic(tmp_path / "s.jsonl", n=400)), "math")
    report = run_eval(data, EvalOptions(points=8, n_boot=0, seed=1, compare=False))
    assert report["data"]["domains"] == ["math"] and report["domain_classifier"]["trained"] is False
    # One domain: the per-domain prior is the same for every prompt, so its pair router is random.
    pair = report["routellm_pair"]["routers"]
    assert pair["inferred, domain"]["apgr"] == pytest.approx(0.5)
    assert set(pair) >= {"inferred, knn", "inferred, prompt", "oracle"}


def test_only_domain_rejects_unknown_domains(tmp_path):
    from gateway.eval.data import EvalDataError, only_domain

    with pytest.raises(EvalDataError, match="no rows with domain 'art'"):
        only_domain(load_eval_data(write_synthetic(tmp_path / "s.jsonl")), "art")


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
    assert 0.0 <= rl["apgr"] <= 1.5 and all(0.0 <= rl[f"cpt_{x}"] <= 1.0 for x in (20, 50, 80))


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
    # What a quality target needs at serve time travels with it.
    assert router.calibration.to_json() == report["operating_point"]["table"]
    assert router.index is not None and router.index.models == data.model_names
    assert router.expected_output(["cheap"], "math")["cheap"] > 0
