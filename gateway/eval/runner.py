"""`run_eval`: learn from the train split, route the test split, measure against baselines.

Steps: build the catalog from the header (+ optional metadata) -> hash every prompt once ->
pick the default quality mode on a validation slice of the train split (never the test split) ->
learn from the whole train split through the feedback seam -> route the test prompts for every
strategy's knob sweep with the domain inferred -> compare "domain given" vs "inferred" and
"per-domain" vs "prompt-level" for the balanced strategy -> summarise with bootstrap CIs.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from gateway.eval.baselines import compute_baselines
from gateway.eval.data import EvalData
from gateway.eval.routing import Prepared, RouterRun, engine_reads_estimates, prepare, route_params, sweep
from gateway.eval.summary import summarise
from gateway.eval.training import quality_log_loss, train
from gateway.learning import QUALITY_MODES, FeatureHasher
from gateway.selection import ModelInfo, SelectionEngine, SelectionParams

__all__ = ["EvalOptions", "build_catalog", "run_eval"]

STRATEGIES = ("balanced", "cost", "performance")


@dataclass(frozen=True)
class EvalOptions:
    strategies: tuple[str, ...] = STRATEGIES
    seed: int = 0
    points: int = 20
    n_boot: int = 200
    validation_fraction: float = 0.2
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


def _choose_mode(data: EvalData, train_rows: np.ndarray, feats: Sequence, catalog: list[ModelInfo],
                 opts: EvalOptions, hasher: FeatureHasher, engine: SelectionEngine) -> tuple[str, dict[str, Any]]:
    """Per-domain vs prompt-level quality, decided on a seeded validation slice of the train split:
    learn from the rest, route the slice with the balanced sweep, keep the higher AIQ."""
    rng = np.random.default_rng(opts.seed + 1)
    perm = rng.permutation(len(train_rows))
    n_val = int(round(len(perm) * opts.validation_fraction))
    if n_val < 10 or len(perm) - n_val < 10:
        return "domain", {"note": "train split too small for a validation slice; per-domain prior kept"}
    fit, val = np.sort(perm[n_val:]), np.sort(perm[:n_val])
    trained = train(data, train_rows[fit], [feats[k] for k in fit], catalog, seed=opts.seed,
                    hasher=hasher, with_classifier=False)
    rows = train_rows[val]
    names = list(data.model_names)
    base = compute_baselines(tuple(names), data.scores[rows], data.costs[rows])
    caps = (float(base.single_cost.min()) / 3, float(base.single_cost.max()) * 3)
    out: dict[str, Any] = {"rows_fit": int(len(fit)), "rows_validation": int(n_val)}
    for mode in QUALITY_MODES:
        est = []
        for k, i in zip(val, rows, strict=True):
            r = trained.router.estimate(data.texts[i], names, domain=data.domains[i], explain=False,
                                        mode=mode, features=feats[k])
            est.append((r.domain, r.domain_source, r.quality_estimates))
        prep = prepare([data.ids[i] for i in rows], [data.messages[i] for i in rows], est, catalog,
                       trained.live)
        run = sweep(mode, "balanced", engine, prep, names, max(8, opts.points // 2), caps)
        summary = summarise([(run, {})], base, data.scores[rows], data.costs[rows], n_boot=0, seed=opts.seed)
        out[mode] = {"balanced_aiq": summary["routers"][0]["aiq"],
                     **quality_log_loss(trained.router, data, rows, [feats[k] for k in val], mode)}
    best = max(QUALITY_MODES, key=lambda m: (out[m]["balanced_aiq"], m == "domain"))
    return best, out


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
    default_mode, validation = _choose_mode(data, train_rows, train_feats, catalog, opts, hasher, engine)
    progress(f"quality mode on train validation slice: {default_mode}")
    trained = train(data, train_rows, train_feats, catalog, seed=opts.seed, hasher=hasher)
    router = trained.router
    router.mode = default_mode
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

    if not engine_reads_estimates(engine):  # a custom engine that ignores the estimates would measure something else
        raise ValueError("the selection engine does not read ctx.quality_estimates")
    ids = [data.ids[i] for i in test_rows]
    msgs = [data.messages[i] for i in test_rows]
    preps: dict[tuple[str, str], Prepared] = {
        key: prepare(ids, msgs, rows, catalog, trained.live) for key, rows in est.items()
    }
    scores, costs = data.scores[test_rows], data.costs[test_rows]
    base = compute_baselines(tuple(names), scores, costs)
    # Expected-cost caps for the performance sweep: from the cheapest to the dearest model's mean.
    caps = (float(base.single_cost.min()) / 3, float(base.single_cost.max()) * 3)

    runs: list[tuple[RouterRun, dict[str, str]]] = []
    main = preps[("inferred", default_mode)]
    for strategy in opts.strategies:
        run = sweep(f"{strategy} (inferred, {default_mode})", strategy, engine, main, names, opts.points, caps)
        runs.append((run, {"domain": "inferred", "quality": default_mode, "role": "main"}))
        progress(f"swept {strategy}")
    if opts.compare and "balanced" in opts.strategies:
        for (dmode, qmode), prep in preps.items():
            if (dmode, qmode) == ("inferred", default_mode):
                continue
            run = sweep(f"balanced ({dmode}, {qmode})", "balanced", engine, prep, names, opts.points, caps)
            runs.append((run, {"domain": dmode, "quality": qmode, "role": "comparison"}))
        progress("swept comparisons")
    default_run = route_params("balanced (engine default weights)", engine, main, names,
                               SelectionParams(strategy="balanced"))
    runs.append((default_run, {"domain": "inferred", "quality": default_mode, "role": "point"}))
    if opts.policy_params is not None:
        prep = main
        if opts.policy_domain is not None:
            pol_est = [(opts.policy_domain, "policy", router.estimate(
                data.texts[i], names, domain=opts.policy_domain, explain=False, features=feats[int(i)]
            ).quality_estimates) for i in test_rows]
            prep = prepare(ids, msgs, pol_est, catalog, trained.live)
        run = route_params(f"policy {opts.policy_name}", engine, prep, names, opts.policy_params)
        runs.append((run, {"domain": "policy" if opts.policy_domain else "inferred",
                           "quality": default_mode, "role": "policy"}))

    report = summarise(runs, base, scores, costs, n_boot=opts.n_boot, seed=opts.seed)
    report.update({
        "data": {"name": data.name, "path": data.path, "rows": len(data.ids), "train": int(len(train_rows)),
                 "test": int(len(test_rows)), "models": names,
                 "domains": sorted({d for d in data.domains if d is not None})},
        "seed": opts.seed,
        "quality_model": {"default_mode": default_mode, "validation": validation},
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
