"""`run_eval`: learn from the train split, route the test split, measure against baselines.

Steps: build the catalog from the header (+ optional metadata) -> hash every prompt once ->
out-of-fold estimates on the train split (`crossfit`) -> pick the default quality mode on them and
build the calibration table with its default operating point (never looking at the test split) ->
learn from the whole train split through the feedback seam -> route the test prompts for every
strategy's knob sweep with the domain inferred -> compare "domain given" vs "inferred" and the
quality modes -> the shipped default and the quality targets on the test split -> RouteLLM's
two-model benchmark -> summarise with bootstrap CIs.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from gateway.eval.baselines import compute_baselines
from gateway.eval.crossfit import OutOfFold, crossfit
from gateway.eval.data import EvalData
from gateway.eval.metrics import aiq, aiq_range, bootstrap_samples, nondecreasing_hull, percentile_ci
from gateway.eval.operating import (
    calibration_table,
    default_against_hull,
    measure_priors_targets,
    measure_targets,
    reference_model,
)
from gateway.eval.pairs import choose_pair, pair_report
from gateway.eval.routing import (
    Prepared,
    RouterRun,
    engine_reads_estimates,
    frontier_params,
    prepare,
    route_params,
    sweep,
)
from gateway.eval.summary import summarise
from gateway.eval.training import train
from gateway.learning import QUALITY_MODES, FeatureHasher, RouterModel
from gateway.selection import ModelInfo, SelectionEngine, SelectionParams
from gateway.selection.frontier import FRONTIER

__all__ = ["EvalOptions", "build_catalog", "run_eval"]

STRATEGIES = ("balanced", "cost", "performance")


@dataclass(frozen=True)
class EvalOptions:
    strategies: tuple[str, ...] = STRATEGIES
    seed: int = 0
    points: int = 20
    n_boot: int = 200
    folds: int = 3  # out-of-fold estimates on the train split (mode choice, calibration table)
    compare: bool = True  # balanced for every (domain given/inferred) x (quality mode)
    policy_name: str | None = None
    policy_params: SelectionParams | None = None
    policy_domain: str | None = None
    model_meta: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    save_model: str | None = None  # directory for the trained router model (GATEWAY_ROUTER_MODEL)


def build_catalog(data: EvalData, meta: Mapping[str, Mapping[str, Any]]) -> list[ModelInfo]:
    """One `ModelInfo` per header model: its prices, plus any metadata given for it."""
    unknown = sorted(set(meta) - set(data.model_names))
    if unknown:
        raise ValueError(f"model metadata for models not in the data header: {unknown}")
    out = []
    for m in data.models:
        provider = m.name.split("/", 1)[0] if "/" in m.name else "unknown"
        info = ModelInfo(name=m.name, provider=provider, litellm_model=m.name,
                         input_cost_per_token=m.input_cost_per_token,
                         output_cost_per_token=m.output_cost_per_token,
                         context_window=1_000_000, max_output_tokens=32_768)
        extra = dict(meta.get(m.name, {}))
        if "domain_quality" in extra:
            extra["domain_quality"] = dict(extra["domain_quality"])
        out.append(replace(info, **extra) if extra else info)
    return out


def _priors_catalog(data: EvalData, rows: np.ndarray, catalog: list[ModelInfo]) -> list[ModelInfo]:
    """The catalog with the best priors one could write by hand: train-split mean score per model,
    and per domain."""
    out = []
    domains = sorted({d for d in (data.domains[i] for i in rows) if d is not None})
    for j, m in enumerate(catalog):
        per = {d: float(data.scores[[i for i in rows if data.domains[i] == d], j].mean()) for d in domains}
        out.append(replace(m, quality=float(data.scores[rows, j].mean()), domain_quality=per))
    return out


def _oof_prep(data: EvalData, oof: OutOfFold, mode: str, catalog: list[ModelInfo], scale: float) -> Prepared:
    rows = oof.rows
    return prepare([data.ids[i] for i in rows], [data.messages[i] for i in rows], oof.estimates[mode], catalog,
                   oof.live, lambda k, _domain: oof.output_tokens[k], scale)


def _calibrate(data: EvalData, oof: OutOfFold | None, catalog: list[ModelInfo], opts: EvalOptions,
               engine: SelectionEngine) -> tuple[str, Any, RouterRun | None, dict[str, Any]]:
    """(default quality mode, calibration table, the table's frontier sweep, report section), all
    from out-of-fold estimates of the train split."""
    if oof is None:
        return "domain", None, None, {"note": "train split too small for out-of-fold estimates; "
                                              "per-domain prior kept, no calibration table"}
    names = list(data.model_names)
    rows = oof.rows
    scores, costs = data.scores[rows], data.costs[rows]
    ref = reference_model(scores, costs)
    scale = float(costs[:, ref].mean())
    runs = {m: sweep(m, FRONTIER, engine, _oof_prep(data, oof, m, catalog, scale), names, opts.points, (0, 0))
            for m in oof.estimates}
    pts = {m: [(float(costs[np.arange(len(rows)), c].mean()), float(scores[np.arange(len(rows)), c].mean()))
               for c in r.choices] for m, r in runs.items()}
    hulls = {m: nondecreasing_hull(*zip(*p, strict=True)) for m, p in pts.items()}
    max_x = aiq_range(list(hulls.values()))
    report: dict[str, Any] = {"folds": oof.folds, "rows": int(len(rows)),
                              "modes": {m: {"aiq": aiq(h, max_x)} for m, h in hulls.items()}}
    for m in oof.estimates:
        per = oof.estimates[m]
        q = np.array([[e[2][n] for n in names] for e in per])  # type: ignore[index]
        p = np.clip(q, 1e-6, 1 - 1e-6)
        report["modes"][m]["log_loss"] = float(-np.mean(scores * np.log(p) + (1 - scores) * np.log(1 - p)))
    best = _choose_mode(runs, scores, costs, max_x, report, seed=opts.seed)
    table = calibration_table(runs[best], scores, costs, names,
                              source=f"out-of-fold estimates ({oof.folds} folds) on {len(rows)} train prompts, "
                                     f"quality mode {best}, domain inferred")
    return best, table, runs[best], report


def _choose_mode(runs: Mapping[str, RouterRun], scores: np.ndarray, costs: np.ndarray, max_x: float,
                 report: dict[str, Any], *, seed: int, n_boot: int = 100) -> str:
    """The per-domain prior unless another mode's AIQ beats it on out-of-fold estimates by more
    than sampling noise: the lower end of a 90 % paired-bootstrap interval of the difference must
    be above 0 (a mode that only ties costs memory and latency for nothing)."""
    if "domain" not in runs:
        return next(iter(runs))
    rows = np.arange(scores.shape[0])
    per_point = {m: (scores[rows[None, :], r.choices], costs[rows[None, :], r.choices]) for m, r in runs.items()}
    diffs: dict[str, list[float]] = {m: [] for m in runs if m != "domain"}
    for idx in bootstrap_samples(len(rows), n_boot, seed + 7):
        ref = None
        for m in ["domain", *diffs]:
            sq, sc = per_point[m]
            a = aiq(nondecreasing_hull(sc[:, idx].mean(axis=1), sq[:, idx].mean(axis=1)), max_x)
            if m == "domain":
                ref = a
            else:
                diffs[m].append(a - ref)  # type: ignore[operator]
    best, best_aiq = "domain", report["modes"]["domain"]["aiq"]
    for m, d in diffs.items():
        ci = percentile_ci(d, 0.90)
        report["modes"][m]["aiq_minus_domain_ci90"] = ci
        if ci is not None and ci[0] > 0 and report["modes"][m]["aiq"] > best_aiq:
            best, best_aiq = m, report["modes"][m]["aiq"]
    return best


def run_eval(data: EvalData, opts: EvalOptions, progress=lambda msg: None) -> dict[str, Any]:
    t_start = time.perf_counter()
    catalog = build_catalog(data, opts.model_meta)
    names = list(data.model_names)
    hasher = FeatureHasher()
    train_rows, test_rows = data.split(True), data.split(False)
    feats = {int(i): hasher.transform(data.texts[i]) for i in np.concatenate((train_rows, test_rows))}
    train_feats = [feats[int(i)] for i in train_rows]
    progress(f"features for {len(feats)} prompts")

    engine = SelectionEngine()
    if not engine_reads_estimates(engine):  # a custom engine that ignores the estimates would measure something else
        raise ValueError("the selection engine does not read ctx.quality_estimates")
    oof = crossfit(data, train_rows, feats, catalog, folds=opts.folds, seed=opts.seed, hasher=hasher)
    progress(f"out-of-fold estimates on the train split ({opts.folds} folds)")
    default_mode, table, table_run, calibration = _calibrate(data, oof, catalog, opts, engine)
    progress(f"quality mode on out-of-fold estimates: {default_mode}")
    trained = train(data, train_rows, train_feats, catalog, seed=opts.seed, hasher=hasher)
    router: RouterModel = trained.router
    router.mode = default_mode
    router.set_calibration(table)
    progress("trained through the feedback seam")
    if opts.save_model:
        router.save(opts.save_model)
        progress(f"router model saved to {opts.save_model} (serve it with GATEWAY_ROUTER_MODEL)")

    # Per test prompt: inferred domain (+ timing of the whole per-request estimate), given domain.
    has_domain = any(data.domains[i] is not None for i in test_rows)
    est: dict[tuple[str, str], list] = {}
    latencies, correct, labelled = [], 0, 0
    for i in test_rows:
        f = feats[int(i)]
        t0 = time.perf_counter()
        inferred = router.estimate(data.texts[i], names, explain=False, mode=default_mode, features=f)
        latencies.append(time.perf_counter() - t0)
        if data.domains[i] is not None and inferred.domain is not None:
            labelled += 1
            correct += inferred.domain == data.domains[i]
        for mode in QUALITY_MODES:
            r = inferred if mode == default_mode else router.estimate(
                data.texts[i], names, explain=False, mode=mode, features=f)
            est.setdefault(("inferred", mode), []).append((r.domain, r.domain_source, r.quality_estimates))
            if has_domain:
                g = router.estimate(data.texts[i], names, domain=data.domains[i], explain=False, mode=mode,
                                    features=f) if data.domains[i] is not None else r
                est.setdefault(("given", mode), []).append((g.domain, g.domain_source, g.quality_estimates))
    progress("estimates for test prompts")

    ids = [data.ids[i] for i in test_rows]
    msgs = [data.messages[i] for i in test_rows]
    scale = table.reference_cost if table is not None else float(
        data.costs[train_rows][:, reference_model(data.scores[train_rows], data.costs[train_rows])].mean())

    def outputs(_k: int, domain: str | None) -> Mapping[str, float]:
        return router.expected_output(names, domain) or {}

    preps: dict[tuple[str, str], Prepared] = {
        key: prepare(ids, msgs, rows, catalog, trained.live, outputs, scale) for key, rows in est.items()
    }
    scores, costs = data.scores[test_rows], data.costs[test_rows]
    base = compute_baselines(tuple(names), scores, costs)
    # Expected-cost caps for the performance sweep: from the cheapest to the dearest model's mean.
    caps = (float(base.single_cost.min()) / 3, float(base.single_cost.max()) * 3)
    grid = table_run.values if table_run is not None else None

    runs: list[tuple[RouterRun, dict[str, str]]] = []
    main = preps[("inferred", default_mode)]
    main_run = None
    for strategy in opts.strategies:
        if strategy == "balanced":
            run = sweep(f"balanced (inferred, {default_mode})", FRONTIER, engine, main, names, opts.points, caps,
                        values=grid)
            main_run = run
        else:
            run = sweep(f"{strategy} (inferred, {default_mode})", strategy, engine, main, names, opts.points, caps)
        runs.append((run, {"domain": "inferred", "quality": default_mode, "role": "main"}))
        progress(f"swept {strategy}")
    if opts.compare and "balanced" in opts.strategies:
        for (dmode, qmode), prep in preps.items():
            if (dmode, qmode) == ("inferred", default_mode):
                continue
            run = sweep(f"balanced ({dmode}, {qmode})", FRONTIER, engine, prep, names, opts.points, caps, values=grid)
            runs.append((run, {"domain": dmode, "quality": qmode, "role": "comparison"}))
        run = sweep(f"balanced weights, log cost (inferred, {default_mode})", "balanced", engine, main, names,
                    opts.points, caps)
        runs.append((run, {"domain": "inferred", "quality": default_mode, "role": "comparison"}))
        progress("swept comparisons")
    default_run = None
    if table is not None:
        lam = table.rows[table.knee].lam
        default_run = route_params("balanced default (knee of the learned curve)", engine, main, names,
                                   lambda k: frontier_params(lam, main, k), value=lam)
        runs.append((default_run, {"domain": "inferred", "quality": default_mode, "role": "default"}))
    weights_run = route_params("balanced, engine weights (no calibration table)", engine, main, names,
                               SelectionParams(strategy="balanced"))
    runs.append((weights_run, {"domain": "inferred", "quality": default_mode, "role": "point"}))
    if opts.policy_params is not None:
        prep = main
        if opts.policy_domain is not None:
            pol_est = [(opts.policy_domain, "policy", router.estimate(
                data.texts[i], names, domain=opts.policy_domain, explain=False, features=feats[int(i)]
            ).quality_estimates) for i in test_rows]
            prep = prepare(ids, msgs, pol_est, catalog, trained.live, outputs, scale)
        run = route_params(f"policy {opts.policy_name}", engine, prep, names, opts.policy_params)
        runs.append((run, {"domain": "policy" if opts.policy_domain else "inferred",
                           "quality": default_mode, "role": "policy"}))

    report = summarise(runs, base, scores, costs, n_boot=opts.n_boot, seed=opts.seed)
    operating: dict[str, Any] = {}
    if table is not None:
        operating["table"] = table.to_json()
        operating["targets"] = measure_targets(engine, main, names, table, scores, costs)
        if default_run is not None and main_run is not None:
            operating["default"] = default_against_hull(default_run, main_run, scores, costs, table, names)
        priors_catalog = _priors_catalog(data, train_rows, catalog)
        given = [(data.domains[i], "header" if data.domains[i] else None, None) for i in test_rows]
        operating["priors_targets"] = measure_priors_targets(
            engine, prepare(ids, msgs, given, priors_catalog, trained.live), names, priors_catalog, table.reference,
            scores, costs)
        progress("quality targets on the test split")
    report["operating_point"] = operating
    pair = choose_pair(data.scores[train_rows], data.costs[train_rows])
    pair_estimates = {f"{d}, {q}": [e[2] for e in rows] for (d, q), rows in est.items()}
    report["routellm_pair"] = pair_report(names, pair, scores, pair_estimates)
    report.update({
        "data": {"name": data.name, "path": data.path, "rows": len(data.ids), "train": int(len(train_rows)),
                 "test": int(len(test_rows)), "models": names,
                 "domains": sorted({d for d in data.domains if d is not None})},
        "seed": opts.seed,
        "quality_model": {"default_mode": default_mode, "out_of_fold": calibration},
        "domain_classifier": {
            "trained": router.classifier is not None,
            "classes": list(router.classifier.classes) if router.classifier is not None else [],
            "test_accuracy": correct / labelled if labelled else None,
            "test_labelled": labelled,
            "estimate_p50_ms": float(np.median(latencies) * 1e3) if latencies else None,
            "estimate_p90_ms": float(np.percentile(latencies, 90) * 1e3) if latencies else None,
        },
        "elapsed_s": round(time.perf_counter() - t_start, 1),
    })
    return report

