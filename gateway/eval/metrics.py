"""Cost-quality metrics as the routing literature computes them: hull, AIQ, PGR / APGR / CPT.

Points are (cost, quality) pairs: mean cost per request and mean score of one operating point.

- **Hull**: the upper convex hull of the points, cut at its highest quality, so it is concave and
  non-decreasing. Every point on it is reachable by randomly mixing two operating points, which is
  why RouterBench compares routers by their hulls.
- **AIQ** (Hu et al., 2024, "RouterBench", arXiv 2403.12031, §3; reference code
  ``withmartian/routerbench`` ``evaluation/AIQ.py::calc_AIQ``): each router's non-decreasing convex
  hull gets a last point ``(max_x, its best quality)``, where ``max_x`` is the largest cost on any
  hull in the comparison, and ``AIQ = trapz(hull) / max_x``. So the cost range is ``[0, max_x]``,
  shared by every curve compared; the curve counts as 0 left of its cheapest point and flat right
  of its dearest. `aiq` computes exactly that area (the reference code's hull evaluates the same
  upper envelope at every input cost, which changes no area).
- **PGR / APGR / CPT** (Ong et al., 2024, "RouteLLM", arXiv 2406.18665; reference code
  ``lm-sys/RouteLLM`` ``routellm/evals/evaluate.py``) for a strong and a weak model:
  ``PGR = (score - weak) / (strong - weak)`` as a function of the share of calls to the strong
  model. ``evaluate.py`` sorts the router's operating points by that share, integrates the scores
  with the trapezoid rule (``np.trapz``), and sets ``APGR = (AUC - weak_auc) / (strong_auc -
  weak_auc)`` where ``weak_auc`` / ``strong_auc`` integrate the constant single-model scores over
  the same share range. Its operating points always include all-weak (0 %) and all-strong (100 %)
  (the lowest and highest win-rate thresholds), so APGR is the area under PGR over [0, 1]: a random
  router scores 0.500. We add those two anchors explicitly. ``CPT(x)`` ("x% qual" in
  ``evaluate.py``) is ``np.interp(weak + x * (strong - weak), scores, shares)`` on the same sorted
  points: the call share at which the score reaches that fraction of the gap.
  (The paper's text discretises APGR as the mean PGR at 10 %, ..., 100 %; that gives a random
  router 0.55 and is not what its published numbers were computed with.)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "aiq",
    "aiq_range",
    "apgr",
    "bootstrap_samples",
    "cost_to_reach",
    "cpt",
    "hull_at",
    "hull_gap",
    "knee",
    "nondecreasing_hull",
    "pair_router_points",
    "percentile_ci",
    "routellm_curve",
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


def hull_gap(hull: np.ndarray, cost: float, quality: float) -> float:
    """How far the point ``(cost, quality)`` lies below the hull: 0 on or above it, and 0 when it is
    cheaper than every hull point (nothing on the curve costs that little)."""
    at = hull_at(hull, cost)
    return 0.0 if at is None else max(0.0, at - quality)


def aiq_range(hulls: Sequence[np.ndarray]) -> float:
    """RouterBench's ``max_x``: the largest cost on any of the compared hulls."""
    return max((float(h[-1, 0]) for h in hulls if len(h)), default=0.0)


def aiq(hull: np.ndarray, max_x: float) -> float:
    """RouterBench AIQ: area under ``hull`` over [0, max_x] / max_x (0 left of the hull's cheapest
    point, flat right of its dearest). ``max_x`` comes from `aiq_range` over every curve compared."""
    if len(hull) == 0 or max_x <= 0.0:
        return 0.0
    lo = float(hull[0, 0])
    if lo >= max_x:
        return 0.0
    inner = hull[(hull[:, 0] > lo) & (hull[:, 0] < max_x), 0]
    xs = np.concatenate(([lo], inner, [max_x]))
    ys = np.interp(xs, hull[:, 0], hull[:, 1])  # flat beyond the last vertex
    return float(np.sum((xs[1:] - xs[:-1]) * (ys[1:] + ys[:-1]) / 2.0)) / max_x


def cost_to_reach(hull: np.ndarray, target: float) -> float | None:
    """Smallest cost at which the hull reaches ``target`` quality (None if it never does)."""
    if len(hull) == 0 or hull[-1, 1] < target - 1e-12:
        return None
    if hull[0, 1] >= target:
        return float(hull[0, 0])
    i = int(np.argmax(hull[:, 1] >= target - 1e-12))
    (x1, y1), (x2, y2) = hull[i - 1], hull[i]
    return float(x1 + (target - y1) * (x2 - x1) / (y2 - y1))


def knee(hull: np.ndarray) -> int:
    """Index of the hull vertex farthest above the chord from its cheapest to its best vertex
    ("Kneedle", Satopaa et al. 2011, applied to the concave hull): past it, each extra dollar buys
    less quality than the average dollar over the whole curve. A hull of one or two vertices has
    no knee; its best vertex is returned."""
    if len(hull) < 3:
        return len(hull) - 1
    (x0, y0), (x1, y1) = hull[0], hull[-1]
    chord = y0 + (hull[:, 0] - x0) * (y1 - y0) / (x1 - x0)
    return int(np.argmax(hull[:, 1] - chord))


def routellm_curve(
    strong_share: Sequence[float], scores: Sequence[float], weak: float, strong: float
) -> tuple[np.ndarray, np.ndarray]:
    """(call shares, scores) sorted by share as ``evaluate.py`` integrates them: the router's points
    plus the all-weak (0, weak) and all-strong (1, strong) anchors; ties keep their given order."""
    x = np.concatenate(([0.0], np.asarray(strong_share, float), [1.0]))
    y = np.concatenate(([weak], np.asarray(scores, float), [strong]))
    order = np.argsort(x, kind="stable")
    return x[order], y[order]


def apgr(strong_share: Sequence[float], scores: Sequence[float], weak: float, strong: float) -> float:
    """RouteLLM's APGR: ``(AUC - weak_auc) / (strong_auc - weak_auc)`` with trapezoid AUCs over the
    strong-call share; a random router scores 0.5. Raises ValueError when strong <= weak."""
    if strong <= weak:
        raise ValueError("PGR needs a strong model that scores above the weak one")
    x, y = routellm_curve(strong_share, scores, weak, strong)
    width = float(x[-1] - x[0])
    auc = float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0))
    return (auc - weak * width) / ((strong - weak) * width)


def cpt(
    strong_share: Sequence[float], scores: Sequence[float], weak: float, strong: float, level: float
) -> float:
    """RouteLLM's CPT(level): ``np.interp(weak + level * (strong - weak), scores, shares)`` over the
    share-sorted curve, as ``evaluate.py`` computes its "20/50/80% qual" columns. (np.interp assumes
    increasing scores; like the reference, a non-monotone curve is not repaired.)"""
    x, y = routellm_curve(strong_share, scores, weak, strong)
    return float(np.interp(weak + level * (strong - weak), y, x))


def pair_router_points(
    gain: np.ndarray, strong_scores: np.ndarray, weak_scores: np.ndarray, bins: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Operating points of a two-model router that calls the strong model when ``gain`` (its
    predicted advantage for the prompt) reaches a threshold. Thresholds are the ``bins``-quantile
    edges of ``gain`` (RouteLLM ``benchmarks.py``: ``pd.qcut(win_rates, 10, retbins=True)``, ``>=``
    for every edge but the last, ``>`` for the last, so the points span all-strong to all-weak).
    Returns (strong-call shares, mean scores)."""
    edges = np.quantile(np.asarray(gain, float), np.linspace(0.0, 1.0, bins + 1))
    shares, means = [], []
    for i, t in enumerate(edges):
        pick = gain >= t if i < len(edges) - 1 else gain > t
        shares.append(float(pick.mean()))
        means.append(float(np.where(pick, strong_scores, weak_scores).mean()))
    return np.array(shares), np.array(means)


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
