"""RouteLLM's two-model benchmark on any data set: the best single model against a cheap one.

The pair is chosen on the train split: **strong** = the best single model there (highest mean
score, the cheaper on a tie), **weak** = the cheapest model other than it. The pair router calls
the strong model when the learned estimates say it gains most on the prompt (``q_strong -
q_weak``), at RouteLLM's ten quantile thresholds (`pair_router_points`); APGR and CPT(20/50/80 %)
are computed as ``evaluate.py`` does (`gateway.eval.metrics`). The oracle (gain = the true score
difference) bounds what any router can reach on the pair.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from gateway.eval.metrics import apgr, cpt, pair_router_points

__all__ = ["choose_pair", "pair_report"]


def choose_pair(train_scores: np.ndarray, train_costs: np.ndarray) -> tuple[int, int] | None:
    """(strong, weak) model indices from the train split; None with fewer than two models."""
    if train_scores.shape[1] < 2:
        return None
    strong = int(np.lexsort((train_costs.mean(axis=0), -train_scores.mean(axis=0)))[0])
    by_cost = [int(j) for j in np.argsort(train_costs.mean(axis=0), kind="stable") if j != strong]
    return strong, by_cost[0]


def _metrics(gain: np.ndarray, s_strong: np.ndarray, s_weak: np.ndarray) -> dict[str, Any]:
    shares, scores = pair_router_points(gain, s_strong, s_weak)
    weak, strong = float(s_weak.mean()), float(s_strong.mean())
    return {"apgr": apgr(shares, scores, weak, strong),
            **{f"cpt_{int(x * 100)}": cpt(shares, scores, weak, strong, x) for x in (0.2, 0.5, 0.8)},
            "points": [[float(a), float(b)] for a, b in zip(shares, scores, strict=True)]}


def pair_report(names: Sequence[str], pair: tuple[int, int] | None, scores: np.ndarray,
                estimates: Mapping[str, Sequence[Mapping[str, float] | None]]) -> dict[str, Any] | None:
    """APGR/CPT of the pair router for each set of per-prompt estimates (name -> per test prompt),
    plus the oracle; None without a pair, and a reason when the strong model does not score above
    the weak one on the test split (PGR is undefined then)."""
    if pair is None:
        return None
    strong, weak = pair
    s_strong, s_weak = scores[:, strong], scores[:, weak]
    out: dict[str, Any] = {"strong": names[strong], "weak": names[weak],
                           "strong_score": float(s_strong.mean()), "weak_score": float(s_weak.mean())}
    if s_strong.mean() <= s_weak.mean():
        out["undefined"] = (f"{names[strong]} (best on the train split) scores {s_strong.mean():.4f} on the test "
                            f"split, not above {names[weak]}'s {s_weak.mean():.4f}")
        return out
    routers = {}
    for label, per_prompt in estimates.items():
        if any(q is None for q in per_prompt):
            continue
        gain = np.array([q[names[strong]] - q[names[weak]] for q in per_prompt])  # type: ignore[index]
        routers[label] = _metrics(gain, s_strong, s_weak)
    routers["oracle"] = _metrics(s_strong - s_weak, s_strong, s_weak)
    out["routers"] = routers
    return out
