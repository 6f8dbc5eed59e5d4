"""A catalog prepared once for many selections: per-model constants and the estimate/filter loop.

Selection runs on every request over the same catalog, so what depends only on the models (prices,
limits, the set of supported capabilities, the clamped throughput, name order) is read once into a
flat tuple per model. `PreparedCatalog.split` then estimates every model for one request and
applies the hard constraints in a single loop over those tuples, with the request's figures in
locals. Two caches live here (bounded, and derived from immutable inputs, so they never change a
result): per request shape (constraint sets and domain), each model's static verdict and quality
(`_view`); per model, what its current live stats contribute whatever the request (`_blend`).

The loop restates `_estimate.estimate` and `HardConstraints.admits` inline (a function call per
model per step cost more than the arithmetic). It must produce the same floats in the same
operation order and the same verdicts; property tests compare it with both. A rejected model's
reasons are formatted from the reference functions only if someone reads them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from operator import is_
from typing import overload

from gateway.selection._estimate import _MIN_TPS, PROMPT_BASIS, Estimate, Priors, blend_quality, estimate, shrink
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
# circuit open, samples, blended TTFT, blended throughput floored, weight and live end-to-end
# latency or None, weight and live quality or None, error rate, output tokens without max_tokens).
_Blend = tuple[
    LiveStats, Priors, bool, int, float, float,
    float | None, float | None, float | None, float | None, float, float,
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


def _blend(ttft: float, tps: float, stats: LiveStats, priors: Priors) -> _Blend:
    # The request-independent half of `estimate` for a model with live stats. Live stats objects
    # are replaced, not mutated, when the stats refresh, so this is kept per model until the
    # object changes. The weights are `shrink`'s ``n / (n + k)``, so the request-dependent half
    # (``prior + w * (live - prior)``) repeats its arithmetic exactly.
    n = stats.samples
    live_ttft, live_tps, live_lat = stats.ttft_ms, stats.tokens_per_s, stats.latency_ms
    latency_weight = None
    if live_ttft is None and live_tps is None and live_lat is not None and n > 0:
        latency_weight = n / (n + priors.latency_weight)
    live_q, q_n = stats.quality, stats.quality_samples
    quality_weight = q_n / (q_n + priors.quality_weight) if live_q is not None and q_n > 0 else None
    errors = shrink(priors.error_rate, stats.error_rate, n, priors.error_weight)
    out = priors.output_tokens
    if stats.output_tokens is not None:
        out = shrink(out, stats.output_tokens, n, priors.output_weight)
    return (
        stats,
        priors,
        stats.circuit_open,
        n,
        shrink(ttft, live_ttft, n, priors.latency_weight),
        max(shrink(tps, live_tps, n, priors.latency_weight), _MIN_TPS),
        latency_weight,
        live_lat,
        quality_weight,
        live_q,
        0.0 if errors < 0.0 else (1.0 if errors > 1.0 else errors),
        out,
    )


def _reasons(
    limits: HardConstraints,
    ctx: RequestContext,
    model: ModelInfo,
    stats: LiveStats | None,
    priors: Priors,
) -> tuple[str, ...]:
    return limits.violations(estimate(model, ctx, stats, priors), stats)


class PreparedCatalog(Sequence[ModelInfo]):
    """Catalog models with their per-model constants, built once and reused by every request.

    A read-only sequence of the models in the given order, so it can stand wherever the catalog
    did. Get one from `SelectionEngine.prepare` (which also caches them by catalog identity).
    """

    __slots__ = ("_blends", "_models", "_rows", "_views")

    def __init__(self, models: Iterable[ModelInfo]) -> None:
        self._models = tuple(models)
        # Name order: rejects come out sorted, and the strategies' stable sorts then break their
        # last ties by name without comparing strings (see strategies.py).
        by_name = sorted(self._models, key=lambda m: m.name)
        self._rows: tuple[_Row, ...] = tuple(_row(m) for m in by_name)
        self._views: dict[_ViewKey, tuple[_ViewRow, ...]] = {}  # see `_view`
        # Per row, the last live stats seen and what they contribute (see `_blend`).
        self._blends: list[_Blend | None] = [None] * len(self._rows)

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

    def split(
        self,
        ctx: RequestContext,
        limits: HardConstraints,
        get_stats: Callable[[str], LiveStats | None],
        priors: Priors,
    ) -> tuple[list[Estimate], list[Rejection]]:
        """Estimates of the feasible models and the rejected models, both in name order.

        Equivalent to ``estimate`` then ``limits.admits`` per model; see the module docstring.
        """
        inp, requested = limits.input_tokens, limits.requested_output
        min_q, max_cost, max_lat = limits.min_quality, limits.max_cost_usd, limits.max_latency_ms
        # A request that names its max tokens fixes the output of every model that can honour it
        # (the others are rejected before estimating).
        requested_out = None if requested is None else float(requested)
        domain = ctx.domain
        learned = ctx.quality_estimates
        prior_out, prior_err = priors.output_tokens, priors.error_rate
        blends = self._blends
        feasible: list[Estimate] = []
        rejected: list[Rejection] = []
        reject = rejected.append
        accept = feasible.append

        for row in self._view(limits, domain):
            (j, passes, model, name, max_out, window, in_cost, out_cost, quality, quality_domain,
             ttft, tps, tps_floor) = row  # fmt: skip
            stats = get_stats(name)
            if stats is None:
                if not passes or (requested is not None and requested > max_out):
                    reject(deferred_rejection(name, _reasons, (limits, ctx, model, None, priors)))
                    continue
                if requested_out is not None:
                    out = requested_out
                else:  # min(prior_out, float(max_out)), spelled out
                    out = float(max_out)
                    if not out < prior_out:
                        out = prior_out
                latency = ttft + out * 1000.0 / tps_floor
                errors, n = prior_err, 0
            else:
                blend = blends[j]
                if blend is None or blend[0] is not stats or blend[1] is not priors:
                    blend = blends[j] = _blend(ttft, tps, stats, priors)
                (_, _, circuit_open, n, ttft, tps_floor, latency_weight, live_latency,
                 quality_weight, live_quality, errors, live_out) = blend  # fmt: skip
                if circuit_open or not passes or (requested is not None and requested > max_out):
                    reject(deferred_rejection(name, _reasons, (limits, ctx, model, stats, priors)))
                    continue
                if requested_out is not None:
                    out = requested_out
                else:  # min(live_out, float(max_out)), spelled out
                    out = float(max_out)
                    if not out < live_out:
                        out = live_out
                latency = ttft + out * 1000.0 / tps_floor
                if latency_weight is not None:
                    latency = latency + latency_weight * (live_latency - latency)
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
                inp + out > window
                or (max_cost is not None and cost > max_cost)
                or (min_q is not None and quality < min_q)
                or (max_lat is not None and latency > max_lat)
            ):
                reject(deferred_rejection(name, _reasons, (limits, ctx, model, stats, priors)))
            else:
                accept(
                    _new(Estimate, (model, out, cost, latency, quality, quality_domain, errors, n))
                )
        return feasible, rejected
