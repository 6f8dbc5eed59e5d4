"""Per-request expectations for one model: output tokens, cost, latency, quality, error rate.

Everything a constraint or scorer needs is computed once per (request, model) into an `Estimate`,
a plain tuple, because selection runs on every request and attribute reads on tuples are cheap.

Live figures are blended with catalog priors by *shrinkage*: with ``n`` live samples and a prior
weight ``k``, the live figure's weight is ``w = n / (n + k)``. ``k`` reads as "how many observations
the prior is worth": at ``n == k`` live and prior count equally.

- Quality and error rate blend linearly, ``prior + w * (live - prior)``, with a large ``k``: they
  are probabilities from sparse, noisy events, so a handful of samples must not swing a decision.
- Latency and output length blend geometrically, ``prior * (live / prior) ** w``, with
  ``k = 0.25``: they are scales, one measurement says more about a deployment than a catalog
  guess that can be off by 10x, and a geometric blend lands within a few percent of the
  measurement after a few samples instead of keeping a fixed share of a prior that was wrong by a
  factor.

``n`` is the stats store's *decayed* sample count, so when a deployment gets no traffic its live
figures fade and the estimate returns to the prior (see docs/selection.md, "Recovery").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from math import exp, log
from typing import NamedTuple

from gateway.selection.types import LiveStats, ModelInfo, RequestContext

__all__ = [
    "PROMPT_BASIS",
    "Estimate",
    "Priors",
    "blend_quality",
    "estimate",
    "latency_line",
    "Typical",
    "shrink",
    "typical",
]

#: `Estimate.quality_domain` when the quality came from `RequestContext.quality_estimates`.
PROMPT_BASIS = "prompt"

_MIN_TPS = 1e-3  # guards a zero/negative throughput prior against division by zero
# NamedTuple's generated __new__ is twice as slow as building the tuple directly.
_new = tuple.__new__


@dataclass(frozen=True, slots=True)
class Priors:
    """Defaults used when a request or the live stats say nothing, the shrinkage weights, and the
    ranges of the relative cost and latency scores."""

    # A typical chat completion, used when the request sets no max tokens and nothing has been
    # measured yet (`typical` learns it from what the deployments have been answering).
    output_tokens: float = 512.0
    # A healthy hosted API fails roughly 1 in 100 calls (timeouts, 429s, 5xx).
    error_rate: float = 0.01
    # A catalog's speed and answer-length guesses are worth a quarter of one measurement: a
    # deployment's speed is stable from call to call, while hand-typed figures are often off by
    # several times. With decayed counts a deployment whose calls are a half-life apart never has
    # more than ~1.4 samples, so a larger weight would keep a slow model looking fast.
    latency_weight: float = 0.25
    output_weight: float = 0.25
    # Errors are rare events, so many more samples are needed before the rate means anything.
    error_weight: float = 50.0
    # Learned quality comes from sparse, noisy feedback; the curated prior stays strong.
    quality_weight: float = 30.0
    # Floors for the log scores: below a millionth of a dollar or a millisecond, differences are
    # noise, and log(0) is undefined for free models.
    cost_floor_usd: float = 1e-6
    latency_floor_ms: float = 1.0
    # The cost (latency) score falls from 1 for the cheapest (fastest) feasible model to 0 for one
    # `cost_range` (`latency_range`) times dearer (slower), linearly in the log: see _snapshot.
    cost_range: float = 1000.0
    latency_range: float = 10.0


class Estimate(NamedTuple):
    """What one model is expected to do for this request (plain floats, read in the hot loop)."""

    model: ModelInfo
    output_tokens: float
    cost_usd: float
    latency_ms: float
    quality: float
    quality_domain: str | None  # the domain whose score was used, None for overall, PROMPT_BASIS
    error_rate: float
    samples: int  # live samples behind latency and error rate (0 = priors only)
    # What the blended figures were made of, for explanations:
    latency_prior_ms: float  # the catalog's TTFT + tokens / throughput at `output_tokens`
    latency_live_ms: float | None  # the measured latency at `output_tokens`; None: not measured
    output_prior: float  # the prior (typical) output length, within the model's max output
    output_live: float | None  # the measured mean output length blended in; None: not used


def blend_quality(prior: float, stats: LiveStats, domain: str | None, k: float) -> float:
    """The prior shrunk towards feedback: the model x domain posterior when this domain has had
    feedback for this model, else the model's overall posterior."""
    if domain is not None and stats.domain_quality:
        live = stats.domain_quality.get(domain)
        if live is not None:
            return shrink(prior, live, stats.domain_quality_samples.get(domain, 0.0), k)  # type: ignore[arg-type]
    return shrink(prior, stats.quality, stats.quality_samples, k)


def shrink(prior: float, live: float | None, n: int, k: float) -> float:
    """Blend a prior with a live mean of ``n`` samples: ``prior + n / (n + k) * (live - prior)``."""
    if live is None or n <= 0:
        return prior
    return prior + n / (n + k) * (live - prior)


class Typical(NamedTuple):
    """What the measured deployments say about every deployment, for one stats snapshot.

    How long answers run is mostly a property of the traffic, not of the model; and how far the
    catalog's speed priors are off is mostly a property of the catalog (hand-typed TTFT and
    throughput figures tend to be off together, e.g. all 1.5x pessimistic). So a deployment's
    prior is the catalog's figure corrected by what the others measured: without that, a
    measured model (short answers, fast, cheap) is compared with unmeasured peers at 512 tokens
    each, and a model that got no traffic for a while comes back at a catalog guess that its
    measured peers beat, and never gets the request that would show it recovered.
    """

    output_tokens: float  # answer length for a deployment without measurements of its own
    latency_factor: float  # measured / catalog latency, typical over the measured deployments


def typical(priors: Priors, measured: Iterable[tuple[ModelInfo, LiveStats | None]]) -> Typical:
    """Pool every deployment's measured output length and measured / catalog latency ratio.

    Means weighted by sample counts (the latency ratio in the log, compared at each deployment's
    measured output length), each blended with the prior (512 tokens, a factor of 1) like a
    deployment's own figures, by the total count. Give ``measured`` in model-name order: sums
    are not associative in floating point, and the engine adds them in that order.
    """
    floor = priors.latency_floor_ms
    total = out_sum = ratio_sum = timed = 0.0
    for model, s in measured:
        if s is None:
            continue
        n, out = s.samples, s.output_tokens
        if n <= 0 or out is None:
            continue
        out = out if out > 1.0 else 1.0
        total += n
        out_sum += n * out
        mean = s.latency_ms
        if mean is not None:
            catalog = model.ttft_ms + out * 1000.0 / max(model.tokens_per_s, _MIN_TPS)
            mean, catalog = max(mean, floor), max(catalog, floor)
            ratio_sum += n * log(mean / catalog)
            timed += n
    out = priors.output_tokens
    if total > 0.0:
        out = out * (out_sum / total / out) ** (total / (total + priors.output_weight))
    # Only ever towards faster: one measured deployment that is slow may be slow itself, and
    # must not make the unmeasured ones look slow too (they get the benefit of the doubt).
    factor = 1.0
    if ratio_sum < 0.0:
        factor = exp(ratio_sum / (timed + priors.latency_weight))
    return Typical(out, factor)


def latency_line(model: ModelInfo, stats: LiveStats, priors: Priors) -> tuple[float, float] | None:
    """Measured latency as ``a + b * output_tokens`` (ms, ms per token); None when unmeasured.

    The line goes through the measured mean (``latency_ms`` at ``output_tokens``, over plain and
    streamed requests alike), so at the usual answer length it *is* the measurement. Its slope,
    which carries it to other lengths (a request's ``max_tokens``), is the throughput streams
    measured, blended geometrically with the prior by stream count; plain traffic alone cannot
    split a latency into waiting and generating, so without streams the slope is the prior's.
    """
    mean = stats.latency_ms
    if mean is None or stats.samples <= 0:
        return None
    b = 1000.0 / max(model.tokens_per_s, _MIN_TPS)
    tps, ns = stats.tokens_per_s, stats.stream_samples
    if tps is not None and ns > 0:
        b = b * (1000.0 / max(tps, _MIN_TPS) / b) ** (ns / (ns + priors.latency_weight))
    out = stats.output_tokens or 0.0
    a = mean - b * out
    if a < 0.0:
        # A slope that would put the intercept below zero overshoots: all of it is per token.
        a, b = 0.0, mean / out
    return a, b


def estimate(
    model: ModelInfo,
    ctx: RequestContext,
    stats: LiveStats | None,
    priors: Priors,
    pool: Typical | None = None,
) -> Estimate:
    """Expected output, cost, latency, quality and error rate of ``model`` for ``ctx``.

    ``pool`` is `typical` of the same snapshot (what `SelectionEngine.rank` uses); without it
    the priors are the catalog's figures and `Priors.output_tokens`.
    """
    # Runs for every model on every request: locals and one tuple, no intermediate objects.
    # `_prepared.PreparedCatalog.split` restates this with the same operations in the same order.
    typical_out, factor = (priors.output_tokens, 1.0) if pool is None else pool
    max_out = model.max_output_tokens
    requested = ctx.max_output_tokens
    n = 0 if stats is None else stats.samples
    out = out_prior = min(typical_out, float(max_out))
    out_live = None
    if n > 0 and stats is not None and stats.output_tokens is not None:
        live = stats.output_tokens
        out_live = live if live > 1.0 else 1.0  # no usage reported counts as 0 tokens
        out = out_prior * (out_live / out_prior) ** (n / (n + priors.output_weight))
        if out > max_out:
            out = float(max_out)
    # A request's max tokens caps the answer, but most answers end before it: it bounds the
    # expected length rather than replacing it (the context check reserves all of it).
    if requested is not None and requested < out:
        out = float(requested)
    cost = ctx.input_tokens * model.input_cost_per_token + out * model.output_cost_per_token

    domain = ctx.domain
    quality = model.domain_quality.get(domain) if domain is not None else None
    if quality is None:
        quality, domain = model.quality, None
    learned = ctx.quality_estimates.get(model.name) if ctx.quality_estimates is not None else None
    if learned is not None:
        # The router model's estimate for this prompt already folds in every piece of feedback
        # it was trained on (per-domain prior plus prompt features), so it replaces the rest.
        quality, domain = learned, PROMPT_BASIS

    prior_latency = (model.ttft_ms + out * 1000.0 / max(model.tokens_per_s, _MIN_TPS)) * factor
    if stats is None:
        return _new(
            Estimate,
            (model, out, cost, prior_latency, quality, domain, priors.error_rate, 0,
             prior_latency, None, out_prior, None),
        )  # fmt: skip

    latency, live_latency = prior_latency, None
    line = latency_line(model, stats, priors)
    if line is not None:
        live_latency = line[0] + line[1] * out
        floor = priors.latency_floor_ms
        p = prior_latency if prior_latency > floor else floor
        v = live_latency if live_latency > floor else floor
        latency = p * (v / p) ** (n / (n + priors.latency_weight))
    if learned is None:
        quality = blend_quality(quality, stats, ctx.domain, priors.quality_weight)
    errors = shrink(priors.error_rate, stats.error_rate, n, priors.error_weight)
    errors = 0.0 if errors < 0.0 else (1.0 if errors > 1.0 else errors)
    return _new(
        Estimate,
        (model, out, cost, latency, quality, domain, errors, n,
         prior_latency, live_latency, out_prior, out_live),
    )  # fmt: skip
