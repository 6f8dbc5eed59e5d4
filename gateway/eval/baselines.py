"""Baselines every router is compared with, computed from the test outcomes alone.

- single models: always model m;
- zero router: the hull of the single models, i.e. the best you can do by randomly mixing
  models without looking at the prompt (RouterBench's "zero router");
- random at matched cost: for a router operating point with call shares s_m, a router that picks
  model m with probability s_m regardless of the prompt: same expected cost, and its expected
  score shows what the router's *choice of prompts* adds;
- oracle: per prompt the best-scoring model, the cheapest among ties (an upper bound).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gateway.eval.metrics import nondecreasing_hull

__all__ = ["Baselines", "compute_baselines", "matched_random"]


@dataclass(frozen=True, slots=True)
class Baselines:
    names: tuple[str, ...]
    single_score: np.ndarray  # mean score per model
    single_cost: np.ndarray  # mean cost per request per model
    zero_hull: np.ndarray
    oracle_score: float
    oracle_cost: float
    oracle_shares: np.ndarray

    @property
    def best(self) -> int:
        """Index of the best single model (ties -> cheaper)."""
        return int(np.lexsort((self.single_cost, -self.single_score))[0])

    @property
    def cost_range(self) -> tuple[float, float]:
        return float(self.single_cost.min()), float(self.single_cost.max())


def oracle_choice(scores: np.ndarray, costs: np.ndarray) -> np.ndarray:
    """Per row, the cheapest model among those with the row's best score."""
    best = scores.max(axis=1, keepdims=True)
    masked = np.where(scores >= best - 1e-12, costs, np.inf)
    return np.argmin(masked, axis=1)


def compute_baselines(names: tuple[str, ...], scores: np.ndarray, costs: np.ndarray) -> Baselines:
    s, c = scores.mean(axis=0), costs.mean(axis=0)
    pick = oracle_choice(scores, costs)
    rows = np.arange(len(scores))
    shares = np.bincount(pick, minlength=len(names)) / len(scores)
    return Baselines(names, s, c, nondecreasing_hull(c, s), float(scores[rows, pick].mean()),
                     float(costs[rows, pick].mean()), shares)


def matched_random(shares: np.ndarray, base: Baselines) -> tuple[float, float]:
    """(expected score, expected cost per request) of random routing with these call shares."""
    return float(shares @ base.single_score), float(shares @ base.single_cost)
