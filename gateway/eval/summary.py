"""Turn routed choices into the report's numbers: per-point figures, hulls, AIQ, targets, CIs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gateway.eval.baselines import Baselines, matched_random
from gateway.eval.metrics import (
    aiq,
    aiq_range,
    apgr,
    bootstrap_samples,
    cost_to_reach,
    cpt,
    hull_at,
    nondecreasing_hull,
    percentile_ci,
)
from gateway.eval.routing import RouterRun

__all__ = ["BUDGET_FRACTIONS", "summarise"]

#: Fixed budgets, as fractions of the best single model's cost per request.
BUDGET_FRACTIONS = (0.1, 0.25, 0.5, 1.0)


def _f(x: float | None, nd: int = 6) -> float | None:
    return None if x is None else round(float(x), nd)


def _hull_list(h: np.ndarray) -> list[list[float]]:
    return [[float(c), float(q)] for c, q in h]


def _points(run: RouterRun, base: Baselines, scores: np.ndarray, costs: np.ndarray) -> list[dict[str, Any]]:
    """Per knob setting: score, cost, call shares, and random routing at the same call shares."""
    rows = np.arange(scores.shape[0])
    out = []
    for k, value in enumerate(run.values):
        pick = run.choices[k]
        shares = np.bincount(pick, minlength=len(base.names)) / len(pick)
        r_score, r_cost = matched_random(shares, base)
        out.append({
            "knob": value if np.isfinite(value) else "inf",
            "score": float(scores[rows, pick].mean()),
            "cost_per_request": float(costs[rows, pick].mean()),
            "cost_total": float(costs[rows, pick].sum()),
            "shares": {n: round(float(s), 4) for n, s in zip(base.names, shares, strict=True) if s > 0},
            "random_score": r_score,
            "random_cost_per_request": r_cost,
            "fallbacks": run.fallbacks[k],
        })
    return out


def _run_summary(run: RouterRun, pts: list[dict[str, Any]], hull: np.ndarray, base: Baselines, scores: np.ndarray,
                 costs: np.ndarray, boots: np.ndarray, zero_aiq_boot: np.ndarray, max_x: float) -> dict[str, Any]:
    q = np.array([p["score"] for p in pts])
    best = base.best
    best_q, best_c = float(base.single_score[best]), float(base.single_cost[best])
    reach = {str(t): cost_to_reach(hull, t * best_q) for t in (0.95, 1.0)}
    distinct = [p for p in pts if max(p["shares"].values()) < 1.0]
    above = sum(p["score"] > p["random_score"] + 1e-12 for p in distinct)
    summary: dict[str, Any] = {
        "name": run.name, "strategy": run.strategy, "knob": run.knob, "points": pts,
        "hull": _hull_list(hull),
        "aiq": aiq(hull, max_x),
        "cost_to_reach": {k: _f(v, 9) for k, v in reach.items()},
        "cost_to_reach_vs_best": {k: _f(v / best_c if v is not None else None, 4) for k, v in reach.items()},
        "quality_at_budget": {str(f): _f(hull_at(hull, f * best_c), 4) for f in BUDGET_FRACTIONS},
        "above_random": {"points_mixed": len(distinct), "above": above,
                         "everywhere": bool(distinct) and above == len(distinct)},
        # Realised (not mixed) operating points reaching the best single model's score.
        "cheapest_point_reaching_best": _f(min((p["cost_per_request"] for p in pts if p["score"] >= best_q),
                                               default=None), 9),
    }
    if len(run.values) > 1 and len(boots):
        rows = np.arange(scores.shape[0])
        sq = scores[rows[None, :], run.choices]  # (points, prompts)
        sc = costs[rows[None, :], run.choices]
        a, d, r100 = [], [], []
        for b, idx in enumerate(boots):
            h = nondecreasing_hull(sc[:, idx].mean(axis=1), sq[:, idx].mean(axis=1))
            a.append(aiq(h, max_x))  # the range stays the full sample's, as for every curve compared
            d.append(a[-1] - zero_aiq_boot[b])
            r = cost_to_reach(h, scores[idx, best].mean())
            r100.append(None if r is None else r / costs[idx, best].mean())
        summary["aiq_ci"] = percentile_ci(a)
        summary["aiq_minus_zero_router_ci"] = percentile_ci(d)
        summary["cost_to_reach_best_vs_best_ci"] = percentile_ci(r100)
        summary["bootstrap_reached_best"] = sum(x is not None for x in r100) / len(r100)
    if len(base.names) == 2 and len(run.values) > 1:
        # RouteLLM's own setting: two models, the router's curve over its share of strong calls.
        strong = int(np.argmax(base.single_score))
        weak = 1 - strong
        if base.single_score[strong] > base.single_score[weak]:
            share = [p["shares"].get(base.names[strong], 0.0) for p in pts]
            ws, ss = float(base.single_score[weak]), float(base.single_score[strong])
            summary["routellm"] = {
                "strong": base.names[strong], "weak": base.names[weak], "apgr": apgr(share, q, ws, ss),
                **{f"cpt_{int(x * 100)}": cpt(share, q, ws, ss, x) for x in (0.2, 0.5, 0.8)},
            }
    return summary


def summarise(runs: Sequence[tuple[RouterRun, dict[str, str]]], base: Baselines, scores: np.ndarray,
              costs: np.ndarray, *, n_boot: int, seed: int) -> dict[str, Any]:
    """Every run's points, hull, AIQ (RouterBench: one cost range [0, max_x] shared by the zero
    router and every swept curve), targets and bootstrap CIs."""
    boots = bootstrap_samples(scores.shape[0], n_boot, seed) if n_boot > 0 else np.zeros((0, 0), int)
    pts = [_points(run, base, scores, costs) for run, _ in runs]
    hulls = [nondecreasing_hull([p["cost_per_request"] for p in ps], [p["score"] for p in ps]) for ps in pts]
    curves = [h for (run, _), h in zip(runs, hulls, strict=True) if len(run.values) > 1]
    max_x = aiq_range([base.zero_hull, *curves])
    zero_boot = np.array([
        aiq(nondecreasing_hull(costs[idx].mean(axis=0), scores[idx].mean(axis=0)), max_x) for idx in boots
    ])
    routers = []
    for (run, tags), ps, hull in zip(runs, pts, hulls, strict=True):
        s = _run_summary(run, ps, hull, base, scores, costs, boots, zero_boot, max_x)
        s.update(tags)
        routers.append(s)
    best = base.best
    zero_aiq = aiq(base.zero_hull, max_x)
    main = next((r for r in routers if r["strategy"] in ("balanced", "frontier") and r.get("role") == "main"), None)
    targets: dict[str, Any] = {}
    if main is not None:
        reach = main["cost_to_reach_vs_best"]["1.0"]
        targets = {
            "router": main["name"],
            "aiq_above_zero_router": {"met": main["aiq"] > zero_aiq, "router_aiq": main["aiq"],
                                      "zero_router_aiq": zero_aiq,
                                      "difference_ci": main.get("aiq_minus_zero_router_ci")},
            "best_single_score_at_half_its_cost": {
                "met": reach is not None and reach <= 0.5, "cost_vs_best_on_hull": reach,
                "realised_point_cost_vs_best": None if main["cheapest_point_reaching_best"] is None
                else main["cheapest_point_reaching_best"] / float(base.single_cost[best]),
                "ci": main.get("cost_to_reach_best_vs_best_ci")},
            "above_random_everywhere": {"met": main["above_random"]["everywhere"], **main["above_random"]},
        }
    return {
        "aiq_range": [0.0, max_x],
        "baselines": {
            "single": [{"model": n, "score": float(s), "cost_per_request": float(c)}
                       for n, s, c in zip(base.names, base.single_score, base.single_cost, strict=True)],
            "best_single": base.names[best],
            "zero_router": {"hull": _hull_list(base.zero_hull), "aiq": zero_aiq,
                            "aiq_ci": percentile_ci(zero_boot.tolist())},
            "oracle": {"score": base.oracle_score, "cost_per_request": base.oracle_cost,
                       "shares": {n: round(float(s), 4) for n, s in zip(base.names, base.oracle_shares, strict=True)
                                  if s > 0}},
        },
        "routers": routers,
        "targets": targets,
        "n_bootstrap": int(n_boot),
    }
