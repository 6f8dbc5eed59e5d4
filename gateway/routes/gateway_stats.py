"""`GET /v1/gateway/stats`: what the gateway knows now, as JSON (the dashboard reads this).

Live figures per deployment, circuit states, spend against budgets per pipeline, the policy
version, and the most recent decisions with their explanations. Never any credential.

A key bound to a pipeline sees its own pipeline only: its budget, its decisions, its routing
history and its own view of learned quality; of the deployments, only health figures (latency,
errors, circuit), never another tenant's traffic volume or spend: no sample counts, and none in
the reasons and notes of its decisions either. Of a rejected policy reload it sees only the problems
in its own pipeline's file (else that a reload was rejected); nobody is shown a server path.

With Redis the history and the recent decisions are every worker's and replica's ("history":
"fleet"; gateway/observability/fleet.py), else this process's ("process").
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway import errors
from gateway.observability.fleet import format_decision
from gateway.policy.errors import PolicyIssue
from gateway.security.middleware import PRINCIPAL
from gateway.selection.explain import without_counts
from gateway.selection.types import LiveStats, RequestContext
from gateway.state import GatewayState

__all__ = ["gateway_stats"]


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


_VOLUME = ("ok", "errors", "cost_usd", "tokens")  # per-model series fields that add up all tenants


def _selectable(state: GatewayState, pipeline: str) -> frozenset[str]:
    """The deployments `pipeline`'s policy could select: those the check that refuses a named
    deployment (403 `model_not_allowed`) lets through on the rules that hold for every request
    (models, providers, capabilities). A cap on cost, latency or quality turns on the request and
    the live figures, so a deployment it rejects now may serve the next request: it hides nothing."""
    policy_set = state.policies.current
    policy = policy_set.get(pipeline) or policy_set.default  # the default serves an unknown pipeline
    rules = replace(policy.selection_schema.constraints.to_constraints(),
                    min_quality=None, max_cost_per_request_usd=None, max_latency_ms=None)
    engine, no_request = state.decider.engine, RequestContext("gateway-stats", 0)
    return frozenset(name for name, dep in state.catalog.deployments.items()
                     if not engine.check_pinned(dep.info, no_request, rules)[0])


def _tenant_series(series: dict | None, pipeline: str, selectable: frozenset[str]) -> dict | None:
    """The history as a bound key sees it: its own pipeline's routing shares, and the health of
    the deployments its policy could select. Any other deployment's entries, and a bucket left
    empty, could only say which models other tenants used and when."""
    if series is None:
        return None
    buckets = []
    for b in series["buckets"]:
        models = {m: {k: v for k, v in f.items() if k not in _VOLUME}
                  for m, f in b["models"].items() if m in selectable}
        pipelines = {p: v for p, v in b["pipelines"].items() if p == pipeline}
        if models or pipelines:
            buckets.append({"t": b["t"], "models": models, "pipelines": pipelines})
    return {**series, "buckets": buckets}


def _tenant_decision(d: dict) -> dict:
    """A recent decision as a bound key sees it: no request or sample counts in its reasons and
    notes (live figures are global). A copy: the entries are shared with every other reader."""
    rejected = d.get("rejected") or {}
    return {
        **d,
        "reasons": [without_counts(r) for r in d.get("reasons") or ()],
        "notes": [without_counts(n) for n in d.get("notes") or ()],
        "rejected": {m: [without_counts(r) for r in reasons] for m, reasons in rejected.items()},
    }


def _issue_text(issue: PolicyIssue, directory: Path) -> str:
    """`file:line:col: message` with the file named inside the policy directory: a server path
    never reaches a client (the log has the full one)."""
    path = Path(issue.file)
    try:
        rel = path.relative_to(directory)
    except ValueError:
        rel = Path(path.name)
    name = rel.as_posix() if rel.parts else path.name
    message = issue.message.replace(f"{directory}/", "")  # "also defined in <dir>/x.yaml" -> "x.yaml"
    return f"{name}:{issue.line}:{issue.col}: {errors.scrub(message, limit=1000)}"


def _policy_error(state: GatewayState, tenant: str | None) -> str | None:
    """Why the latest policy change was rejected (the last good set stays active). The operator
    sees every problem; a bound key only those in its own pipeline's file, or that a reload was
    rejected (its own edits wait for the whole set to load), never another pipeline's problems."""
    exc = state.policies.last_error
    if exc is None:
        return None
    issues = exc.errors
    if tenant:
        issues = [i for i in issues if Path(i.file).stem == tenant]
        if not issues:
            return ("The latest policy change was rejected for problems outside this pipeline's policy; "
                    "the last valid policy set stays active.")
    directory = Path(state.policies.directory)
    return "\n".join(_issue_text(i, directory) for i in issues) or "invalid policy"


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
    principal = request.scope.get(PRINCIPAL)
    tenant = principal.pipeline if principal is not None and not principal.master else None
    live = state.stats.live_for(tenant) if tenant else state.stats.live
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
    if tenant:
        for figures in deployments.values():
            figures.pop("samples")  # traffic volume: it sums every tenant's requests
    policy_set = state.policies.current
    budgets = {}
    for name in ((tenant,) if tenant else ("default", *policy_set.names)):
        policy = policy_set.default if name == "default" else policy_set.get(name)
        spend = state.stats.spend.get(name)
        budget = policy.budget if policy is not None else None
        if spend is None and budget is None:
            continue
        budgets[name] = {
            # Nano-dollars, as stored: a tiny budget's spend must not round to nothing.
            "day_usd": _round(spend.day if spend else 0.0, 9),
            "month_usd": _round(spend.month if spend else 0.0, 9),
            "daily_limit_usd": budget.daily_usd if budget else None,
            "monthly_limit_usd": budget.monthly_usd if budget else None,
        }
    series, decisions, history = await _history(state)
    return JSONResponse(
        {
            "stats_store": state.stats.status,
            "stats_half_life_s": state.settings.stats_half_life_s,
            # The error rate the router assumes for a deployment with no live samples.
            "error_rate_prior": state.decider.engine.priors.error_rate,
            "policy_version": state.policies.version,
            "policy_error": _policy_error(state, tenant),
            "deployments": deployments,
            "budgets": budgets,
            "recent_decisions": ([_tenant_decision(d) for d in decisions if d["pipeline"] == tenant] if tenant
                                 else decisions),
            # Per-model and per-pipeline history in fixed buckets, for the dashboard.
            "series": (_tenant_series(series, tenant, _selectable(state, tenant)) if tenant else series),
            "history": history,
        }
    )


async def _history(state: GatewayState) -> tuple[dict | None, list[dict], str]:
    """(series, recent decisions, "fleet" | "process"): every process's when the store answers."""
    if state.fleet is not None:
        try:
            series, decisions = await state.fleet.read()
        except Exception:  # noqa: BLE001 - the store is down: this process's own history
            pass
        else:
            return series, decisions, "fleet"
    series = state.observer.series.snapshot() if state.observer is not None else None
    # The request path keeps the ranking's Rejection objects unformatted; format them here.
    return series, [format_decision(d) for d in state.recent], "process"
