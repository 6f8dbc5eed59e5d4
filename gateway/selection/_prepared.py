"""A catalog prepared once for many selections: per-model constants and the estimate/filter loop.

Selection runs on every request over the same catalog, so what depends only on the models (prices,
limits, the set of supported capabilities, the clamped throughput, name order) is read once into a
flat tuple per model. `PreparedCatalog.split` then estimates every model for one request and
applies the hard constraints in a single loop over those tuples, with the request's figures in
locals. Three caches live here (bounded, and derived from immutable inputs, so they never change
a result): per request shape (constraint sets and domain), each model's static verdict and quality
(`_view`); the pool of the current stats snapshot (`_pool`, `_estimate.typical`); per model, what
its current live stats contribute whatever the request (`_blend`).

The loop restates `_estimate.estimate` and `HardConstraints.admits` inline (a function call per
model per step cost more than the arithmetic). It must produce the same floats in the same
operation order and the same verdicts; property tests compare it with both. A rejected model's
reasons are formatted from the reference functions only if someone reads them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from operator import is_
from typing import overload

from gateway.selection._estimate import (
    _MIN_TPS,
    PROMPT_BASIS,
    Estimate,
    Priors,
    blend_quality,
    estimate,
    Typical,
    latency_line,
    typical,
)
from gateway.selection.constraints import HardConstraints
from gateway.selection.types import (
    LiveStats,
    ModelInfo,
    Rejection,
    RequestContext,
    deferred_rejection,
)

__all__ = ["PreparedCatalog"]

_new = tuple.__new__

#: Stats lists (and their pools) a catalog remembers: the live snapshot and a few pipelines' views
#: of it. Each holds its stats objects until it is dropped.
_RECENT_STATS = 4

#: Request shapes (constraint sets and domain) whose view a catalog keeps. Policies, capability
#: mixes and domains are few, so a handful cover the traffic; the bound only stops unusual
#: clients growing the cache (a miss costs one pass over the catalog, as an uncached request).
MAX_VIEWS = 32

# What a view depends on: capabilities, the model and provider allow/block lists, the domain.
_ViewKey = tuple[
    tuple[str, ...],
    frozenset[str] | None,
    frozenset[str],
    frozenset[str] | None,
    frozenset[str],
    str | None,
]
# Per-model row of a view: (row index, passes the static checks, model, name, max output tokens,
# context window, input and output price per token, quality, its domain (None = overall), TTFT
# and throughput priors, the throughput floored as `estimate` floors it).
_ViewRow = tuple[
    int, bool, ModelInfo, str, int, int, float, float, float, str | None, float, float, float
]
# What one model's live stats contribute, whatever the request (see `_blend`): (stats, priors,
# pool, circuit open, samples, the measured latency line's intercept and slope or None, the
# latency weight, weight and live quality or None), then the fields of the model's `estimate` for
# a request that leaves the output length open, which every request shares unless its max tokens
# cut the answer shorter: (output, latency, error rate, prior and measured latency, prior and
# measured output). Flat, so the loop unpacks it in one step.
_Blend = tuple[
    LiveStats, Priors, Typical, bool, int, float | None, float, float, float | None, float | None,
    float, float, float, float, float | None, float, float | None,
]  # fmt: skip

# Per-model row: (model, name, provider, supported capabilities, max output tokens, context window,
# input and output price per token, quality, domain quality, TTFT and throughput priors, and the
# throughput floored as `estimate` floors it).
_Row = tuple[
    ModelInfo,
    str,
    str,
    frozenset[str],
    int,
    int,
    float,
    float,
    float,
    Mapping[str, float],
    float,
    float,
    float,
]


def _supported(model: ModelInfo) -> frozenset[str]:
    # Every `supports_*` flag the model has, so a request's capability check is one subset test;
    # a capability no model attribute names is unsupported, as `getattr(model, attr, False)` says.
    return frozenset(
        attr[9:] for attr in dir(model) if attr.startswith("supports_") and getattr(model, attr)
    )


def _row(model: ModelInfo) -> _Row:
    return (
        model,
        model.name,
        model.provider,
        _supported(model),
        model.max_output_tokens,
        model.context_window,
        model.input_cost_per_token,
        model.output_cost_per_token,
        model.quality,
        model.domain_quality,
        model.ttft_ms,
        model.tokens_per_s,
        max(model.tokens_per_s, _MIN_TPS),
    )


def _quality(
    overall: float, by_domain: Mapping[str, float], domain: str | None
) -> tuple[float, str | None]:
    # As in `estimate`: the domain's score when the model has one, else the overall quality.
    quality = by_domain.get(domain) if domain is not None else None
    return (overall, None) if quality is None else (quality, domain)


#: A request that leaves the output length open: what `_blend` estimates once per stats object.
_OPEN_LENGTH = RequestContext(request_id="", input_tokens=0)


def _blend(model: ModelInfo, stats: LiveStats, priors: Priors, pool: Typical) -> _Blend:
    # The request-independent half of `estimate` for a model with live stats. Live stats objects
    # are replaced, not mutated, when the stats refresh, so this is kept per model until the
    # object (or the pool) changes. Everything here comes from the reference functions
    # themselves, so the request-dependent half only repeats the arithmetic involving the request.
    n = stats.samples
    line = latency_line(model, stats, priors)
    live_q, q_n = stats.quality, stats.quality_samples
    quality_weight = q_n / (q_n + priors.quality_weight) if live_q is not None and q_n > 0 else None
    est = estimate(model, _OPEN_LENGTH, stats, priors, pool)
    return (
        stats,
        priors,
        pool,
        stats.circuit_open,
        n,
        None if line is None else line[0],
        0.0 if line is None else line[1],
        n / (n + priors.latency_weight),
        quality_weight,
        live_q,
        est.output_tokens,
        est.latency_ms,
        est.error_rate,
        est.latency_prior_ms,
        est.latency_live_ms,
        est.output_prior,
        est.output_live,
    )


def _reasons(
    limits: HardConstraints,
    ctx: RequestContext,
    model: ModelInfo,
    stats: LiveStats | None,
    priors: Priors,
    pool: Typical,
) -> tuple[str, ...]:
    return limits.violations(estimate(model, ctx, stats, priors, pool), stats)


class PreparedCatalog(Sequence[ModelInfo]):
    """Catalog models with their per-model constants, built once and reused by every request.

    A read-only sequence of the models in the given order, so it can stand wherever the catalog
    did. Get one from `SelectionEngine.prepare` (which also caches them by catalog identity).
    """

    __slots__ = ("_blends", "_by_name", "_columnar", "_models", "_names", "_rows", "_typical", "_views")

    def __init__(self, models: Iterable[ModelInfo]) -> None:
        self._models = tuple(models)
        # Name order: rejects come out sorted, and the strategies' stable sorts then break their
        # last ties by name without comparing strings (see strategies.py).
        by_name = sorted(self._models, key=lambda m: m.name)
        self._rows: tuple[_Row, ...] = tuple(_row(m) for m in by_name)
        self._names = tuple(m.name for m in by_name)
        self._by_name = tuple(by_name)
        # The last few (priors, stats per row, their `typical` pool), newest last: see `_pool`.
        self._typical: list[tuple[Priors, list[LiveStats | None], Typical]] = []
        self._views: dict[_ViewKey, tuple[_ViewRow, ...]] = {}  # see `_view`
        # Per row, the last live stats seen and what they contribute (see `_blend`).
        self._blends: list[_Blend | None] = [None] * len(self._rows)
        # The arrays `_columnar` ranks a large catalog with: per model, then per stats snapshot.
        self._columnar: tuple | None = None

    def __len__(self) -> int:
        return len(self._models)

    @overload
    def __getitem__(self, index: int) -> ModelInfo: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[ModelInfo, ...]: ...
    def __getitem__(self, index: int | slice) -> ModelInfo | tuple[ModelInfo, ...]:
        return self._models[index]

    def __iter__(self) -> Iterator[ModelInfo]:
        return iter(self._models)

    def __repr__(self) -> str:
        return f"PreparedCatalog({len(self._models)} models)"

    def holds(self, models: Sequence[ModelInfo]) -> bool:
        """True when ``models`` are exactly these model objects, in this order."""
        mine = self._models
        return len(models) == len(mine) and all(map(is_, models, mine))

    def _view(self, limits: HardConstraints, domain: str | None) -> tuple[_ViewRow, ...]:
        """The rows as one request shape sees them: static verdict and quality resolved.

        The verdict covers the constraints that ignore request size and live stats (model and
        provider lists, capabilities: the rules of `HardConstraints.admits`); the quality is the
        model's score for ``domain`` when it has one, as in `estimate`.
        """
        key = (
            limits.capabilities,
            limits.allowed_models,
            limits.blocked_models,
            limits.allowed_providers,
            limits.blocked_providers,
            domain,
        )
        view = self._views.get(key)
        if view is None:
            caps, allowed_m, blocked_m, allowed_p, blocked_p, _ = key
            view = tuple(
                [
                    (
                        j,
                        (allowed_m is None or name in allowed_m)
                        and name not in blocked_m
                        and (allowed_p is None or provider in allowed_p)
                        and provider not in blocked_p
                        and supported.issuperset(caps),
                        model,
                        name,
                        max_out,
                        window,
                        in_cost,
                        out_cost,
                        *_quality(quality, domain_quality, domain),
                        ttft,
                        tps,
                        tps_floor,
                    )
                    for j, (model, name, provider, supported, max_out, window, in_cost,
                            out_cost, quality, domain_quality, ttft, tps, tps_floor)
                    in enumerate(self._rows)  # fmt: skip
                ]
            )
            if len(self._views) >= MAX_VIEWS:
                self._views.clear()
            self._views[key] = view
        return view

    def _pool(self, priors: Priors, stats: list[LiveStats | None]) -> Typical:
        """`typical` of these stats, recomputed only when a model's stats changed.

        Between two refreshes of the stats snapshot every request sees the same objects, so one
        list comparison replaces the pooling (and keeps the stats blends, which are cached per pool
        object, valid). It checks identity first, in C (0.6 us for 1,000 models, against 14 for
        `all(map(is_, ...))`); stats objects that are new but equal are frozen values with the same
        figures, so they pool the same. The last few stats lists are remembered, not only the last:
        pipelines with feedback of their own rank with stats views of their own, in turn.
        """
        recent = self._typical
        for entry in reversed(recent):
            if entry[0] is priors and stats == entry[1]:
                return entry[2]
        pool = typical(priors, zip(self._by_name, stats, strict=True))
        for entry in recent:
            if entry[0] is priors and entry[2] == pool:
                pool = entry[2]  # an equal pool: keep the object the blends were built with
                break
        recent.append((priors, stats, pool))
        if len(recent) > _RECENT_STATS:
            del recent[0]
        return pool

    def split(
        self,
        ctx: RequestContext,
        limits: HardConstraints,
        get_stats: Callable[[str], LiveStats | None],
        priors: Priors,
    ) -> tuple[list[Estimate], list[Rejection]]:
        """Estimates of the feasible models and the rejected models, both in name order.

        Equivalent to ``estimate`` then ``limits.admits`` per model, with the pool of every
        model's stats (`typical` over the catalog in name order); see the module docstring.
        """
        stats_of = list(map(get_stats, self._names))
        pool = self._pool(priors, stats_of)
        inp, requested = limits.input_tokens, limits.requested_output
        min_q, max_cost, max_lat = limits.min_quality, limits.max_cost_usd, limits.max_latency_ms
        # A request that names its max tokens fixes the output of every model that can honour it
        # (the others are rejected before estimating).
        requested_out = None if requested is None else float(requested)
        domain = ctx.domain
        learned = ctx.quality_estimates
        prior_out, factor = pool
        prior_err, floor = priors.error_rate, priors.latency_floor_ms
        blends = self._blends
        feasible: list[Estimate] = []
        rejected: list[Rejection] = []
        reject = rejected.append
        accept = feasible.append

        for row, stats in zip(self._view(limits, domain), stats_of):
            (j, passes, model, name, max_out, window, in_cost, out_cost, quality, quality_domain,
             ttft, tps, tps_floor) = row  # fmt: skip
            if stats is None:
                if not passes or (requested is not None and requested > max_out):
                    reject(deferred_rejection(name, _reasons, (limits, ctx, model, None, priors, pool)))
                    continue
                out = float(max_out)  # min(prior_out, float(max_out)), spelled out
                if not out < prior_out:
                    out = prior_out
                out_prior = out
                if requested_out is not None and requested_out < out:
                    out = requested_out
                latency = prior_latency = (ttft + out * 1000.0 / tps_floor) * factor
                live_latency = out_live = None
                errors, n = prior_err, 0
            else:
                blend = blends[j]
                if (
                    blend is None
                    or blend[0] is not stats
                    or blend[1] is not priors
                    or blend[2] is not pool
                ):
                    blend = blends[j] = _blend(model, stats, priors, pool)
                (_, _, _, circuit_open, n, line_a, line_b, latency_weight, quality_weight,
                 live_quality, out, latency, errors, prior_latency, live_latency, out_prior,
                 out_live) = blend  # fmt: skip
                if circuit_open or not passes or (requested is not None and requested > max_out):
                    reject(deferred_rejection(name, _reasons, (limits, ctx, model, stats, priors, pool)))
                    continue
                if requested_out is not None and requested_out < out:
                    # The request caps the answer below its usual length: the latency at that.
                    out = requested_out
                    latency = prior_latency = (ttft + out * 1000.0 / tps_floor) * factor
                    if line_a is not None:
                        live_latency = line_a + line_b * out
                        p = prior_latency if prior_latency > floor else floor
                        v = live_latency if live_latency > floor else floor
                        latency = p * (v / p) ** latency_weight
                if domain is not None and stats.domain_quality:
                    quality = blend_quality(quality, stats, domain, priors.quality_weight)
                elif quality_weight is not None:
                    quality = quality + quality_weight * (live_quality - quality)
            if learned is not None:
                q = learned.get(name)
                if q is not None:  # as in `estimate`: the router model's estimate wins
                    quality, quality_domain = q, PROMPT_BASIS
            cost = inp * in_cost + out * out_cost

            if (
                inp + (out if requested_out is None else requested_out) > window
                or (max_cost is not None and cost > max_cost)
                or (min_q is not None and quality < min_q)
                or (max_lat is not None and latency > max_lat)
            ):
                reject(deferred_rejection(name, _reasons, (limits, ctx, model, stats, priors, pool)))
            else:
                accept(
                    _new(
                        Estimate,
                        (model, out, cost, latency, quality, quality_domain, errors, n,
                         prior_latency, live_latency, out_prior, out_live),
                    )  # fmt: skip
                )
        return feasible, rejected
