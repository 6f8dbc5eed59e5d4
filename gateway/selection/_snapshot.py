"""The immutable snapshot scorers read: the feasible estimates plus set-level log-scale bounds.

Cost and latency only mean something relative to the alternatives, and they spread over orders of
magnitude (a 1000x price gap is normal), so they are normalised on a log scale::

    score = (ln v_max - ln v) / (ln v_max - ln v_min)      # = 1 - (ln v - ln v_min) / span

The cheapest (fastest) feasible model scores 1, the dearest (slowest) 0, and every halving of the
value gains the same amount. Values are floored first (free models, cached answers) because
``ln 0`` is undefined. Written as ``(hi - ln v) / (hi - lo)`` the result stays inside [0, 1]
without clamping: float subtraction is monotone and ``span / span`` is exactly 1.

The bounds are computed once per selection, so every scorer is a pure function of the snapshot.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import log
from operator import itemgetter
from typing import NamedTuple

from gateway.selection._estimate import Estimate

__all__ = ["Snapshot", "log_scores"]

_new = tuple.__new__  # NamedTuple's generated __new__ costs more than the tuple it builds
_cost = itemgetter(2)  # Estimate.cost_usd
_latency = itemgetter(3)  # Estimate.latency_ms


class Snapshot(NamedTuple):
    """Feasible candidates of one selection and the log-scale bounds over them."""

    estimates: tuple[Estimate, ...]
    costs: tuple[float, ...]  # expected USD, floored
    latencies: tuple[float, ...]  # expected ms, floored
    cost_hi: float  # ln(max cost)
    cost_span: float  # ln(max cost) - ln(min cost); 0 means every candidate scores 1
    latency_hi: float
    latency_span: float

    @classmethod
    def of(
        cls, estimates: Sequence[Estimate], cost_floor: float, latency_floor: float
    ) -> Snapshot:
        if not estimates:
            return cls((), (), (), 0.0, 0.0, 0.0, 0.0)
        costs = tuple([c if c > cost_floor else cost_floor for c in map(_cost, estimates)])
        latencies = tuple(
            [v if v > latency_floor else latency_floor for v in map(_latency, estimates)]
        )
        cost_hi, latency_hi = log(max(costs)), log(max(latencies))
        return _new(
            cls,
            (
                tuple(estimates),
                costs,
                latencies,
                cost_hi,
                cost_hi - log(min(costs)),
                latency_hi,
                latency_hi - log(min(latencies)),
            ),
        )

def log_scores(values: Sequence[float], hi: float, span: float) -> list[float]:
    """``(hi - ln v) / span`` for each (already floored) value; all 1.0 when ``span`` is 0."""
    if span <= 0.0:
        return [1.0] * len(values)
    return [(hi - log(v)) / span for v in values]
