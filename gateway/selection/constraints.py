"""Hard constraints: a candidate that breaks any of them is rejected with every reason, not ranked.

The request's constraints are resolved once into a `HardConstraints`. ``admits`` is the reference
check (a handful of comparisons, no allocation); ``violations`` builds every reason with its
numbers and runs only when a rejection's reasons are read. The engine applies the same rules inline
over a prepared catalog (`_prepared`). All three must agree, which property tests check.
"""

from __future__ import annotations

from typing import NamedTuple

from gateway.selection._estimate import Estimate
from gateway.selection.types import Constraints, LiveStats, RequestContext

__all__ = ["CIRCUIT_OPEN", "HardConstraints"]

CIRCUIT_OPEN = "circuit open (cooling down)"
# NamedTuple's generated __new__ is a Python function; every field is given here, so skip it.
_new = tuple.__new__


# Capabilities a request asks for through a parameter: the reason names the parameter too.
_CAPABILITY_TEXT = {"multiple_choices": "multiple_choices (n > 1)", "logprobs": "logprobs (logprobs: true)",
                   "audio_input": "audio_input (an input_audio part)", "pdf_input": "pdf_input (a file part)"}


def _names(values: frozenset[str]) -> str:
    return ", ".join(sorted(values))


class HardConstraints(NamedTuple):
    """Everything a candidate must satisfy for one request (context ∪ policy constraints).

    A tuple because it is built on every request and its fields are unpacked into locals in one
    step by the engine's loop.
    """

    input_tokens: int
    requested_output: int | None
    capabilities: tuple[str, ...]  # sorted, so reasons read the same for every catalog order
    capability_attrs: tuple[str, ...]  # ModelInfo.supports_* attribute per capability
    min_quality: float | None = None
    max_cost_usd: float | None = None
    max_latency_ms: float | None = None
    allowed_models: frozenset[str] | None = None
    blocked_models: frozenset[str] = frozenset()
    allowed_providers: frozenset[str] | None = None
    blocked_providers: frozenset[str] = frozenset()

    @classmethod
    def for_request(cls, ctx: RequestContext, constraints: Constraints) -> HardConstraints:
        caps = sorted(ctx.required_capabilities | constraints.required_capabilities)
        return _new(
            cls,
            (
                ctx.input_tokens,
                ctx.max_output_tokens,
                tuple(caps),
                tuple([f"supports_{c}" for c in caps]),
                constraints.min_quality,
                constraints.max_cost_per_request_usd,
                constraints.max_latency_ms,
                constraints.allowed_models,
                constraints.blocked_models,
                constraints.allowed_providers,
                constraints.blocked_providers,
            ),
        )

    @classmethod
    def for_policy(cls, constraints: Constraints) -> HardConstraints:
        """Only the rules a policy sets (no request-derived capability or context need)."""
        caps = sorted(constraints.required_capabilities)
        return _new(
            cls,
            (
                0, None, tuple(caps), tuple([f"supports_{c}" for c in caps]),
                constraints.min_quality, constraints.max_cost_per_request_usd, constraints.max_latency_ms,
                constraints.allowed_models, constraints.blocked_models, constraints.allowed_providers,
                constraints.blocked_providers,
            ),
        )

    def admits(self, est: Estimate, stats: LiveStats | None) -> bool:
        """True when no constraint is broken (same rules as `violations`, without the strings)."""
        model = est.model
        if stats is not None and stats.circuit_open:
            return False
        name, provider = model.name, model.provider
        if (self.allowed_models is not None and name not in self.allowed_models) or (
            name in self.blocked_models
        ):
            return False
        if (self.allowed_providers is not None and provider not in self.allowed_providers) or (
            provider in self.blocked_providers
        ):
            return False
        for attr in self.capability_attrs:
            if not getattr(model, attr, False):
                return False
        requested = self.requested_output
        if requested is not None and requested > model.max_output_tokens:
            return False
        # The window must hold all the output the request may get, not just the expected part.
        reserved = est.output_tokens if requested is None else requested
        if self.input_tokens + reserved > model.context_window:
            return False
        return not (
            (self.max_cost_usd is not None and est.cost_usd > self.max_cost_usd)
            or (self.min_quality is not None and est.quality < self.min_quality)
            or (self.max_latency_ms is not None and est.latency_ms > self.max_latency_ms)
        )

    def violations(self, est: Estimate, stats: LiveStats | None) -> tuple[str, ...]:
        """Every broken constraint as a readable reason; empty when the candidate is feasible."""
        model = est.model
        reasons: list[str] = []
        if stats is not None and stats.circuit_open:
            reasons.append(CIRCUIT_OPEN)
        if self.allowed_models is not None and model.name not in self.allowed_models:
            reasons.append(f"model: {model.name} not in allowed models")
        if model.name in self.blocked_models:
            reasons.append(f"model: {model.name} is blocked")
        if self.allowed_providers is not None and model.provider not in self.allowed_providers:
            reasons.append(
                f"provider: {model.provider} not allowed "
                f"(allowed: {_names(self.allowed_providers) or 'none'})"
            )
        if model.provider in self.blocked_providers:
            reasons.append(f"provider: {model.provider} is blocked")
        if self.capabilities:
            missing = [
                c
                for c, attr in zip(self.capabilities, self.capability_attrs, strict=True)
                if not getattr(model, attr, False)
            ]
            if missing:
                reasons.append(f"capability: missing {', '.join(_CAPABILITY_TEXT.get(c, c) for c in missing)}")
        requested = self.requested_output
        if requested is not None and requested > model.max_output_tokens:
            reasons.append(
                f"max_tokens: requested {requested:,} > model max output {model.max_output_tokens:,}"
            )
        out = est.output_tokens if requested is None else min(requested, model.max_output_tokens)
        needed = self.input_tokens + out
        if needed > model.context_window:
            reasons.append(
                f"context: needs {needed:,.0f} tokens ({self.input_tokens:,} in + {out:,.0f} out)"
                f" > window {model.context_window:,}"
            )
        if self.max_cost_usd is not None and est.cost_usd > self.max_cost_usd:
            reasons.append(
                f"cost: expected ${est.cost_usd:.4g} > max ${self.max_cost_usd:.4g} per request"
            )
        if self.min_quality is not None and est.quality < self.min_quality:
            basis = "overall" if est.quality_domain is None else f"domain {est.quality_domain}"
            reasons.append(f"quality: {est.quality:.2f} ({basis}) < min {self.min_quality:.2f}")
        if self.max_latency_ms is not None and est.latency_ms > self.max_latency_ms:
            reasons.append(
                f"latency: expected {est.latency_ms:,.0f} ms > max {self.max_latency_ms:,.0f} ms"
            )
        return tuple(reasons)
