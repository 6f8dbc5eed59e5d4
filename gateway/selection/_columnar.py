"""A large catalog ranked on whole arrays: the same floats, in the same order, as the per-model loop.

With every request shape new (prompts differ in length, so costs differ), ranking 1,000
deployments in `PreparedCatalog.split`'s loop, then scoring and sorting Python lists, cost about
1 us per deployment: most of the gateway's time per request (docs/performance.md, "Sixth pass").
Here the same steps run as numpy operations over the catalog, and an `Estimate` is built only for
the candidates somebody reads.

Results are bit-identical to the loop (a property test compares whole rankings), which is why:

- only +, -, *, / and comparisons run in numpy: each is one correctly rounded IEEE operation,
  applied in the loop's order, so it gives the loop's float;
- logarithms and powers, where numpy's SIMD versions differ from `math` in the last bit for some
  inputs, go through `math` (`map(log, ...)`), as the loop computes them;
- what a model's live stats contribute whatever the request comes from the loop's own `_blend`,
  once per stats snapshot (`_Snapshot`), not once per request;
- orders come from stable sorts over rows in name order, as `strategies.py`'s do.

Used from `COLUMNAR_FROM` models up, for the default scorers and every built-in strategy (preferred
models included); custom scorers take the loop. Below that size a numpy call's fixed cost is more than the loop's whole work.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from math import log

import numpy as np

from gateway.selection._estimate import (
    PROMPT_BASIS,
    Estimate,
    Priors,
    Typical,
    blend_quality,
)
from gateway.selection._prepared import (  # the loop's own halves
    PreparedCatalog,
    _blend,
    _reasons,
)
from gateway.selection._ranked import LazyTuple
from gateway.selection._snapshot import Snapshot
from gateway.selection.constraints import HardConstraints
from gateway.selection.frontier import Frontier, TargetShare
from gateway.selection.strategies import CheapestFirst, StrongestFirst
from gateway.selection.types import (
    LiveStats,
    Rejection,
    RequestContext,
    deferred_rejection,
)

__all__ = ["COLUMNAR_FROM", "ColumnarSplit", "scores_and_order", "split_columns"]

#: Catalog size from which `SelectionEngine.rank` takes this path. `bench/bench_selection.py
#: --paths` times both: they cost the same at 50-60 models; at 20 the loop takes ~40 us and the
#: arrays ~100, at 200 ~215 and ~90, at 1,000 ~1,040 and ~235.
COLUMNAR_FROM = 64

_new = tuple.__new__
_F8 = np.float64


class _Static:
    """Per-model constants of a prepared catalog as arrays (rows in name order)."""

    __slots__ = ("in_cost", "index", "max_out", "out_cost", "tps_floor", "ttft", "window")

    def __init__(self, rows: Sequence[tuple]) -> None:
        self.max_out = np.array([r[4] for r in rows], dtype=_F8)
        self.window = np.array([r[5] for r in rows], dtype=_F8)
        self.in_cost = np.array([r[6] for r in rows], dtype=_F8)
        self.out_cost = np.array([r[7] for r in rows], dtype=_F8)
        self.ttft = np.array([r[10] for r in rows], dtype=_F8)
        self.tps_floor = np.array([r[12] for r in rows], dtype=_F8)
        self.index = {r[1]: j for j, r in enumerate(rows)}


class _Snapshot:
    """What every model's live stats (or their absence) contribute to any request, for one stats
    snapshot: the fields of `_blend`, or the prior-only figures, per row."""

    __slots__ = ("_log_latency", "circuit", "errors", "factor", "latency", "line", "line_a", "line_b",
                 "live_latency", "out", "out_live", "out_prior", "pool", "prior_latency", "priors",
                 "quality_weight", "samples", "stats", "views", "weight")

    def __init__(self, prepared: PreparedCatalog, stats_of: list[LiveStats | None], priors: Priors,
                 pool: Typical) -> None:
        self.priors, self.pool = priors, pool
        self.stats = stats_of
        prior_out, factor = pool
        self.factor = factor
        n = len(stats_of)
        circuit = [False] * n
        samples = [0] * n
        errors = [priors.error_rate] * n
        line, line_a, line_b, weight = [False] * n, [0.0] * n, [0.0] * n, [0.0] * n
        quality_weight: list[tuple[float, float] | None] = [None] * n
        out, latency, prior_latency = [0.0] * n, [0.0] * n, [0.0] * n
        out_prior: list[float] = [0.0] * n
        live_latency: list[float | None] = [None] * n
        out_live: list[float | None] = [None] * n
        blends = prepared._blends
        rows = prepared._rows
        for j, stats in enumerate(stats_of):
            row = rows[j]
            if stats is None:
                o = float(row[4])  # min(prior_out, max_out), spelled out as the loop does
                if not o < prior_out:
                    o = prior_out
                out[j] = out_prior[j] = o
                latency[j] = prior_latency[j] = (row[10] + o * 1000.0 / row[12]) * factor
                continue
            b = blends[j]
            if b is None or b[0] is not stats or b[1] is not priors or b[2] is not pool:
                b = blends[j] = _blend(row[0], stats, priors, pool)
            (_, _, _, circuit[j], samples[j], a, line_b[j], weight[j], qw, live_q, out[j], latency[j],
             errors[j], prior_latency[j], live_latency[j], out_prior[j], out_live[j]) = b  # fmt: skip
            if a is not None:
                line[j], line_a[j] = True, a
            if qw is not None:
                quality_weight[j] = (qw, live_q)
        self.circuit = np.array(circuit, dtype=bool)
        self.samples = samples
        self.errors = np.array(errors, dtype=_F8)
        self.line = np.array(line, dtype=bool)
        self.line_a, self.line_b, self.weight = line_a, line_b, weight
        self.quality_weight = quality_weight
        self.out = np.array(out, dtype=_F8)
        self.latency = np.array(latency, dtype=_F8)
        self.prior_latency = np.array(prior_latency, dtype=_F8)
        self.out_prior = out_prior
        self.live_latency = live_latency
        self.out_live = out_live
        # id(view) -> (view, admitted by the static checks and the circuit, quality, its domain)
        self.views: dict[int, tuple[tuple, np.ndarray, np.ndarray, list[str | None]]] = {}
        self._log_latency: tuple[float, np.ndarray] | None = None

    def log_latencies(self, floor: float) -> np.ndarray:
        """ln of every model's floored latency for a request that leaves its length open: they
        change with the stats, not with the request (unlike costs, which move with its tokens)."""
        hit = self._log_latency
        if hit is None or hit[0] != floor:
            floored = np.where(self.latency > floor, self.latency, floor)
            hit = self._log_latency = (floor, np.fromiter(map(log, floored.tolist()), dtype=_F8, count=len(floored)))
        return hit[1]

    def view(self, view: tuple, domain: str | None, priors: Priors) -> tuple[np.ndarray, np.ndarray, list]:
        """The view's static verdict (and a closed circuit) and each model's quality for ``domain``,
        blended with its feedback as the loop blends it."""
        hit = self.views.get(id(view))
        if hit is not None and hit[0] is view:
            return hit[1], hit[2], hit[3]
        k = priors.quality_weight
        quality = []
        for row, stats, qw in zip(view, self.stats, self.quality_weight, strict=True):
            q = row[8]
            if stats is not None:
                if domain is not None and stats.domain_quality:
                    q = blend_quality(q, stats, domain, k)
                elif qw is not None:
                    q = q + qw[0] * (qw[1] - q)
            quality.append(q)
        ok = np.array([row[1] for row in view], dtype=bool) & ~self.circuit
        entry = (view, ok, np.array(quality, dtype=_F8), [row[9] for row in view])
        if len(self.views) >= 32:
            self.views.clear()
        self.views[id(view)] = entry
        return entry[1], entry[2], entry[3]


class ColumnarSplit:
    """One request's feasible models (row numbers in name order) and their figures, as arrays."""

    __slots__ = ("_index", "_out_rows", "_rejected", "capped", "cost", "errors", "latency", "live_latency", "out",
                 "prior_latency", "quality", "quality_domain", "rows", "snapshot")

    def __init__(self, rows: np.ndarray, out: np.ndarray, cost: np.ndarray, latency: np.ndarray,
                 quality: np.ndarray, quality_domain: list, errors: np.ndarray, prior_latency: np.ndarray,
                 live_latency: list, snapshot: _Snapshot, capped: np.ndarray | None) -> None:
        # `capped`: per feasible model, whether the request's max tokens moved its latency.
        self.capped = capped
        self.rows, self.out, self.cost, self.latency = rows, out, cost, latency
        self.quality, self.quality_domain, self.errors = quality, quality_domain, errors
        self.prior_latency, self.live_latency, self.snapshot = prior_latency, live_latency, snapshot
        self._index: Mapping[str, int] = {}  # name -> row, and the rejections, set by `split_columns`
        self._out_rows: list[int] = []
        self._rejected: Sequence[Rejection] = ()

    def feasible_index(self, name: str) -> int | None:
        """The model's place among the feasible ones (its snapshot index), None if not feasible."""
        j = self._index.get(name)
        if j is None:
            return None
        k = int(np.searchsorted(self.rows, j))
        return k if k < len(self.rows) and self.rows.item(k) == j else None

    def rejection(self, name: str) -> Rejection | None:
        """The model's rejection, None if it was not rejected (or is not in the catalog)."""
        j = self._index.get(name)
        if j is None:
            return None
        k = bisect_left(self._out_rows, j)
        return self._rejected[k] if k < len(self._out_rows) and self._out_rows[k] == j else None


def split_columns(
    prepared: PreparedCatalog,
    ctx: RequestContext,
    limits: HardConstraints,
    get_stats: Callable[[str], LiveStats | None],
    priors: Priors,
) -> tuple[ColumnarSplit, Sequence[Rejection]]:
    """`PreparedCatalog.split` on arrays: the feasible models' figures and the rejections (name order)."""
    stats_of = list(map(get_stats, prepared._names))
    pool = prepared._pool(priors, stats_of)
    static = prepared._columnar
    if static is None:
        static = prepared._columnar = [_Static(prepared._rows), None]
    cols, snap = static
    # Checked against this request's own stats (one list comparison, identity first, in C), not
    # against what the catalog saw last: another thread, or a pipeline with a stats view of its
    # own, may have ranked with other stats in between.
    if snap is None or snap.priors is not priors or snap.pool is not pool or snap.stats != stats_of:
        snap = static[1] = _Snapshot(prepared, stats_of, priors, pool)
    domain = ctx.domain
    ok, quality, quality_domain = snap.view(prepared._view(limits, domain), domain, priors)
    inp, requested = limits.input_tokens, limits.requested_output
    out, latency, prior_latency = snap.out, snap.latency, snap.prior_latency
    live_latency = snap.live_latency
    capped = None
    if requested is not None:
        ok = ok & ~(requested > cols.max_out)
        requested_out = float(requested)
        capped = (requested_out < out) & ok
        if not capped.any():
            capped = None
        else:
            out = np.where(capped, requested_out, out)
            # The loop's `(ttft + out * 1000.0 / tps_floor) * factor`, in its order.
            at_cap = (cols.ttft + out * 1000.0 / cols.tps_floor) * snap.factor
            prior_latency = np.where(capped, at_cap, prior_latency)
            latency = np.where(capped, at_cap, latency)
            lined = np.flatnonzero(capped & snap.line)
            if len(lined):
                # A power per model: `math`'s, as the loop's `**` on floats.
                latency = latency.copy()
                live_latency = list(live_latency)
                floor = priors.latency_floor_ms
                line_a, line_b, weight = snap.line_a, snap.line_b, snap.weight
                for j in lined.tolist():
                    live = line_a[j] + line_b[j] * requested_out
                    p = at_cap[j].item()
                    p = max(floor, p)
                    v = max(floor, live)
                    latency[j] = p * (v / p) ** weight[j]
                    live_latency[j] = live
        window_need = inp + requested_out
    else:
        window_need = inp + out
    learned = ctx.quality_estimates
    if learned:
        quality, quality_domain = quality.copy(), list(quality_domain)
        index = cols.index
        for name, q in learned.items():
            j = index.get(name)
            if j is not None and q is not None:
                quality[j], quality_domain[j] = q, PROMPT_BASIS
    cost = inp * cols.in_cost + out * cols.out_cost
    bad = ~ok | (window_need > cols.window)
    if limits.max_cost_usd is not None:
        bad |= cost > limits.max_cost_usd
    if limits.min_quality is not None:
        bad |= quality < limits.min_quality
    if limits.max_latency_ms is not None:
        bad |= latency > limits.max_latency_ms
    names, models = prepared._names, prepared._by_name
    out_rows = np.flatnonzero(bad).tolist()

    def rejection(k: int) -> Rejection:
        j = out_rows[k]
        return deferred_rejection(names[j], _reasons, (limits, ctx, models[j], stats_of[j], priors, pool))

    # A rejection is built when read, like a candidate past the head: a log line reads ten.
    rejected: Sequence[Rejection] = LazyTuple((), len(out_rows), rejection)
    rows = np.flatnonzero(~bad)
    split = ColumnarSplit(rows, out[rows], cost[rows], latency[rows], quality[rows], quality_domain,
                          snap.errors[rows], prior_latency[rows], live_latency, snap,
                          None if capped is None else capped[rows])
    split._index, split._out_rows, split._rejected = cols.index, out_rows, rejected
    return split, rejected


def _estimate(split: ColumnarSplit, models: Sequence, k: int) -> Estimate:
    """The `Estimate` of the ``k``-th feasible model, as the loop builds it."""
    j = split.rows.item(k)  # `item(k)`: a Python number without a numpy scalar in between
    snap = split.snapshot
    return _new(Estimate, (
        models[j], split.out.item(k), split.cost.item(k), split.latency.item(k), split.quality.item(k),
        split.quality_domain[j], split.errors.item(k), snap.samples[j], split.prior_latency.item(k),
        split.live_latency[j], snap.out_prior[j], snap.out_live[j],
    ))  # fmt: skip


def _logs(values: np.ndarray) -> np.ndarray:
    # `math.log` of each: numpy's SIMD `log` differs from it in the last bit for some inputs.
    return np.fromiter(map(log, values.tolist()), dtype=_F8, count=len(values))


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
    cost_lo, latency_lo = log(costs.min().item()), log(latencies.min().item())
    latency_logs = split.snapshot.log_latencies(latency_floor)[split.rows]
    if split.capped is not None:
        moved = np.flatnonzero(split.capped)
        latency_logs[moved] = _logs(latencies[moved])
    by_name = {
        "cost": _log_scores(_logs(costs), cost_lo, cost_span),
        "quality": split.quality,
        "latency": _log_scores(latency_logs, latency_lo, latency_span),
        "reliability": 1.0 - split.errors,
    }
    quality = split.quality
    if type(strategy) is CheapestFirst:
        first = _stable(-quality)
        order = first[_stable(split.cost[first])]
        totals = by_name["cost"]
    elif type(strategy) is StrongestFirst:
        first = _stable(split.latency)
        order = first[_stable(-quality[first])]
        totals = by_name["quality"]
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
        index = split._index
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
        second, third = -quality, cost.copy()  # a copy: the demoted best's keys are written below
    group = np.where(inside, 0.0, 1.0)
    if strategy.demote_best:
        group[best], second[best], third[best] = 2.0, -quality.item(best), cost.item(best)
    order = np.lexsort((position, third, second, group))
    totals = np.empty(n)
    totals[order] = 1.0 - np.arange(n) / n  # `1.0 - rank / n`: a position score, 1 for the first choice
    return totals, order
