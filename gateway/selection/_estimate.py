"""Per-request expectations for one model: output tokens, cost, latency, quality, error rate.

Everything a constraint or scorer needs is computed once per (request, model) into an `Estimate`,
a plain tuple, because selection runs on every request and attribute reads on tuples are cheap.

Live figures are blended with catalog priors by *shrinkage*: with ``n`` live samples and a prior
weight ``k``, ``blended = prior + w * (live - prior)`` where ``w = n / (n + k)``. ``k`` reads as
"how many observations the prior is worth": at ``n == k`` live and prior count equally, and a
handful of samples cannot swing a decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from gateway.selection.types import LiveStats, ModelInfo, RequestContext

__all__ = ["PROMPT_BASIS", "Estimate", "Priors", "blend_quality", "estimate", "shrink"]

#: `Estimate.quality_domain` when the quality came from `RequestContext.quality_estimates`.
PROMPT_BASIS = "prompt"

_MIN_TPS = 1e-3  # guards a zero/negative throughput prior against division by zero
# NamedTuple's generated __new__ is twice as slow as building the tuple directly.
_new = tuple.__new__


@dataclass(frozen=True, slots=True)
class Priors:
    """Defaults used when a request or the live stats say nothing, and the shrinkage weights."""

    # A typical chat completion; used only when the request sets no max tokens and no live mean.
    output_tokens: float = 512.0
    # A healthy hosted API fails roughly 1 in 100 calls (timeouts, 429s, 5xx).
    error_rate: float = 0.01
    # Latency is noisy per call but stable per deployment: 20 samples earn half the say.
    latency_weight: float = 20.0
    output_weight: float = 20.0
    # Errors are rare events, so many more samples are needed before the rate means anything.
    error_weight: float = 50.0
    # Learned quality comes from sparse, noisy feedback; the curated prior stays strong.
    quality_weight: float = 30.0
    # Floors for log-scale normalisation: below a millionth of a dollar or a millisecond,
    # differences are noise, and log(0) is undefined for free models.
    cost_floor_usd: float = 1e-6
    latency_floor_ms: float = 1.0


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


def estimate(
    model: ModelInfo, ctx: RequestContext, stats: LiveStats | None, priors: Priors
) -> Estimate:
    """Expected output, cost, latency, quality and error rate of ``model`` for ``ctx``."""
    # Runs for every model on every request: locals and one tuple, no intermediate objects.
    max_out = model.max_output_tokens
    requested = ctx.max_output_tokens
    if requested is not None:
        out = float(requested if requested < max_out else max_out)
    elif stats is not None and stats.output_tokens is not None:
        live_out = shrink(
            priors.output_tokens, stats.output_tokens, stats.samples, priors.output_weight
        )
        out = min(live_out, float(max_out))
    else:
        out = min(priors.output_tokens, float(max_out))
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

    if stats is None:
        latency = model.ttft_ms + out * 1000.0 / max(model.tokens_per_s, _MIN_TPS)
        return _new(Estimate, (model, out, cost, latency, quality, domain, priors.error_rate, 0))

    n = stats.samples
    ttft = shrink(model.ttft_ms, stats.ttft_ms, n, priors.latency_weight)
    tps = shrink(model.tokens_per_s, stats.tokens_per_s, n, priors.latency_weight)
    latency = ttft + out * 1000.0 / max(tps, _MIN_TPS)
    if stats.ttft_ms is None and stats.tokens_per_s is None:
        # End-to-end latency was measured at other requests' output lengths, so it only stands
        # in when the components that scale with this request's length are missing.
        latency = shrink(latency, stats.latency_ms, n, priors.latency_weight)
    if learned is None:
        quality = blend_quality(quality, stats, ctx.domain, priors.quality_weight)
    errors = shrink(priors.error_rate, stats.error_rate, n, priors.error_weight)
    errors = 0.0 if errors < 0.0 else (1.0 if errors > 1.0 else errors)
    return _new(Estimate, (model, out, cost, latency, quality, domain, errors, n))
