"""The selection engine: hard constraints, then scorers, then a strategy's order, as a `Ranking`.

``rank`` is a pure function of its arguments. Steps, once per request:

1. estimate each model (expected output tokens, cost, latency, quality, error rate) and reject
   those that break a hard constraint, in one loop over the prepared catalog (`_prepared`);
2. take a `Snapshot` of the feasible models (with the best cost and latency), then each scorer's
   scores;
3. order by the strategy (every order ends with the model name, so ties are broken the same way
   whatever the catalog order);
4. move feasible preferred (expert) models to the front in the given order, noting unavailable ones.

Reasons are formatted only where someone will read them: for the first ``detail`` candidates, and
for a rejection when its ``reasons`` are first read. See docs/selection.md for the timings.

From `COLUMNAR_FROM` models up, steps 1-3 run on arrays (`_columnar`) with the same results, for
the built-in scorers and strategies.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from types import MappingProxyType

from gateway.selection._columnar import COLUMNAR_FROM, split_columns
from gateway.selection._columnar_order import scores_and_order
from gateway.selection._estimate import Estimate, Priors, estimate
from gateway.selection._prepared import PreparedCatalog
from gateway.selection._ranked import LazyCandidates, LazyTuple
from gateway.selection._snapshot import Snapshot
from gateway.selection.constraints import HardConstraints
from gateway.selection.frontier import Frontier, TargetShare
from gateway.selection.scorers import (
    DEFAULT_SCORERS,
    CostScorer,
    LatencyScorer,
    QualityScorer,
    ReliabilityScorer,
    Scorer,
)
from gateway.selection.strategies import (
    STRATEGIES,
    CheapestFirst,
    StrongestFirst,
    Weighted,
    resolve_strategy,
)
from gateway.selection.types import (
    Candidate,
    Constraints,
    LiveStats,
    ModelInfo,
    Ranking,
    Rejection,
    RequestContext,
    SelectionParams,
    new_candidate,
)

__all__ = ["DEFAULT_DETAIL", "PINNED", "PreparedCatalog", "SelectionEngine"]

PINNED = "pinned"

#: Candidates whose reasons are spelled out by default: the winner and the first fallbacks.
#: Formatting is the slowest step (~2 us per candidate), so the explain endpoint asks for all.
DEFAULT_DETAIL = 3

#: Candidates past the head that are built at once; a longer tail is built as it is read
#: (`LazyCandidates`): a log line reads ten, the forwarder its fallbacks.
_EAGER_TAIL = 16

#: Prepared catalogs an engine keeps. A gateway ranks over one catalog (two around a reload);
#: the bound only stops a caller that builds a new list per request from growing the cache.
MAX_PREPARED = 8

_NO_STATS: Mapping[str, LiveStats] = MappingProxyType({})

_BUILTIN_SCORERS = (CostScorer, QualityScorer, LatencyScorer, ReliabilityScorer)
_COLUMNAR = (CheapestFirst, StrongestFirst, Weighted, Frontier, TargetShare)  # orders `_columnar` restates


class SelectionEngine:
    """Ranks catalog models for one request.

    Holds configuration and a small cache of prepared catalogs (derived from the models alone, so
    it never changes a result); no per-call state.
    """

    __slots__ = ("_columnar_from", "_names", "_prepared", "_priors", "_scorers", "_strategies")

    def __init__(
        self, scorers: Sequence[Scorer] = DEFAULT_SCORERS, priors: Priors | None = None, *,
        columnar_from: int = COLUMNAR_FROM,
    ) -> None:
        names = tuple(s.name for s in scorers)
        if not names or len(set(names)) != len(names):
            raise ValueError(f"need at least one scorer and unique names, got {names}")
        self._scorers = tuple(scorers)
        # From this catalog size, rank on arrays (`_columnar`, the same results): only for the
        # built-in scorers, whose arithmetic it restates.
        builtin = all(type(s) in _BUILTIN_SCORERS for s in scorers)
        self._columnar_from = columnar_from if builtin else sys.maxsize
        self._names = names
        self._priors = priors or Priors()
        # Strategies without client weights are immutable, so build them once, not per request.
        self._strategies = {
            name: resolve_strategy(SelectionParams(strategy=name), names)
            for name in STRATEGIES
            if name != "custom"
        }
        # id(models) -> (models, prepared); holding `models` keeps its id from being reused.
        self._prepared: dict[int, tuple[Sequence[ModelInfo], PreparedCatalog]] = {}

    @property
    def priors(self) -> Priors:
        """What the engine assumes where live stats say nothing (e.g. `error_rate` of an unseen model)."""
        return self._priors

    @property
    def scorer_names(self) -> tuple[str, ...]:
        return self._names

    def prepare(self, models: Sequence[ModelInfo]) -> PreparedCatalog:
        """``models`` with their per-model constants computed, for `rank`.

        `rank` calls this itself and reuses the result while it is given the same sequence
        object holding the same model objects (a tuple, such as `Catalog.models`, is checked in
        constant time; other sequences model by model). Pass the result to `rank` to skip even
        that check.
        """
        if type(models) is PreparedCatalog:  # isinstance on an ABC subclass costs ~0.5 us
            return models
        cache = self._prepared
        key = id(models)
        entry = cache.get(key)
        if entry is not None:
            source, prepared = entry
            if source is models and (type(models) is tuple or prepared.holds(models)):
                return prepared
        prepared = PreparedCatalog(models)
        if len(cache) >= MAX_PREPARED:
            cache.clear()
        cache[key] = (models, prepared)
        return prepared

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

        ``models`` is the catalog or a `PreparedCatalog` from `prepare`. Reasons are spelled out
        for the first ``detail`` candidates (all when None); every candidate has its scores,
        total, expected cost and latency. Raises `SelectionParamsError` (a ValueError) for an
        unknown strategy or bad weights.
        """
        strategy = self._strategies.get(params.strategy) or resolve_strategy(params, self._names)
        priors = self._priors
        limits = HardConstraints.for_request(ctx, params.constraints)
        get_stats = (live if live is not None else _NO_STATS).get
        prepared = self.prepare(models)
        names = self._names
        if len(prepared) >= self._columnar_from and type(strategy) in _COLUMNAR:
            split, rejected = split_columns(prepared, ctx, limits, get_stats, priors)
            feasible: Sequence[Estimate] = ()
            if len(split.rows):
                snap, columns, totals, order = scores_and_order(split, prepared, priors, strategy, names)
        else:
            split, (feasible, rejected) = None, prepared.split(ctx, limits, get_stats, priors)
        if split is None or not len(split.rows):
            snap = Snapshot.of(
                feasible, priors.cost_floor_usd, priors.latency_floor_ms,
                priors.cost_range, priors.latency_range,
            )  # fmt: skip
            columns = [scorer.score(snap) for scorer in self._scorers]
            totals, order = strategy.rank_all(snap, dict(zip(names, columns, strict=True)))

        notes: list[str] = []
        promoted = 0
        if params.preferred:
            if split is not None and len(split.rows):
                # By name on the arrays: reading every candidate's estimate would build them all.
                position, rejection = split.feasible_index, split.rejection
            else:
                estimates = snap.estimates
                position = {estimates[i].model.name: i for i in order}.get
                # Reasons are formatted on read: look up only the experts that were turned away.
                rejection = partial(_rejection_of, rejected)
            order, promoted = _promote_preferred(order, position, rejection, params, ctx, notes)
        if not order:
            notes.append(f"no feasible model: {len(rejected)} rejected")
        depth = len(order) if detail is None else max(detail, 0)
        preferred_text = (f"preferred: {params.preferred_reason or 'expert model'}",)
        estimates = snap.estimates
        head = max(depth, promoted)
        scorers = self._scorers
        learned_why = ctx.quality_explanations
        candidates: list[Candidate] = []
        for rank, i in enumerate(order[:head]):
            est = estimates[i]
            lead = preferred_text if rank < promoted else ()
            candidates.append(
                new_candidate(
                    est.model,
                    totals[i],
                    names,
                    tuple([column[i] for column in columns]),
                    lead,
                    (_explain, (lead, scorers, snap, i, learned_why)) if rank < depth else None,
                    est.cost_usd,
                    est.latency_ms,
                    rank < promoted,
                )
            )
        if len(order) <= head + _EAGER_TAIL:
            ranked: Sequence[Candidate] = tuple(
                candidates + [_plain(estimates[i], totals[i], names, columns, i) for i in order[head:]]
            )
        else:
            # Past the head a candidate has no reasons and no lead: one function of its rank.
            def make(rank: int) -> Candidate:
                i = order[rank]
                return _plain(estimates[i], totals[i], names, columns, i)

            ranked = LazyCandidates(candidates, len(order), make)
        rejected = rejected if type(rejected) is LazyTuple else tuple(rejected)
        return Ranking(params.strategy, ranked, rejected, tuple(notes))

    def check_pinned(
        self, model: ModelInfo, ctx: RequestContext, constraints: Constraints, live: LiveStats | None = None
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The hard constraints a request that names `model` breaks, split by who set them:
        (the policy's rules, the request's own needs such as capabilities and context).

        A named deployment gets no exemption: the same rules that reject it from an `auto`
        ranking refuse it here. An open circuit is left to the forwarder (it answers 503).
        """
        est = estimate(model, ctx, live, self._priors)
        policy = HardConstraints.for_policy(constraints).violations(est, None)
        request = HardConstraints.for_request(ctx, Constraints()).violations(est, None)
        return policy, request

    def pinned_ranking(
        self, model: ModelInfo, ctx: RequestContext, live: LiveStats | None = None
    ) -> Ranking:
        """A single-candidate ranking for a request that names a deployment directly (after
        `check_pinned` found nothing in the way)."""
        priors = self._priors
        est = estimate(model, ctx, live, priors)
        snap = Snapshot.of(
            (est,), priors.cost_floor_usd, priors.latency_floor_ms,
            priors.cost_range, priors.latency_range,
        )  # fmt: skip
        scores = {s.name: s.score(snap)[0] for s in self._scorers}
        reasons = (
            f"pinned: request named deployment {model.name}",
            *(s.explain(snap, 0) for s in self._scorers),
        )
        candidate = Candidate(
            model, 1.0, MappingProxyType(scores), reasons, est.cost_usd, est.latency_ms
        )
        return Ranking(PINNED, (candidate,), (), ())


def _plain(est: Estimate, total: float, names: tuple[str, ...], columns: list, i: int) -> Candidate:
    """A candidate past the head: scores and expectations, no reasons."""
    return new_candidate(
        est.model, total, names, tuple([column[i] for column in columns]), (), None, est.cost_usd,
        est.latency_ms, False,
    )


def _explain(
    lead: tuple[str, ...], scorers: Sequence[Scorer], snap: Snapshot, i: int,
    learned_why: Mapping[str, str] | None = None,
) -> tuple[str, ...]:
    """A candidate's reasons: ``lead`` (e.g. why it was preferred), one line per scorer, then what
    drove a learned quality estimate (the prompt features that mattered most)."""
    reasons = lead + tuple([scorer.explain(snap, i) for scorer in scorers])
    why = learned_why.get(snap.estimates[i].model.name) if learned_why else None
    return reasons + (f"quality estimate: {why}",) if why else reasons


def _promote_preferred(
    order: list[int],
    position: Callable[[str], int | None],
    rejection: Callable[[str], Rejection | None],
    params: SelectionParams,
    ctx: RequestContext,
    notes: list[str],
) -> tuple[list[int], int]:
    """Feasible preferred models first (in the given order), then the rest in ranked order.

    ``position`` gives a feasible model's snapshot index by name, ``rejection`` a rejected one's
    `Rejection`. Returns the new order and how many preferred models lead it.
    """
    # What the experts were chosen for, as the resolution said it ("forced tool 'x'", "offered
    # tools a, b"): the trigger that fired, which is not always the forced tool or the last result
    # (one without experts of its own passes the choice on).
    trigger = (params.preferred_reason or "").rpartition(": experts ")[0]
    for_tool = f" (preferred for {trigger})" if trigger else ""
    front: list[int] = []
    for name in dict.fromkeys(params.preferred):  # dedupe, keep order
        i = position(name)
        if i is not None:
            front.append(i)
            continue
        rejected = rejection(name)
        why = "; ".join(rejected.reasons) if rejected is not None else "not in catalog"
        notes.append(f"expert {name}{for_tool} unavailable: {why}; using normal ranking")
    if not front:
        return order, 0
    chosen = set(front)
    return front + [i for i in order if i not in chosen], len(front)


def _rejection_of(rejected: Sequence[Rejection], name: str) -> Rejection | None:
    return next((r for r in reversed(rejected) if r.model == name), None)
