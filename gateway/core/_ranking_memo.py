"""Rankings remembered between live-stats refreshes, for requests of the same shape.

`SelectionEngine.rank` is a pure function of the request's shape, the candidate models, the
selection params and the live stats. In the gateway the last three are immutable objects that are
replaced, never changed: live stats on every refresh (every 250 ms by default), params when the
policy set is reloaded (`PolicySet.selection_params` hands out one object per strategy and
experts), the models when the catalog is. So until one of them is replaced, every request of the
same shape gets the ranking the first one got, and ranking it again is wasted work.

The shape is everything `rank` reads of a request: tokens in and out, required capabilities,
domain, and the tool that picks experts. A request carrying per-prompt learned quality estimates
is never remembered: its estimates are its own. On a hit the live map, params and models are
checked by identity, not only by id, so an id reused after a refresh cannot alias. Rankings for
explanations (every candidate's reasons) are not remembered either.

Memory is bounded twice: by live maps (a refresh makes the older ones dead; each pipeline with
scoped feedback ranks with a view of its own) and by candidates held, so a 1,000-deployment
catalog holds a few rankings, not a thousand.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from gateway.selection import (
    LiveStats,
    ModelInfo,
    Ranking,
    RequestContext,
    SelectionParams,
)

__all__ = ["DIFFERENT", "FILL", "SAME", "UNKNOWN", "RankingMemo"]

Rank = Callable[..., Ranking]

#: `RankingMemo.same_winner` verdicts (negative: remembered as they are; a count of asks otherwise).
SAME, DIFFERENT, UNKNOWN, FILL = -1, -2, 0, 1
_OWN = object()  # `rank`'s default: remembered under the request's own domain
_MAX_RECURRING = 4096  # shapes remembered as recurring (`same_winner`)


def _shape(ctx: RequestContext, models: Sequence[ModelInfo], params: SelectionParams, detail: int,
           domain: str | None) -> tuple:
    """Everything `rank` reads of a request (see the module doc), with `domain` for its own."""
    return (id(models), id(params), detail, ctx.input_tokens, ctx.max_output_tokens,
            ctx.required_capabilities, domain, ctx.forced_tool, ctx.last_tool_result)


class RankingMemo:
    """`rank(ctx, models, params, live, detail=...)`, remembered per live map and request shape."""

    __slots__ = ("_by_live", "_clock", "_graded", "_half_open", "_held", "_max_candidates", "_max_lives", "_order",
                 "_recurring", "_recurring_s", "_taken")

    def __init__(self, *, max_lives: int = 16, max_candidates: int = 20_000, recurring_s: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._max_lives = max_lives
        self._max_candidates = max_candidates
        # A shape whose missing rankings were filled, and that asked again, this recently keeps
        # coming: in a new live map it is filled at its first ask. Several stats refreshes long (the
        # Decider sets it).
        self._recurring_s = recurring_s
        self._clock = clock
        # (shape, domains) -> (when it last filled or first asked in a live map, the caller's origin
        # of it: what `take_recurring` hands back to rank it again). Kept apart from the live maps'
        # groups, which a refresh replaces: what it tells is about the shape.
        self._recurring: dict[tuple, tuple[float, object]] = {}
        self._taken = float("-inf")  # when `take_recurring` was last called
        # id(live) -> (live, {shape: (models, params, ranking)}, {(shape, domains): (models, params,
        # a `same_winner` verdict or count)})
        self._by_live: dict[int, tuple[Mapping[str, LiveStats], dict[tuple, tuple[Any, Any, Ranking]],
                                       dict[tuple, tuple[Any, Any, int]]]] = {}
        self._held = 0
        self._half_open: tuple[Mapping[str, LiveStats], frozenset[str]] | None = None
        self._order: tuple[Any, ...] | None = None
        self._graded: tuple[Any, ...] = (None, None, frozenset())  # models, live -> graded domains

    def rank(self, rank: Rank, ctx: RequestContext, models: Sequence[ModelInfo], params: SelectionParams,
             live: Mapping[str, LiveStats], detail: int, domain: str | None | object = _OWN) -> Ranking:
        """`rank(ctx, ...)`, remembered under `domain` when given (the caller knows that domain ranks
        exactly as `ctx.domain` does: one that no model has a score or feedback for ranks as none)."""
        # Stats maps come as read-only proxies replaced on refresh; a plain dict could be changed
        # in place under a remembered ranking, so it is ranked afresh.
        if (type(live) is not MappingProxyType or ctx.quality_estimates is not None
                or ctx.quality_explanations is not None):
            return rank(ctx, models, params, live, detail=detail)
        entries = self._group(live)[1]
        shape = _shape(ctx, models, params, detail, ctx.domain if domain is _OWN else domain)
        hit = entries.get(shape)
        if hit is not None and hit[0] is models and hit[1] is params:
            return hit[2]
        ranking = rank(ctx, models, params, live, detail=detail)
        size = len(ranking.ranked) + len(ranking.rejected) + 1
        if self._held + size > self._max_candidates:
            self.clear()
            entries = self._group(live)[1]
        entries[shape] = (models, params, ranking)
        self._held += size
        return ranking

    @property
    def max_candidates(self) -> int:
        return self._max_candidates

    def _group(self, live: Mapping[str, LiveStats]) -> tuple[Mapping[str, LiveStats], dict, dict]:
        """`live`'s rankings and verdicts; a new map gets a new group (all are dropped past `max_lives`)."""
        group = self._by_live.get(id(live))
        if group is None or group[0] is not live:
            if len(self._by_live) >= self._max_lives:
                self.clear()
            group = self._by_live[id(live)] = (live, {}, {})
        return group

    def same_winner(self, ctx: RequestContext, models: Sequence[ModelInfo], params: SelectionParams,
                    live: Mapping[str, LiveStats], domains: tuple[str | None, ...], origin: object = None) -> int:
        """Whether `rank` (``detail=3``) puts the same candidate first for every domain in `domains`,
        told from remembered rankings only, so asking ranks nothing: `SAME` or `DIFFERENT` (also
        when one ranks nothing); while one of them is missing, `UNKNOWN` until the shape has asked
        once per domain in this live map and `FILL` from then on, when the caller ranks the missing
        ones off the critical path. So the rankings made to tell cost at most one per request that
        asked: a shape that comes rarely (or every request new) never pays for one per domain, and
        one that keeps coming (~28 a second at 7 domains and the default 250 ms refresh) pays for
        them once per refresh. A shape filled in the last `recurring_s` is one that keeps coming,
        and is `FILL` at its first ask in a new live map: of its requests after each refresh one
        has the domain inferred first, not one per domain (at 20 requests a second on the benchmark's
        catalog, 62 % of them had, and the median request waited for the inference); and not even
        that one when the caller ranks the shape's domains in the new map before it asks
        (`take_recurring`, with the `origin` given here). Anything `rank` would not remember is
        `DIFFERENT`."""
        if type(live) is not MappingProxyType or ctx.quality_estimates is not None:
            return DIFFERENT
        _, entries, verdicts = self._group(live)
        key = (_shape(ctx, models, params, 3, None), domains)
        known = verdicts.get(key)
        asked = 0
        if known is not None and known[0] is models and known[1] is params:
            if known[2] < 0:
                return known[2]
            asked = known[2]
        elif (seen := self._recurring.get(key)) is not None and (now := self._clock()) - seen[0] < self._recurring_s:
            # (The key holds the models' and params' ids, not the objects: an id reused after a reload
            # can only make one shape fill early, which costs rankings off the critical path.)
            asked = len(domains) - 1
            self._recurring[key] = (now, origin)  # still coming: `take_recurring` hands it back
        winner = None
        verdict = SAME
        for domain in domains:
            hit = entries.get(_shape(ctx, models, params, 3, domain))
            if hit is None or hit[0] is not models or hit[1] is not params:
                if known is None:
                    self._held += 1  # bounded with the rankings (`rank` clears past the limit)
                verdicts[key] = (models, params, asked + 1)
                if asked + 1 < len(domains):
                    return UNKNOWN
                if len(self._recurring) >= _MAX_RECURRING:
                    self._recurring.clear()
                self._recurring[key] = (self._clock(), origin)
                return FILL
            ranked = hit[2].ranked
            name = ranked[0].model.name if ranked else None
            if name is None or (winner is not None and name != winner):
                verdict = DIFFERENT  # two that differ settle it, whatever else is missing
                break
            winner = name
        verdicts[key] = (models, params, verdict)
        return verdict

    def take_recurring(self) -> list[object]:
        """The `origin`s of the recurring shapes (`same_winner`) that filled or asked since the last
        call: the ones worth ranking afresh when the live stats are replaced, before they ask. A
        shape that stopped coming is handed back once more at most, and forgotten once it is no
        longer recurring: an origin holds what ranked it (a router model, a policy's params), which
        a reload replaces, and none is held for longer than `recurring_s` after its last ask."""
        now = self._clock()
        since, self._taken = self._taken, now
        out, gone = [], []
        for key, (seen, origin) in self._recurring.items():
            if now - seen >= self._recurring_s:
                gone.append(key)
            elif seen >= since and origin is not None:
                out.append(origin)
        for key in gone:
            del self._recurring[key]
        return out

    def graded(self, models: Sequence[ModelInfo], live: Mapping[str, LiveStats]) -> frozenset[str]:
        """The domains that can rank otherwise than none: a domain enters a ranking only through a
        model's quality for it (`domain_quality`, static or from feedback), so one that no model
        has a score for ranks exactly as no domain does, and `rank` may remember it as none (read
        once per models and live map)."""
        seen = self._graded
        if seen[0] is models and seen[1] is live:
            return seen[2]
        graded = {d for m in models for d in m.domain_quality}
        graded.update(d for s in live.values() if s.domain_quality for d in s.domain_quality)
        out = frozenset(graded)
        self._graded = (models, live, out)
        return out

    def half_open(self, live: Mapping[str, LiveStats]) -> frozenset[str]:
        """The deployments of `live` whose circuit waits for its probe, once per live map (every
        request asks; with 1,000 deployments a look at each cost more than the ranking memo saved)."""
        hit = self._half_open
        if hit is not None and hit[0] is live:
            return hit[1]
        names = frozenset(n for n, s in live.items() if s.circuit_state == "half_open" and not s.circuit_open)
        if type(live) is MappingProxyType:
            self._half_open = (live, names)
        return names

    def attempt_order(self, ranked: tuple, fallbacks: tuple[str, ...], deployments: Mapping[str, Any],
                      build: Callable[[], tuple]) -> tuple:
        """`build()`, the deployments to try in order, reused while the ranked tuple (shared by every
        hit of `rank`), the policy's fallbacks and the catalog are the same objects."""
        hit = self._order
        if hit is not None and hit[0] is ranked and hit[1] == fallbacks and hit[2] is deployments:
            return hit[3]
        order = build()
        self._order = (ranked, fallbacks, deployments, order)
        return order

    def clear(self) -> None:
        self._by_live.clear()
        self._held = 0

    def __len__(self) -> int:
        return sum(len(entries) for _, entries, _ in self._by_live.values())
