"""Strategies: how scored candidates are ordered.

A strategy is a small immutable object. ``rank_key(est, scores)`` defines it for one candidate:
the reported total and the sort key (ascending = better). Sort keys always end with the model
name, so the order is total and never depends on catalog order. ``rank_all(snap, columns)`` is the
same order for a whole snapshot at once, which is what the engine calls on every request: a
Python call and a key tuple per candidate cost more than the comparison itself. It sorts indices
with stable single-float sorts, least significant key first, over a snapshot already in name
order, so the name tie-break comes free. A property test checks the two agree.

- ``cost``: cheapest expected cost first; ties -> higher quality, then name. Total = cost score.
- ``performance``: highest quality first; ties -> lower expected latency, then name.
  Total = quality score.
- ``balanced``: weighted mean of scorer scores with `BALANCED_WEIGHTS`; ties -> cheaper, then name.
- ``custom``: the same with ``SelectionParams.weights`` (non-negative, not all zero, known names).
- ``frontier`` / ``target``: an operating point on the cost-quality frontier, from
  ``SelectionParams.frontier`` (`gateway.selection.frontier`; set by quality targets and by the
  learned default, never named by clients).

The quality floor of ``cost`` is the hard ``min_quality`` constraint, applied before ranking.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from math import isfinite
from types import MappingProxyType
from typing import Protocol

from gateway.selection._estimate import Estimate
from gateway.selection._snapshot import Snapshot
from gateway.selection.frontier import FRONTIER, TARGET_SHARE, Frontier, FrontierParams, TargetShare
from gateway.selection.types import SelectionParams

__all__ = [
    "BALANCED_WEIGHTS",
    "STRATEGIES",
    "CheapestFirst",
    "InvalidWeightsError",
    "SelectionParamsError",
    "Strategy",
    "StrongestFirst",
    "UnknownStrategyError",
    "Weighted",
    "resolve_strategy",
]

STRATEGIES = ("cost", "performance", "balanced", "custom")

#: Quality leads because a wrong answer costs a retry (and the user's trust), and because it is
#: the one score on an absolute scale: cost and latency are relative to the best feasible value
#: over ranges catalogs fill (1000x, 10x), spanning most of [0, 1], while real catalogs' qualities
#: span ~0.3-0.5. With 0.6 on quality, a full quality spread weighs about as much as the full cost
#: plus latency spreads.
#: Cost and latency share the rest equally (latency is partly hidden by streaming); reliability is
#: small because the circuit breaker and fallbacks already absorb failures.
BALANCED_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {"quality": 0.6, "cost": 0.15, "latency": 0.15, "reliability": 0.1}
)

SortKey = tuple[float, float, str]
Columns = Mapping[str, Sequence[float]]  # scorer name -> one score per snapshot candidate


class SelectionParamsError(ValueError):
    """Bad selection parameters from a client; callers map this to HTTP 400."""


class UnknownStrategyError(SelectionParamsError):
    def __init__(self, name: str) -> None:
        self.strategy = name
        self.allowed = STRATEGIES
        super().__init__(f"unknown strategy {name!r}; allowed: {', '.join(STRATEGIES)}")


class InvalidWeightsError(SelectionParamsError):
    pass


class Strategy(Protocol):
    name: str

    def rank_key(self, est: Estimate, scores: Mapping[str, float]) -> tuple[float, SortKey]:
        """The candidate's reported total and its sort key (ascending = better)."""
        ...

    def rank_all(self, snap: Snapshot, columns: Columns) -> tuple[Sequence[float], list[int]]:
        """Every candidate's total (snapshot order) and the snapshot indices best-first.

        Must order as sorting by `rank_key` would; ``snap.estimates`` are in model-name order.
        """
        ...


def _by(values: Sequence[float]) -> Callable[[int], float]:
    # Sort keys for `sorted(range(n))`: index -> value, without a Python-level call per item.
    return values.__getitem__


def _weighted_sums(weights: tuple[tuple[str, float], ...], columns: Columns, n: int) -> list[float]:
    """Per candidate, ``0.0 + w1 * s1 + w2 * s2 + ...`` added left to right, as `Weighted.rank_key`
    adds them. Up to four weights (`balanced` has four) in one pass over the candidates: a pass per
    weight cost a list per weight, which showed at 1,000 candidates."""
    cols = [columns[key] for key, _ in weights]
    ws = [w for _, w in weights]
    if len(ws) == 4:
        (w1, w2, w3, w4), (c1, c2, c3, c4) = ws, cols
        return [0.0 + w1 * a + w2 * b + w3 * c + w4 * d for a, b, c, d in zip(c1, c2, c3, c4, strict=True)]
    if len(ws) == 3:
        (w1, w2, w3), (c1, c2, c3) = ws, cols
        return [0.0 + w1 * a + w2 * b + w3 * c for a, b, c in zip(c1, c2, c3, strict=True)]
    totals = [0.0] * n
    for weight, column in zip(ws, cols, strict=True):
        totals = [t + weight * v for t, v in zip(totals, column, strict=True)]
    return totals


class CheapestFirst:
    """``cost``: lexicographic (expected cost asc, quality desc, name asc)."""

    __slots__ = ()
    name = "cost"

    def rank_key(self, est: Estimate, scores: Mapping[str, float]) -> tuple[float, SortKey]:
        return scores.get("cost", 0.0), (est.cost_usd, -est.quality, est.model.name)

    def rank_all(self, snap: Snapshot, columns: Columns) -> tuple[Sequence[float], list[int]]:
        ests = snap.estimates
        order = sorted(range(len(ests)), key=_by([e.quality for e in ests]), reverse=True)
        order.sort(key=_by([e.cost_usd for e in ests]))
        return columns.get("cost") or [0.0] * len(ests), order


class StrongestFirst:
    """``performance``: lexicographic (quality desc, expected latency asc, name asc)."""

    __slots__ = ()
    name = "performance"

    def rank_key(self, est: Estimate, scores: Mapping[str, float]) -> tuple[float, SortKey]:
        return scores.get("quality", 0.0), (-est.quality, est.latency_ms, est.model.name)

    def rank_all(self, snap: Snapshot, columns: Columns) -> tuple[Sequence[float], list[int]]:
        ests = snap.estimates
        order = sorted(range(len(ests)), key=_by([e.latency_ms for e in ests]))
        order.sort(key=_by([e.quality for e in ests]), reverse=True)
        return columns.get("quality") or [0.0] * len(ests), order


class Weighted:
    """Weighted mean of scores; ties -> expected cost asc, then name asc."""

    __slots__ = ("name", "weights")

    def __init__(self, name: str, weights: Mapping[str, float]) -> None:
        total = sum(weights.values())
        # Normalised so totals stay in [0, 1] whatever scale the client used.
        self.weights = tuple((k, w / total) for k, w in sorted(weights.items()) if w > 0)
        self.name = name

    def rank_key(self, est: Estimate, scores: Mapping[str, float]) -> tuple[float, SortKey]:
        total = 0.0
        for key, weight in self.weights:
            total += weight * scores[key]
        return total, (-total, est.cost_usd, est.model.name)

    def rank_all(self, snap: Snapshot, columns: Columns) -> tuple[Sequence[float], list[int]]:
        ests = snap.estimates
        totals = _weighted_sums(self.weights, columns, len(ests))
        order = sorted(range(len(ests)), key=_by([e.cost_usd for e in ests]))
        order.sort(key=_by(totals), reverse=True)  # reverse keeps ties in order: sort is stable
        return totals, order


def _checked_weights(
    weights: Mapping[str, float], scorer_names: Collection[str]
) -> Mapping[str, float]:
    unknown = sorted(set(weights) - set(scorer_names))
    if unknown:
        raise InvalidWeightsError(
            f"unknown scorer(s) in weights: {', '.join(unknown)}; "
            f"known: {', '.join(sorted(scorer_names))}"
        )
    for key, value in weights.items():
        valid = isinstance(value, int | float) and not isinstance(value, bool)
        if not valid or not isfinite(value) or value < 0:
            raise InvalidWeightsError(f"weight for {key!r} must be a non-negative number")
    if not any(value > 0 for value in weights.values()):
        raise InvalidWeightsError("weights must not all be zero")
    return weights


def resolve_strategy(params: SelectionParams, scorer_names: Collection[str]) -> Strategy:
    """The strategy named in ``params``; raises `SelectionParamsError` for bad names or weights."""
    name = params.strategy
    if name == "cost":
        return CheapestFirst()
    if name == "performance":
        return StrongestFirst()
    if name == "balanced":
        present = {k: w for k, w in BALANCED_WEIGHTS.items() if k in scorer_names}
        if not present:
            raise InvalidWeightsError("balanced needs at least one of its scorers")
        return Weighted(name, present)
    if name == "custom":
        return Weighted(name, _checked_weights(params.weights, scorer_names))
    if name in (FRONTIER, TARGET_SHARE):  # set by a quality target or the learned default
        if not isinstance(params.frontier, FrontierParams):
            raise InvalidWeightsError(f"strategy {name!r} needs an operating point (SelectionParams.frontier)")
        return Frontier(params.frontier) if name == FRONTIER else TargetShare(params.frontier)
    raise UnknownStrategyError(name)
