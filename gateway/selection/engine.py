"""The selection engine: hard constraints, then scorers, then a strategy's order, as a `Ranking`.

``rank`` is a pure function of its arguments. Steps, once per request:

1. estimate each model (expected output tokens, cost, latency, quality, error rate);
2. reject models that break a hard constraint, keeping every reason;
3. take a `Snapshot` of the feasible models (with set-level bounds), then each scorer's scores;
4. order by the strategy's sort key (every key ends with the model name, so ties are broken the
   same way whatever the catalog order);
5. move feasible preferred (expert) models to the front in the given order, noting unavailable ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import attrgetter, itemgetter
from types import MappingProxyType

from gateway.selection._estimate import Estimate, Priors, estimate
from gateway.selection._snapshot import Snapshot
from gateway.selection.constraints import HardConstraints
from gateway.selection.scorers import DEFAULT_SCORERS, Scorer
from gateway.selection.strategies import STRATEGIES, Strategy, resolve_strategy
from gateway.selection.types import (
    Candidate,
    Constraints,
    LiveStats,
    ModelInfo,
    Ranking,
    Rejection,
    RequestContext,
    SelectionParams,
)

__all__ = ["DEFAULT_DETAIL", "PINNED", "SelectionEngine"]

PINNED = "pinned"

#: Candidates whose reasons are spelled out by default: the winner and the first fallbacks.
#: Formatting is the slowest step (~3 us per candidate), so the explain endpoint asks for all.
DEFAULT_DETAIL = 3

_NO_STATS: Mapping[str, LiveStats] = MappingProxyType({})
_by_key = itemgetter(0)
_by_model = attrgetter("model")

# (sort key, total, index in the snapshot, scores): plain tuples keep the hot loop cheap.
_Row = tuple[tuple, float, int, dict[str, float]]


class SelectionEngine:
    """Ranks catalog models for one request. Holds only configuration, no per-call state."""

    __slots__ = ("_names", "_priors", "_scorers", "_strategies")

    def __init__(
        self, scorers: Sequence[Scorer] = DEFAULT_SCORERS, priors: Priors | None = None
    ) -> None:
        names = tuple(s.name for s in scorers)
        if not names or len(set(names)) != len(names):
            raise ValueError(f"need at least one scorer and unique names, got {names}")
        self._scorers = tuple(scorers)
        self._names = names
        self._priors = priors or Priors()
        # Strategies without client weights are immutable, so build them once, not per request.
        self._strategies = {
            name: resolve_strategy(SelectionParams(strategy=name), names)
            for name in STRATEGIES
            if name != "custom"
        }

    @property
    def scorer_names(self) -> tuple[str, ...]:
        return self._names

    def rank(
        self,
        ctx: RequestContext,
        models: Sequence[ModelInfo],
        params: SelectionParams,
        live: Mapping[str, LiveStats] | None = None,
        *,
        detail: int | None = DEFAULT_DETAIL,
    ) -> Ranking:
        """Feasible models best-first with scores and reasons, plus rejects with reasons.

        Reasons are spelled out for the first ``detail`` candidates (all when None); every
        candidate has its scores, total, expected cost and latency. Raises
        `SelectionParamsError` (a ValueError) for an unknown strategy or bad weights.
        """
        strategy = self._strategies.get(params.strategy) or resolve_strategy(params, self._names)
        get_stats = (live if live is not None else _NO_STATS).get
        priors = self._priors
        limits = HardConstraints.for_request(ctx, params.constraints)
        admits = limits.admits

        feasible: list[Estimate] = []
        rejected: list[Rejection] = []
        for model in models:
            stats = get_stats(model.name)
            est = estimate(model, ctx, stats, priors)
            if admits(est, stats):
                feasible.append(est)
            else:
                rejected.append(Rejection(model.name, limits.violations(est, stats)))
        rejected.sort(key=_by_model)

        snap = Snapshot.of(feasible, priors.cost_floor_usd, priors.latency_floor_ms)
        rows = self._score(snap, strategy)
        rows.sort(key=_by_key)

        notes: list[str] = []
        ranked = _promote_preferred(rows, snap.estimates, params, ctx, rejected, notes)
        if not ranked:
            notes.append(f"no feasible model: {len(rejected)} rejected")
        depth = len(ranked) if detail is None else detail
        preferred_text = f"preferred: {params.preferred_reason or 'expert model'}"
        estimates = snap.estimates
        candidates = []
        for rank, ((_, total, i, scores), preferred) in enumerate(ranked):
            est = estimates[i]
            reasons: tuple[str, ...] = (preferred_text,) if preferred else ()
            if rank < depth:
                reasons += tuple(scorer.explain(snap, i) for scorer in self._scorers)
            candidates.append(
                Candidate(
                    est.model,
                    total,
                    MappingProxyType(scores),
                    reasons,
                    est.cost_usd,
                    est.latency_ms,
                    preferred,
                )
            )
        return Ranking(params.strategy, tuple(candidates), tuple(rejected), tuple(notes))

    def pinned_ranking(
        self, model: ModelInfo, ctx: RequestContext, live: LiveStats | None = None
    ) -> Ranking:
        """A single-candidate ranking for a request that names a deployment directly.

        Nothing is rejected; constraint breaches (e.g. context overflow) are reported in notes.
        """
        priors = self._priors
        est = estimate(model, ctx, live, priors)
        limits = HardConstraints.for_request(ctx, Constraints())
        notes = tuple(f"pinned despite {why}" for why in limits.violations(est, live))
        snap = Snapshot.of((est,), priors.cost_floor_usd, priors.latency_floor_ms)
        scores = {s.name: s.score(snap)[0] for s in self._scorers}
        reasons = (
            f"pinned: request named deployment {model.name}",
            *(s.explain(snap, 0) for s in self._scorers),
        )
        candidate = Candidate(
            model, 1.0, MappingProxyType(scores), reasons, est.cost_usd, est.latency_ms
        )
        return Ranking(PINNED, (candidate,), (), notes)

    def _score(self, snap: Snapshot, strategy: Strategy) -> list[_Row]:
        names = self._names
        columns = [scorer.score(snap) for scorer in self._scorers]
        rank_key = strategy.rank_key
        rows: list[_Row] = []
        for i, (est, values) in enumerate(zip(snap.estimates, zip(*columns), strict=True)):
            scores = dict(zip(names, values, strict=True))
            total, key = rank_key(est, scores)
            rows.append((key, total, i, scores))
        return rows


def _promote_preferred(
    rows: list[_Row],
    estimates: Sequence[Estimate],
    params: SelectionParams,
    ctx: RequestContext,
    rejected: list[Rejection],
    notes: list[str],
) -> list[tuple[_Row, bool]]:
    """Feasible preferred models first (in the given order), then the rest in ranked order."""
    if not params.preferred:
        return [(row, False) for row in rows]
    position = {estimates[row[2]].model.name: i for i, row in enumerate(rows)}
    why_rejected = {r.model: r.reasons for r in rejected}
    tool = ctx.forced_tool or ctx.last_tool_result
    for_tool = f" for {tool}" if tool else ""
    front: list[int] = []
    for name in dict.fromkeys(params.preferred):  # dedupe, keep order
        if name in position:
            front.append(position[name])
            continue
        why = "; ".join(why_rejected.get(name, ("not in catalog",)))
        notes.append(f"expert {name}{for_tool} unavailable: {why}; using normal ranking")
    chosen = set(front)
    return [(rows[i], True) for i in front] + [
        (row, False) for i, row in enumerate(rows) if i not in chosen
    ]
