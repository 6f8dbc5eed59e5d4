"""Scorers: small pure components mapping candidates to normalised scores in [0, 1].

A scorer has a ``name`` (the key in ``Candidate.scores`` and in custom weights) and reads only the
immutable `Snapshot` of one selection (feasible estimates plus log-scale bounds):

- ``score(snap)`` returns one score per candidate, in ``snap.estimates`` order. It works on the
  whole set at once because it runs on every request, and a per-candidate call costs more than
  the arithmetic it wraps (see docs/selection.md for the numbers).
- ``explain(snap, i)`` is the same figure for candidate ``i`` as a readable reason; it is called
  only for candidates whose reasons are spelled out, since formatting is the slowest part.

Cost and latency are relative (log scale over the feasible set, see `_snapshot`); quality and
reliability are absolute, because 0.9 quality means the same whatever the alternatives are.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import log
from typing import Protocol

from gateway.selection._estimate import PROMPT_BASIS
from gateway.selection._snapshot import Snapshot, log_scores

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


def _log_score(value: float, hi: float, span: float) -> float:
    return (hi - log(value)) / span if span > 0.0 else 1.0


class CostScorer:
    """Expected USD for this request, log-normalised: the cheapest feasible model scores 1."""

    __slots__ = ()
    name = "cost"

    def score(self, snap: Snapshot) -> Sequence[float]:
        return log_scores(snap.costs, snap.cost_hi, snap.cost_span)

    def explain(self, snap: Snapshot, i: int) -> str:
        est = snap.estimates[i]
        s = _log_score(snap.costs[i], snap.cost_hi, snap.cost_span)
        out = est.output_tokens
        return f"cost: ${est.cost_usd:.3g} expected ({out:,.0f} tokens out) -> {s:.2f}"


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
    """Expected TTFT + output tokens / throughput (priors blended with live), log-normalised."""

    __slots__ = ()
    name = "latency"

    def score(self, snap: Snapshot) -> Sequence[float]:
        return log_scores(snap.latencies, snap.latency_hi, snap.latency_span)

    def explain(self, snap: Snapshot, i: int) -> str:
        s = _log_score(snap.latencies[i], snap.latency_hi, snap.latency_span)
        return f"latency: {snap.estimates[i].latency_ms:,.0f} ms expected -> {s:.2f}"


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
