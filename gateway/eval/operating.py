"""Operating points on the learned frontier: the calibration table, the default, quality targets.

- `calibration_table`: from a frontier sweep over out-of-fold estimates of the train split, the
  quality share, cost share and reference share at every ``lam`` (relative to the best single
  model on the train split), with the knee as the default operating point.
- `measure_targets`: route the test split at the operating point each target picks from that
  table and report what was realised, next to what the table promised.
- `default_against_hull`: where the shipped default (the knee) lands against a hull.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gateway.eval.metrics import hull_at, hull_gap, knee, nondecreasing_hull
from gateway.eval.routing import Prepared, RouterRun, frontier_params, route_params
from gateway.learning import CalibrationTable, QualityTarget, TargetPlanner
from gateway.selection import ModelInfo, SelectionEngine, SelectionParams

__all__ = [
    "ON_HULL_TOLERANCE",
    "REPORTED_TARGETS",
    "calibration_table",
    "default_against_hull",
    "measure_priors_targets",
    "measure_targets",
    "reference_model",
]

#: Targets `gateway eval` measures on the test split.
REPORTED_TARGETS: tuple[QualityTarget, ...] = (
    QualityTarget("quality", 0.90), QualityTarget("quality", 0.95), QualityTarget("quality", 0.99),
    QualityTarget("cost", 0.30), QualityTarget("strong", 0.30),
)

#: A point counts as on the hull when it is at most this far (in mean score) below it: a quarter
#: of a percentage point, below the sampling error of a mean over a few thousand binary scores.
ON_HULL_TOLERANCE = 0.0025


def reference_model(scores: np.ndarray, costs: np.ndarray) -> int:
    """The best single model (highest mean score; the cheaper on a tie)."""
    return int(np.lexsort((costs.mean(axis=0), -scores.mean(axis=0)))[0])


def _shares(run: RouterRun, scores: np.ndarray, costs: np.ndarray, ref: int) -> tuple[np.ndarray, ...]:
    rows = np.arange(scores.shape[0])
    q = np.array([scores[rows, pick].mean() for pick in run.choices]) / scores[:, ref].mean()
    c = np.array([costs[rows, pick].mean() for pick in run.choices]) / costs[:, ref].mean()
    s = np.array([(pick == ref).mean() for pick in run.choices])
    return q, c, s


def calibration_table(run: RouterRun, scores: np.ndarray, costs: np.ndarray, names: Sequence[str], *,
                      source: str) -> CalibrationTable:
    """``run``: a frontier sweep over the calibration prompts (``scores``/``costs`` their rows)."""
    ref = reference_model(scores, costs)
    q, c, s = _shares(run, scores, costs, ref)
    hull = nondecreasing_hull(c, q)
    kx, ky = hull[knee(hull)]
    at = [i for i in range(len(q)) if c[i] == kx and q[i] == ky]
    knee_lam = float(run.values[at[0]])
    return CalibrationTable.build(
        names[ref], float(scores[:, ref].mean()), float(costs[:, ref].mean()), run.values, q, c, s, knee_lam,
        prompts=int(scores.shape[0]), source=source)


def _point(run: RouterRun, scores: np.ndarray, costs: np.ndarray, ref: int) -> dict[str, float]:
    q, c, s = _shares(run, scores, costs, ref)
    rows = np.arange(scores.shape[0])
    return {"quality_share": float(q[0]), "cost_share": float(c[0]), "strong_share": float(s[0]),
            "score": float(scores[rows, run.choices[0]].mean()),
            "cost_per_request": float(costs[rows, run.choices[0]].mean())}


def measure_targets(engine: SelectionEngine, prep: Prepared, names: Sequence[str], table: CalibrationTable,
                    scores: np.ndarray, costs: np.ndarray,
                    targets: Sequence[QualityTarget] = REPORTED_TARGETS) -> list[dict[str, Any]]:
    """Per target: the table's row and promise, and what routing the test split at it realised
    (shares relative to the table's reference model on the test split)."""
    ref = list(names).index(table.reference)
    out = []
    for target in targets:
        i, met = table.lookup(target)
        row = table.rows[i]
        run = route_params(f"target {target.kind} {target.value:g}", engine, prep, names,
                           lambda k, lam=row.lam: frontier_params(lam, prep, k), value=row.lam)
        realised = _point(run, scores, costs, ref)
        out.append({"kind": target.kind, "value": target.value, "lam": row.lam, "table_met": met,
                    "expected": {"quality_share": row.quality_share, "cost_share": row.cost_share,
                                 "strong_share": row.strong_share},
                    "realised": realised})
    return out


def measure_priors_targets(engine: SelectionEngine, prep: Prepared, names: Sequence[str],
                           catalog: Sequence[ModelInfo], reference: str, scores: np.ndarray, costs: np.ndarray,
                           targets: Sequence[QualityTarget] = REPORTED_TARGETS) -> list[dict[str, Any]]:
    """The same targets without a router model: `TargetPlanner` on the catalog's priors (here the
    best priors a catalog could hold: each model's train-split mean, per domain where the request
    has one), as `gateway serve` routes without GATEWAY_ROUTER_MODEL. ``prep`` must carry no
    per-prompt estimates."""
    planner = TargetPlanner(catalog)
    ref = list(names).index(reference)
    out = []
    for target in targets:
        def params_at(k: int, t: QualityTarget = target) -> SelectionParams:
            ctx = prep.contexts[k]
            return planner.apply(t, SelectionParams(), ctx, None, ctx.request_id)[0]

        run = route_params(f"priors target {target.kind} {target.value:g}", engine, prep, names, params_at)
        out.append({"kind": target.kind, "value": target.value, "realised": _point(run, scores, costs, ref)})
    return out


def default_against_hull(run: RouterRun, sweep_run: RouterRun, scores: np.ndarray, costs: np.ndarray,
                         table: CalibrationTable, names: Sequence[str]) -> dict[str, Any]:
    """The shipped default's test point against the hull of ``sweep_run`` (the main curve).

    The hull at the default's cost is a mix of two sweep points with the same mean cost, so
    ``hull - default`` is a paired mean over the test prompts; its 95 % interval says whether the
    default is distinguishable from the hull. ``on_hull``: the gap is within `ON_HULL_TOLERANCE`
    or that interval includes 0 (on a few hundred prompts, sampling noise alone makes a realised
    curve jagged by more than the tolerance)."""
    ref = list(names).index(table.reference)
    p = _point(run, scores, costs, ref)
    rows = np.arange(scores.shape[0])
    sq = scores[rows[None, :], sweep_run.choices]  # (points, prompts)
    sc = costs[rows[None, :], sweep_run.choices]
    mc, mq = sc.mean(axis=1), sq.mean(axis=1)
    hull = nondecreasing_hull(mc, mq)
    cost, score = p["cost_per_request"], p["score"]
    at = hull_at(hull, cost)
    gap = hull_gap(hull, cost, score)
    ci = None
    if at is not None and len(hull) > 1 and cost <= hull[-1, 0]:
        j = int(np.clip(np.searchsorted(hull[:, 0], cost) - 1, 0, len(hull) - 2))
        (c1, q1), (c2, q2) = hull[j], hull[j + 1]
        a = int(np.flatnonzero((mc == c1) & (mq == q1))[0])
        b = int(np.flatnonzero((mc == c2) & (mq == q2))[0])
        w = (c2 - cost) / (c2 - c1)
        diff = w * sq[a] + (1.0 - w) * sq[b] - scores[rows, run.choices[0]]
        half = 1.96 * float(diff.std(ddof=1)) / float(np.sqrt(len(diff)))
        ci = [float(diff.mean()) - half, float(diff.mean()) + half]
    row = table.rows[table.knee]
    within = bool(gap <= ON_HULL_TOLERANCE)
    return {**p, "lam": row.lam, "hull_quality_at_cost": at, "gap_below_hull": gap,
            "gap_ci95": ci, "within_tolerance": within,
            "on_hull": bool(within or (ci is not None and ci[0] <= 0.0)), "tolerance": ON_HULL_TOLERANCE,
            "expected": {"quality_share": row.quality_share, "cost_share": row.cost_share}}
