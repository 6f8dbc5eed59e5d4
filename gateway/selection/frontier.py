"""Strategies that aim at a point on the cost-quality frontier instead of weighing scores.

- `Frontier` ranks by ``quality - lam * cost / cost_scale``: for a fixed ``lam`` this is the
  choice that maximises expected quality minus the price of quality, so sweeping ``lam`` traces the
  router's cost-quality curve (the Lagrangian of "best quality for this budget"). Cost is in
  dollars, not log-normalised over the feasible set: a long prompt costs more on every model, and
  only an absolute price lets the router send the long ones to a cheaper model. ``cost_scale``
  (the reference model's mean cost per request on the calibration data) makes ``lam`` unit-free:
  at ``lam = 1`` one reference-request's worth of money is worth one point of P(good).
  `gateway eval` sweeps ``lam``; a quality target picks it from the calibration table
  (`gateway.learning.target`).
- `TargetShare` is the fallback without a calibration table: among the feasible models, the
  cheapest whose quality is at least ``share`` x the best feasible quality (``kind="quality"``),
  or the best whose expected cost is at most ``share`` x the best model's (``kind="cost"``),
  from the catalog's priors (and live feedback), one decision per request.

Both are selected through `SelectionParams.frontier` (see `resolve_strategy`); neither has
per-call state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from gateway.selection._estimate import Estimate
from gateway.selection._snapshot import Snapshot

__all__ = ["FRONTIER", "TARGET_SHARE", "Frontier", "FrontierParams", "TargetShare"]

FRONTIER = "frontier"
TARGET_SHARE = "target"

SortKey = tuple[float, float, str]


@dataclass(frozen=True, slots=True)
class FrontierParams:
    """What a frontier strategy needs for one request (carried by `SelectionParams.frontier`).

    ``lam``/``cost_scale``: the `Frontier` operating point. ``costs``: expected USD per model for
    this request when the router model predicts output lengths (else the engine's estimate).
    ``kind``/``share``: the `TargetShare` rule; ``demote_best`` ranks the best model last (a share
    cap on the strong model, decided per request by the caller).
    """

    lam: float = 0.0
    cost_scale: float = 1.0
    costs: Mapping[str, float] | None = None
    kind: Literal["quality", "cost"] = "quality"
    share: float = 1.0
    demote_best: bool = False


class Frontier:
    """``quality - lam * cost / cost_scale``, best first; ties -> cheaper, then name."""

    __slots__ = ("costs", "lam", "name")

    def __init__(self, p: FrontierParams) -> None:
        self.name = FRONTIER
        self.lam = p.lam / p.cost_scale if p.cost_scale > 0 else p.lam
        self.costs = p.costs

    def _cost(self, est: Estimate) -> float:
        costs = self.costs
        if costs is not None:
            c = costs.get(est.model.name)
            if c is not None:
                return c
        return est.cost_usd

    def rank_key(self, est: Estimate, scores: Mapping[str, float]) -> tuple[float, SortKey]:
        cost = self._cost(est)
        total = est.quality - self.lam * cost
        return total, (-total, cost, est.model.name)

    def rank_all(self, snap: Snapshot, columns: Mapping[str, Sequence[float]]) -> tuple[Sequence[float], list[int]]:
        ests = snap.estimates
        costs = [self._cost(e) for e in ests]
        lam = self.lam
        totals = [e.quality - lam * c for e, c in zip(ests, costs, strict=True)]
        order = sorted(range(len(ests)), key=costs.__getitem__)
        order.sort(key=totals.__getitem__, reverse=True)  # stable: ties stay cheapest-first, then name
        return totals, order


class TargetShare:
    """Priors-only target: the cheapest model within ``share`` of the best quality (or the best one
    within ``share`` of the best model's cost) first, then the rest by quality. Which model is
    "best" depends on the feasible set, so the order is defined by `rank_all`; `rank_key` ranks a
    candidate as if it were alone (it is then its own best)."""

    __slots__ = ("demote_best", "kind", "name", "share")

    def __init__(self, p: FrontierParams) -> None:
        self.name = TARGET_SHARE
        self.kind = p.kind
        self.share = p.share
        self.demote_best = p.demote_best

    def _key(self, est: Estimate, best: Estimate) -> tuple[float, float, float, str]:
        if self.demote_best and est is best:
            return 2.0, -est.quality, est.cost_usd, est.model.name  # still a fallback, last
        if self.kind == "quality":
            if est.quality >= self.share * best.quality - 1e-12:
                return 0.0, est.cost_usd, -est.quality, est.model.name  # cheapest that is good enough
        elif est.cost_usd <= self.share * best.cost_usd + 1e-15:
            return 0.0, -est.quality, est.cost_usd, est.model.name  # best that is cheap enough
        return 1.0, -est.quality, est.cost_usd, est.model.name

    def rank_key(self, est: Estimate, scores: Mapping[str, float]) -> tuple[float, SortKey]:
        key = self._key(est, est)
        return -key[0], (key[0] * 10.0 + key[1], key[2], key[3])

    def rank_all(self, snap: Snapshot, columns: Mapping[str, Sequence[float]]) -> tuple[Sequence[float], list[int]]:
        ests = snap.estimates
        n = len(ests)
        if not n:
            return [], []
        best = min(ests, key=lambda e: (-e.quality, e.cost_usd, e.model.name))
        keys = [self._key(e, best) for e in ests]
        order = sorted(range(n), key=keys.__getitem__)
        totals = [0.0] * n
        for rank, i in enumerate(order):
            totals[i] = 1.0 - rank / n  # a position score for the tables: 1 for the first choice
        return totals, order
