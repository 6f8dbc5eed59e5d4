"""The immutable snapshot scorers read: the feasible estimates plus the set's best cost and latency.

Cost and latency spread over orders of magnitude (a 1000x price gap is normal), so they are scored
on a log scale, relative to the best feasible value and over a fixed range ``R``::

    score = 1 - ln(v / v_best) / ln(R), floored at 0

The cheapest (fastest) feasible model scores 1; every halving of the value gains the same amount;
a model ``R`` times dearer (slower) than the best, or worse, scores 0. The range is fixed
(`Priors.cost_range` 1000x, `Priors.latency_range` 10x) rather than the feasible set's spread: with
min-max normalisation two candidates 5 % apart would score 1 and 0, so the size of a gap, not
just its sign, would be lost. The difference between two candidates' scores is
``ln(v_i / v_j) / ln(R)`` whoever else is feasible (until one reaches the floor), so removing or
adding a third candidate does not reorder them. Values are floored first (free models, cached
answers) because ``ln 0`` is undefined.

The best value is found once per selection, so every scorer is a pure function of the snapshot.

Every logarithm of a cost or latency, on every path, is numpy's `log` (`ln`, `ln_each`): the
columnar path for large catalogs (`_columnar_order.py`) takes a whole column's at once (~1 ns per
value, against ~60 ns for `math.log` through Python), and numpy's SIMD `log` differs from
`math.log` in the last bit for ~0.03 % of inputs, so the loop path takes the same one and both rank
alike. Its result for a value does not depend on the array it is in (length, position, alignment:
tests/selection/test_snapshot_logs.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from math import log
from operator import itemgetter
from typing import NamedTuple

import numpy as np

from gateway.selection._estimate import Estimate, Priors

__all__ = ["Snapshot", "ln", "ln_each", "log_score", "log_scores"]

_log = np.log
_F8 = np.float64


def ln(value: float) -> float:
    """The natural logarithm of one cost or latency, as every selection path takes it."""
    return _log(value).item()


def ln_each(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """`ln` of each value, as an array."""
    return _log(np.asarray(values, dtype=_F8))

_new = tuple.__new__  # NamedTuple's generated __new__ costs more than the tuple it builds
_cost = itemgetter(2)  # Estimate.cost_usd
_latency = itemgetter(3)  # Estimate.latency_ms
_DEFAULTS = Priors()


class Snapshot(NamedTuple):
    """Feasible candidates of one selection, their floored costs and latencies, the best of each."""

    estimates: tuple[Estimate, ...]
    costs: tuple[float, ...]  # expected USD, floored
    latencies: tuple[float, ...]  # expected ms, floored
    cost_lo: float  # ln(lowest cost)
    cost_span: float  # ln(cost range): a model this much dearer than the cheapest scores 0
    latency_lo: float
    latency_span: float

    @classmethod
    def of(
        cls,
        estimates: Sequence[Estimate],
        cost_floor: float,
        latency_floor: float,
        cost_range: float = _DEFAULTS.cost_range,
        latency_range: float = _DEFAULTS.latency_range,
    ) -> Snapshot:
        cost_span, latency_span = log(cost_range), log(latency_range)
        if not estimates:
            return cls((), (), (), 0.0, cost_span, 0.0, latency_span)
        costs = tuple([c if c > cost_floor else cost_floor for c in map(_cost, estimates)])
        latencies = tuple(
            [v if v > latency_floor else latency_floor for v in map(_latency, estimates)]
        )
        return _new(
            cls,
            (
                tuple(estimates),
                costs,
                latencies,
                ln(min(costs)),
                cost_span,
                ln(min(latencies)),
                latency_span,
            ),
        )


def log_score(value: float, lo: float, span: float) -> float:
    """``1 - (ln v - lo) / span`` floored at 0; 1.0 for everyone when ``span`` is not positive."""
    if span <= 0.0:
        return 1.0
    d = (ln(value) - lo) / span
    return 1.0 - d if d < 1.0 else 0.0


def log_scores(values: Sequence[float], lo: float, span: float) -> list[float]:
    """`log_score` of each (already floored) value, in one pass."""
    if span <= 0.0:
        return [1.0] * len(values)
    return [1.0 - d if (d := (v - lo) / span) < 1.0 else 0.0 for v in ln_each(values).tolist()]
