"""Scorers: small pure components mapping candidates to normalised scores in [0, 1].

A scorer has a ``name`` (the key in ``Candidate.scores`` and in custom weights) and reads only the
immutable `Snapshot` of one selection (feasible estimates plus log-scale bounds):

- ``score(snap)`` returns one score per candidate, in ``snap.estimates`` order. It works on the
  whole set at once because it runs on every request, and a per-candidate call costs more than
  the arithmetic it wraps (see docs/selection.md for the numbers).
- ``explain(snap, i)`` is the same figure for candidate ``i`` as a readable reason; it is called
  only for candidates whose reasons are spelled out, since formatting is the slowest part.

Cost and latency are relative to the best feasible value, on a log scale over a fixed range (see
`_snapshot`); quality and reliability are absolute, because 0.9 quality means the same whatever
the alternatives are. Explanations say what each figure was made of: measured against prior.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from gateway.selection._estimate import PROMPT_BASIS, Estimate
from gateway.selection._snapshot import Snapshot, log_score, log_scores

__all__ = [
    "DEFAULT_SCORERS",
    "CostScorer",
    "LatencyScorer",
    "QualityScorer",
    "ReliabilityScorer",
    "Scorer",
]


class Scorer(Protocol):
    name: str

    def score(self, snap: Snapshot) -> Sequence[float]:
        """One score in [0, 1] per candidate (higher is better), in ``snap.estimates`` order."""
        ...

    def explain(self, snap: Snapshot, i: int) -> str:
        """The figures behind candidate ``i``'s score, as one line."""
        ...


def _output_basis(est: Estimate) -> str:
    out, prior, live = est.output_tokens, est.output_prior, est.output_live
    # The blend lies between prior and measurement, so below both means max_tokens cut it.
    capped = "max_tokens; " if out < (prior if live is None or prior < live else live) else ""
    if live is None:
        if capped:
            return f"{out:,.0f} tokens out: {capped}prior {prior:,.0f}"
        return f"{out:,.0f} tokens out, prior"
    return (
        f"{out:,.0f} tokens out: {capped}measured {live:,.0f} over {est.samples} recent requests;"
        f" prior {prior:,.0f}"
    )


class CostScorer:
    """Expected USD for this request, relative to the cheapest feasible model (log scale)."""

    __slots__ = ()
    name = "cost"

    def score(self, snap: Snapshot) -> Sequence[float]:
        return log_scores(snap.costs, snap.cost_lo, snap.cost_span)

    def explain(self, snap: Snapshot, i: int) -> str:
        est = snap.estimates[i]
        s = log_score(snap.costs[i], snap.cost_lo, snap.cost_span)
        return f"cost: ${est.cost_usd:.3g} expected ({_output_basis(est)}) -> {s:.2f}"


class QualityScorer:
    """The router model's estimate for this prompt when there is one; else domain quality for the
    request's domain when the model has one, else overall quality, either shrunk towards the
    feedback posterior (``LiveStats.domain_quality`` / ``quality``) by sample count.
    """

    __slots__ = ()
    name = "quality"

    def score(self, snap: Snapshot) -> Sequence[float]:
        return [e.quality for e in snap.estimates]

    def explain(self, snap: Snapshot, i: int) -> str:
        est = snap.estimates[i]
        if est.quality_domain == PROMPT_BASIS:
            basis = "learned for this prompt"
        else:
            basis = "overall" if est.quality_domain is None else f"domain {est.quality_domain}"
        return f"quality: {est.quality:.2f} ({basis})"


class LatencyScorer:
    """Expected latency relative to the fastest feasible model (log scale): the catalog's TTFT +
    tokens / throughput blended geometrically with the measured latency (see `_estimate`)."""

    __slots__ = ()
    name = "latency"

    def score(self, snap: Snapshot) -> Sequence[float]:
        return log_scores(snap.latencies, snap.latency_lo, snap.latency_span)

    def explain(self, snap: Snapshot, i: int) -> str:
        est = snap.estimates[i]
        s = log_score(snap.latencies[i], snap.latency_lo, snap.latency_span)
        if est.latency_live_ms is None:
            basis = "prior, not measured"
        else:
            basis = (
                f"measured {est.latency_live_ms:,.0f} ms over {est.samples} recent requests;"
                f" prior {est.latency_prior_ms:,.0f} ms"
            )
        return f"latency: {est.latency_ms:,.0f} ms expected ({basis}) -> {s:.2f}"


class ReliabilityScorer:
    """1 - expected error rate (prior blended with live error rate by sample count)."""

    __slots__ = ()
    name = "reliability"

    def score(self, snap: Snapshot) -> Sequence[float]:
        return [1.0 - e.error_rate for e in snap.estimates]

    def explain(self, snap: Snapshot, i: int) -> str:
        est = snap.estimates[i]
        basis = f"{est.samples} samples" if est.samples else "prior"
        return f"reliability: {est.error_rate:.1%} expected errors ({basis})"


DEFAULT_SCORERS: tuple[Scorer, ...] = (
    CostScorer(),
    QualityScorer(),
    LatencyScorer(),
    ReliabilityScorer(),
)
