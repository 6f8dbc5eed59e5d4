"""Scores and a strategy's order for a large catalog's `ColumnarSplit`, on arrays (see `_columnar`).

Each function restates one of the loop's steps with its floats in its order: the scorers' columns
(`scorers.py`, `_snapshot.log_scores`), the strategies' `rank_all` (`strategies.py`,
`frontier.py`), and the `Estimate` of a feasible model, built when a candidate is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from math import log

import numpy as np

from gateway.selection._columnar import ColumnarSplit
from gateway.selection._estimate import Estimate, Priors
from gateway.selection._ranked import LazyTuple
from gateway.selection._snapshot import Snapshot, ln, ln_each
from gateway.selection.frontier import Frontier, TargetShare
from gateway.selection.strategies import CheapestFirst, StrongestFirst

__all__ = ["scores_and_order"]

_new = tuple.__new__


def _estimate(split: ColumnarSplit, models: Sequence, k: int) -> Estimate:
    """The `Estimate` of the ``k``-th feasible model, as the loop builds it."""
    j = split.rows.item(k)  # `item(k)`: a Python number without a numpy scalar in between
    snap = split.snapshot
    return _new(Estimate, (
        models[j], split.out.item(k), split.cost.item(k), split.latency.item(k), split.quality.item(k),
        split.quality_domain[j], split.errors.item(k), snap.samples[j], split.prior_latency.item(k),
        split.live_latency[j], snap.out_prior[j], snap.out_live[j],
    ))  # fmt: skip


def _log_scores(logs: np.ndarray, lo: float, span: float) -> np.ndarray:
    # `_snapshot.log_scores` from the values' logarithms, elementwise in its order.
    if span <= 0.0:
        return np.ones(len(logs))
    d = (logs - lo) / span
    return np.where(d < 1.0, 1.0 - d, 0.0)


class _Floats:
    """An array read as Python floats, one item at a time: a ranking reads a few candidates'
    scores, so converting whole columns (`tolist`) cost more than it saved."""

    __slots__ = ("_item", "_len")

    def __init__(self, values: np.ndarray) -> None:
        self._item = values.item
        self._len = len(values)

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, i: int) -> float:
        return self._item(i)


def _stable(keys: np.ndarray) -> np.ndarray:
    return np.argsort(keys, kind="stable")


def scores_and_order(
    split: ColumnarSplit, models: Sequence, priors: Priors, strategy: object, names: tuple[str, ...],
) -> tuple[Snapshot, list[Sequence[float]], Sequence[float], list[int]]:
    """The snapshot, every default scorer's column (in ``names`` order), the strategy's totals and
    its order: what the scorers and `rank_all` give for the loop's estimates."""
    cost_floor, latency_floor = priors.cost_floor_usd, priors.latency_floor_ms
    cost_span, latency_span = log(priors.cost_range), log(priors.latency_range)
    costs = np.where(split.cost > cost_floor, split.cost, cost_floor)
    latencies = np.where(split.latency > latency_floor, split.latency, latency_floor)
    cost_lo, latency_lo = ln(costs.min().item()), ln(latencies.min().item())
    latency_logs = split.snapshot.log_latencies(latency_floor)[split.rows]
    if split.capped is not None:
        moved = np.flatnonzero(split.capped)
        latency_logs[moved] = ln_each(latencies[moved])
    by_name = {
        "cost": _log_scores(ln_each(costs), cost_lo, cost_span),
        "quality": split.quality,
        "latency": _log_scores(latency_logs, latency_lo, latency_span),
        "reliability": 1.0 - split.errors,
    }
    quality = split.quality
    if type(strategy) is CheapestFirst:
        first = _stable(-quality)
        order = first[_stable(split.cost[first])]
        totals = by_name["cost"] if "cost" in names else np.zeros(len(quality))  # as `rank_all`: 0 unscored
    elif type(strategy) is StrongestFirst:
        first = _stable(split.latency)
        order = first[_stable(-quality[first])]
        totals = by_name["quality"] if "quality" in names else np.zeros(len(quality))
    elif type(strategy) is Frontier:
        totals, order = _frontier(split, strategy)
    elif type(strategy) is TargetShare:
        totals, order = _target_share(split, strategy)
    else:  # Weighted: `0.0 + w1 * s1 + w2 * s2 + ...`, left to right
        totals = np.zeros(len(quality))
        for key, weight in strategy.weights:  # type: ignore[attr-defined]
            totals = totals + weight * by_name[key]
        first = _stable(split.cost)
        order = first[_stable(-totals[first])]
    # Costs and latencies stay arrays: only explanations read them, a few candidates each.
    estimates = LazyTuple((), len(split.rows), partial(_estimate, split, models))  # built when read
    snap = _new(Snapshot, (estimates, costs, latencies, cost_lo, cost_span, latency_lo,
                           latency_span))  # fmt: skip
    return snap, [_Floats(by_name[name]) for name in names], _Floats(totals), order.tolist()


def _frontier(split: ColumnarSplit, strategy: Frontier) -> tuple[np.ndarray, np.ndarray]:
    """`Frontier.rank_all`: ``quality - lam * cost`` best first, ties cheapest first, then by name;
    a cost the router model predicted for a model replaces the engine's."""
    costs = split.cost
    if strategy.costs:
        given = np.zeros(len(split.snapshot.out), dtype=bool)
        value = np.zeros(len(given))
        index = split.index
        for name, c in strategy.costs.items():
            j = index.get(name)
            if j is not None and c is not None:
                given[j], value[j] = True, c
        costs = np.where(given[split.rows], value[split.rows], costs)
    totals = split.quality - strategy.lam * costs
    first = _stable(costs)
    return totals, first[_stable(-totals[first])]


def _target_share(split: ColumnarSplit, strategy: TargetShare) -> tuple[np.ndarray, np.ndarray]:
    """`TargetShare.rank_all`: its sort keys as columns, sorted by `lexsort` (rows are in name
    order, so the position breaks the last ties as the name does)."""
    quality, cost = split.quality, split.cost
    n = len(quality)
    position = np.arange(n)
    best = np.lexsort((position, cost, -quality))[0]  # min of (-quality, cost, name)
    if strategy.kind == "quality":
        inside = quality >= strategy.share * quality.item(best) - 1e-12
        second, third = np.where(inside, cost, -quality), np.where(inside, -quality, cost)
    else:
        inside = cost <= strategy.share * cost.item(best) + 1e-15
        second, third = -quality, cost
    group = np.where(inside, 0.0, 1.0)
    if strategy.demote_best:
        group[best] = 2.0  # still a fallback, last, keyed (-quality, cost) as outside the share
        if strategy.kind == "quality":
            second[best], third[best] = -quality.item(best), cost.item(best)
    order = np.lexsort((position, third, second, group))
    totals = np.empty(n)
    totals[order] = 1.0 - np.arange(n) / n  # `1.0 - rank / n`: a position score, 1 for the first choice
    return totals, order
