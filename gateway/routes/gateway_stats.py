"""`GET /v1/gateway/stats`: what the gateway knows now, as JSON (the dashboard reads this).

Live figures per deployment, circuit states, spend against budgets per pipeline, the policy
version, and the most recent decisions with their explanations. Never any credential.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.selection.types import LiveStats
from gateway.state import GatewayState

__all__ = ["gateway_stats"]


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _decision(entry: dict) -> dict:
    # The request path stores the ranking's Rejection objects unformatted (their reason strings are
    # built lazily); format them here, off the hot path: model -> every reason it was ruled out.
    rejected = entry.get("rejected") or ()
    return {**entry, "rejected": {r.model: list(r.reasons) for r in rejected}}


def _error_rate_basis(s: LiveStats | None, few: float) -> str:
    """What `error_rate` rests on: "prior" (no live sample yet: the router assumes the prior),
    "stale" (its samples have all decayed away), "few" (fewer recent samples than the circuit
    breaker needs to judge a rate) or "live"."""
    if s is None or s.error_rate is None:
        return "prior"
    if s.samples < 1:
        return "stale"
    return "few" if s.samples < few else "live"


async def gateway_stats(request: Request) -> JSONResponse:
    state: GatewayState = request.app.state.gateway
    live = state.stats.live
    few = state.stats.store.config.min_samples
    deployments = {}
    for name, dep in state.catalog.deployments.items():
        s = live.get(name)
        deployments[name] = {
            "provider": dep.info.provider,
            # Live figures are time-decayed sums (half-life `stats_half_life_s`): `samples` is how
            # many recent samples they weigh, rounded to a whole number; a ratio such as
            # `error_rate` keeps its value while its samples fade, hence `error_rate_basis`.
            "samples": s.samples if s else 0,
            "latency_ms": _round(s.latency_ms if s else None, 1),
            "ttft_ms": _round(s.ttft_ms if s else None, 1),
            "tokens_per_s": _round(s.tokens_per_s if s else None, 1),
            "error_rate": _round(s.error_rate if s else None, 4),
            "error_rate_basis": _error_rate_basis(s, few),
            "cost_usd": _round(s.cost_usd if s else None, 8),
            "circuit": s.circuit_state if s else "closed",
            "quality": _round(s.quality if s else None),
        }
    policy_set = state.policies.current
    budgets = {}
    for name in ("default", *policy_set.names):
        policy = policy_set.default if name == "default" else policy_set.get(name)
        spend = state.stats.spend.get(name)
        budget = policy.budget if policy is not None else None
        if spend is None and budget is None:
            continue
        budgets[name] = {
            "day_usd": _round(spend.day if spend else 0.0, 6),
            "month_usd": _round(spend.month if spend else 0.0, 6),
            "daily_limit_usd": budget.daily_usd if budget else None,
            "monthly_limit_usd": budget.monthly_usd if budget else None,
        }
    return JSONResponse(
        {
            "stats_store": state.stats.status,
            "stats_half_life_s": state.settings.stats_half_life_s,
            # The error rate the router assumes for a deployment with no live samples.
            "error_rate_prior": state.engine.priors.error_rate,
            "policy_version": state.policies.version,
            "policy_error": str(state.policies.last_error) if state.policies.last_error else None,
            "deployments": deployments,
            "budgets": budgets,
            "recent_decisions": [_decision(d) for d in list(state.recent)],
            # Per-model and per-pipeline history in fixed buckets (this process), for the dashboard.
            "series": state.observer.series.snapshot() if state.observer is not None else None,
        }
    )
