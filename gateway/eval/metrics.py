"""Cost-quality metrics: non-decreasing convex hull, AIQ (RouterBench), APGR / CPT (RouteLLM).

Points are (cost, quality) pairs: mean cost per request and mean score of one operating point.

- Hull: the upper convex hull of the points, cut at its highest quality, so it is concave and
  non-decreasing. Every point on it is reachable by randomly mixing two operating points, which is
  why RouterBench compares routers by their hulls.
- AIQ (Hu et al., 2024, "RouterBench"): ``1 / (c_max - c_min) * integral over [c_min, c_max]`` of
  the hull; right of the hull's dearest point the hull stays flat (more budget never hurts), left
  of its cheapest point it is 0 (that cost is not reachable), as in RouterBench's reference code.
  All curves compared in one report share one [c_min, c_max].
- PGR / APGR / CPT (Ong et al., 2024, "RouteLLM", arXiv 2406.18665) for two models:
  ``PGR = (score - weak) / (strong - weak)`` as a function of the share of calls to the strong
  model; APGR is its average over call shares 10 %, 20 %, ..., 100 % (the paper's discretisation);
  CPT(x) is the smallest call share whose PGR reaches x. The curve is linear between measured
  operating points and anchored at all-weak (0 %, PGR 0) and all-strong (100 %, PGR 1).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "aiq",
    "apgr",
    "bootstrap_samples",
    "cost_to_reach",
    "cpt",
    "hull_at",
    "nondecreasing_hull",
    "percentile_ci",
    "pgr_curve",
]


def nondecreasing_hull(costs: Sequence[float], qualities: Sequence[float]) -> np.ndarray:
    """(k, 2) array of hull vertices sorted by cost, quality non-decreasing."""
    pts = np.column_stack((np.asarray(costs, float), np.asarray(qualities, float)))
    if pts.size == 0:
        return np.zeros((0, 2))
    # Per cost keep the best quality, then sweep left to right for the upper hull.
    order = np.lexsort((-pts[:, 1], pts[:, 0]))
    pts = pts[order]
    keep = np.ones(len(pts), dtype=bool)
    keep[1:] = pts[1:, 0] != pts[:-1, 0]
    pts = pts[keep]
    hull: list[np.ndarray] = []
    for p in pts:
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            # Drop the middle point when it lies on or below the chord from hull[-2] to p.
            if (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1) >= 0:
                hull.pop()
            else:
                break
        hull.append(p)
    out = np.array(hull)
    top = int(np.argmax(out[:, 1]))  # first vertex with the highest quality
    return out[: top + 1]


def hull_at(hull: np.ndarray, cost: float) -> float | None:
    """The hull's quality at ``cost``; None below its cheapest point; flat beyond its dearest."""
    if len(hull) == 0 or cost < hull[0, 0]:
        return None
    return float(np.interp(cost, hull[:, 0], hull[:, 1]))


def aiq(hull: np.ndarray, c_min: float, c_max: float) -> float:
    """Area under the hull over [c_min, c_max] divided by the range (0 left of the hull)."""
    if len(hull) == 0:
        return 0.0
    if c_max <= c_min:
        return float(hull_at(hull, c_min) or 0.0)
    lo = max(c_min, float(hull[0, 0]))
    if lo >= c_max:
        return 0.0
    inner = hull[(hull[:, 0] > lo) & (hull[:, 0] < c_max), 0]
    xs = np.concatenate(([lo], inner, [c_max]))
    ys = np.interp(xs, hull[:, 0], hull[:, 1])
    area = float(np.sum((xs[1:] - xs[:-1]) * (ys[1:] + ys[:-1]) / 2.0))
    return area / (c_max - c_min)


def cost_to_reach(hull: np.ndarray, target: float) -> float | None:
    """Smallest cost at which the hull reaches ``target`` quality (None if it never does)."""
    if len(hull) == 0 or hull[-1, 1] < target - 1e-12:
        return None
    if hull[0, 1] >= target:
        return float(hull[0, 0])
    i = int(np.argmax(hull[:, 1] >= target - 1e-12))
    (x1, y1), (x2, y2) = hull[i - 1], hull[i]
    return float(x1 + (target - y1) * (x2 - x1) / (y2 - y1))


def pgr_curve(
    strong_share: Sequence[float], scores: Sequence[float], weak: float, strong: float
) -> tuple[np.ndarray, np.ndarray]:
    """(call shares, PGR) sorted by share, anchored at (0, 0) and (1, 1); best PGR per share."""
    gap = strong - weak
    if gap <= 0:
        raise ValueError("PGR needs a strong model that scores above the weak one")
    x = np.concatenate(([0.0], np.asarray(strong_share, float), [1.0]))
    y = np.concatenate(([0.0], (np.asarray(scores, float) - weak) / gap, [1.0]))
    order = np.lexsort((-y, x))
    x, y = x[order], y[order]
    keep = np.ones(len(x), dtype=bool)
    keep[1:] = x[1:] != x[:-1]
    return x[keep], y[keep]


def apgr(strong_share: Sequence[float], scores: Sequence[float], weak: float, strong: float) -> float:
    """Average PGR at 10 %, 20 %, ..., 100 % calls to the strong model."""
    x, y = pgr_curve(strong_share, scores, weak, strong)
    grid = np.arange(1, 11) / 10.0
    return float(np.mean(np.interp(grid, x, y)))


def cpt(
    strong_share: Sequence[float], scores: Sequence[float], weak: float, strong: float, level: float
) -> float:
    """Smallest share of strong-model calls at which PGR reaches ``level`` (e.g. 0.5)."""
    x, y = pgr_curve(strong_share, scores, weak, strong)
    for i in range(len(x)):
        if y[i] >= level - 1e-12:
            if i == 0:
                return float(x[0])
            x1, y1, x2, y2 = x[i - 1], y[i - 1], x[i], y[i]
            return float(x1 + (level - y1) * (x2 - x1) / (y2 - y1))
    return 1.0  # the anchor at 100 % always reaches PGR 1


def bootstrap_samples(n: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n) row indices resampled with replacement; seeded, so CIs are reproducible."""
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def percentile_ci(values: Sequence[float], level: float = 0.95) -> list[float] | None:
    """Two-sided percentile interval of bootstrap replicates (None-valued replicates dropped)."""
    v = np.array([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if len(v) == 0:
        return None
    tail = (1.0 - level) / 2.0 * 100.0
    return [float(np.percentile(v, tail)), float(np.percentile(v, 100.0 - tail))]
