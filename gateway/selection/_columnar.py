"""A large catalog ranked on whole arrays: the same floats, in the same order, as the per-model loop.

With every request shape new (prompts differ in length, so costs differ), ranking 1,000
deployments in `PreparedCatalog.split`'s loop, then scoring and sorting Python lists, cost about
1 us per deployment: most of the gateway's time per request (docs/performance.md, "Sixth pass").
Here the same steps run as numpy operations over the catalog, and an `Estimate` is built only for
the candidates somebody reads.

Results are bit-identical to the loop (a property test compares whole rankings), which is why:

- only +, -, *, / and comparisons run in numpy: each is one correctly rounded IEEE operation,
  applied in the loop's order, so it gives the loop's float;
- powers, where numpy's SIMD version differs from `math` in the last bit for some inputs, go
  through Python's `**`, as the loop computes them; logarithms are numpy's on both paths
  (`_snapshot.ln_each`);
- what a model's live stats contribute whatever the request comes from the loop's own `_blend`,
  once per stats snapshot (`_Snapshot`), not once per request;
- orders come from stable sorts over rows in name order, as `strategies.py`'s do.

Used from `COLUMNAR_FROM` models up, for the default scorers and every built-in strategy (preferred
models included); custom scorers take the loop. Below that size a numpy call's fixed cost is more
than the loop's whole work. This module estimates and filters (`split_columns`); `_columnar_order`
scores and orders.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from gateway.selection._estimate import (
    PROMPT_BASIS,
    Priors,
    Typical,
    blend_quality,
)
from gateway.selection._prepared import (  # the loop's own halves
    MAX_VIEWS,
    PreparedCatalog,
    _blend,
    _reasons,
)
from gateway.selection._ranked import LazyTuple
from gateway.selection._snapshot import ln_each
from gateway.selection.constraints import HardConstraints
from gateway.selection.types import (
    LiveStats,
    Rejection,
    RequestContext,
    deferred_rejection,
)

__all__ = ["COLUMNAR_FROM", "ColumnarSplit", "split_columns"]

#: Catalog size from which `SelectionEngine.rank` takes this path. `bench/bench_selection.py
#: --paths` times both: they cost the same at 50-60 models; at 20 the loop takes ~40 us and the
#: arrays ~100, at 200 ~215 and ~90, at 1,000 ~1,040 and ~235.
COLUMNAR_FROM = 64

#: Stats snapshots' arrays a catalog keeps (as `_prepared` keeps their pools).
_RECENT_SNAPSHOTS = 4

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
            hit = self._log_latency = (floor, ln_each(floored))
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
        if len(self.views) >= MAX_VIEWS:  # as many as the catalog keeps
            self.views.clear()
        self.views[id(view)] = entry
        return entry[1], entry[2], entry[3]


class ColumnarSplit:
    """One request's feasible models (row numbers in name order) and their figures, as arrays."""

    __slots__ = ("_out_rows", "_rejected", "capped", "cost", "errors", "index", "latency", "live_latency", "out",
                 "prior_latency", "quality", "quality_domain", "rows", "snapshot")

    def __init__(self, rows: np.ndarray, out: np.ndarray, cost: np.ndarray, latency: np.ndarray,
                 quality: np.ndarray, quality_domain: list, errors: np.ndarray, prior_latency: np.ndarray,
                 live_latency: list, snapshot: _Snapshot, capped: np.ndarray | None, index: Mapping[str, int],
                 out_rows: list[int], rejected: Sequence[Rejection]) -> None:
        # `capped`: per feasible model, whether the request's max tokens moved its latency.
        self.capped = capped
        self.rows, self.out, self.cost, self.latency = rows, out, cost, latency
        self.quality, self.quality_domain, self.errors = quality, quality_domain, errors
        self.prior_latency, self.live_latency, self.snapshot = prior_latency, live_latency, snapshot
        self.index = index  # name -> row
        self._out_rows, self._rejected = out_rows, rejected  # the rejected rows, and their rejections

    def feasible_index(self, name: str) -> int | None:
        """The model's place among the feasible ones (its snapshot index), None if not feasible."""
        j = self.index.get(name)
        if j is None:
            return None
        k = int(np.searchsorted(self.rows, j))
        return k if k < len(self.rows) and self.rows.item(k) == j else None

    def rejection(self, name: str) -> Rejection | None:
        """The model's rejection, None if it was not rejected (or is not in the catalog)."""
        j = self.index.get(name)
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
        static = prepared._columnar = (_Static(prepared._rows), [])
    cols, recent = static
    # Found by this request's own stats (one list comparison each, identity first, in C), among
    # the last few: pipelines with feedback of their own rank with stats views of their own, in
    # turn, and another thread may rank with other stats in between.
    for snap in reversed(recent):
        if snap.priors is priors and snap.pool is pool and snap.stats == stats_of:
            break
    else:
        snap = _Snapshot(prepared, stats_of, priors, pool)
        recent.append(snap)
        if len(recent) > _RECENT_SNAPSHOTS:
            del recent[0]
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
                          None if capped is None else capped[rows], cols.index, out_rows, rejected)
    return split, rejected
