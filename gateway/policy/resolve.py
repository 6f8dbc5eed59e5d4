"""Per request: which policy applies, which strategy wins, and which expert models are preferred.

Precedence (see docs/policies.md):

1. Policy: the pipeline's policy when the request names a pipeline; the global default otherwise.
   An unknown pipeline is a 404 unless the caller allows falling back to the default.
2. Strategy: a valid header strategy, if that policy allows overrides; else the policy's own.
3. Experts: the forced tool's experts, else the experts of the tool whose result the
   conversation just returned, else the experts of every offered tool (ranked by coverage).
   A trigger fires only for a tool that has experts; the first trigger that fires decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

from gateway.policy.errors import InvalidStrategyError, UnknownPipelineError
from gateway.policy.models import STRATEGIES, BudgetSpec, ExpertSpec, ExplorationSpec, Policy
from gateway.policy.policyset import DEFAULT_PIPELINE, PolicySet
from gateway.selection.types import CAPABILITIES, Constraints, ModelInfo, RequestContext, SelectionParams

__all__ = [
    "ASSUMED_OUTPUT_TOKENS",
    "CHAT_CAPABILITIES",
    "ExpertChoice",
    "Resolution",
    "ResolutionMemo",
    "choose_experts",
    "parse_strategy",
    "resolve",
]

#: Output tokens assumed when checking an expert's own cost/latency caps for a request that sets
#: no max_tokens; the engine's own estimates (with live stats) still apply to the final choice.
ASSUMED_OUTPUT_TOKENS = 256

#: The capabilities a policy can require all describe chat models (tool calls, streamed tokens, image,
#: audio and PDF parts, JSON answers, choices, logprobs). An embeddings request asks for none of
#: them, and no embedding model has them, so a pipeline requiring `tools` would refuse every
#: embeddings request while one requiring `streaming` let them through (embedding models default
#: to supporting it): for embeddings they do not apply. A capability that embedding models can
#: have, if one is added, must stay out of this set.
CHAT_CAPABILITIES = frozenset(CAPABILITIES)

StrategySource = Literal["header", "pipeline", "default"]
ExpertTrigger = Literal["forced", "last_tool_result", "offered"]


@dataclass(frozen=True, slots=True)
class ExpertChoice:
    """Which expert models to rank first for this request, and why."""

    preferred: tuple[str, ...] = ()
    trigger: ExpertTrigger | None = None
    tools: tuple[str, ...] = ()  # the tools whose experts were used
    reason: str | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Resolution:
    """Everything the route needs from policies for one request."""

    policy: Policy
    policy_name: str  # the pipeline id, or "default"
    params: SelectionParams
    strategy_source: StrategySource
    domain: str | None  # the request's domain, else the policy's default_domain
    default_domain: str | None
    fallbacks: tuple[str, ...]
    budget: BudgetSpec | None
    exploration: ExplorationSpec
    experts: ExpertChoice
    notes: tuple[str, ...]


def parse_strategy(value: str | None) -> str | None:
    """A header value as a strategy name (None when absent/blank); raises for anything else."""
    if value is None or not value.strip():
        return None
    name = value.strip().lower()
    if name not in STRATEGIES:
        raise InvalidStrategyError(
            f"unknown strategy {value.strip()!r} in X-Selection-Strategy; allowed: {', '.join(STRATEGIES)} "
            "(custom ranks with the pipeline policy's `weights`, see docs/policies.md)"
        )
    return name


def _pick_policy(
    policy_set: PolicySet, pipeline_id: str | None, allow_fallback: bool, notes: list[str]
) -> tuple[Policy, str, bool]:
    if pipeline_id is None or pipeline_id == "" or pipeline_id == DEFAULT_PIPELINE:
        return policy_set.default, DEFAULT_PIPELINE, False
    policy = policy_set.get(pipeline_id)
    if policy is not None:
        return policy, pipeline_id, True
    if not allow_fallback:
        raise UnknownPipelineError(pipeline_id, policy_set.names)
    notes.append(f"unknown pipeline {pipeline_id!r}; using the default policy")
    return policy_set.default, DEFAULT_PIPELINE, False


def resolve(
    policy_set: PolicySet,
    pipeline_id: str | None,
    header_strategy: str | None,
    ctx: RequestContext,
    allow_unknown_pipeline_fallback: bool = False,
    embedding: bool = False,
) -> Resolution:
    """Apply the precedence rules; `pipeline_id` None means `ctx.pipeline`; `embedding`: for an
    embeddings request, which the policy's chat capabilities (`CHAT_CAPABILITIES`) do not bind.

    Raises `UnknownPipelineError` (404) and `InvalidStrategyError` (400, a ValueError). A bad
    header value is rejected even when the policy would ignore it: it is a client bug either way.
    """
    notes: list[str] = []
    requested = parse_strategy(header_strategy)
    pid = ctx.pipeline if pipeline_id is None else pipeline_id
    policy, name, from_pipeline = _pick_policy(policy_set, pid, allow_unknown_pipeline_fallback, notes)
    sel = policy.selection_schema

    source: StrategySource = "pipeline" if from_pipeline else "default"
    override = None
    if requested is not None:
        if sel.allow_header_override:
            override, source = requested, "header"
            notes.append(f"strategy {requested!r} from the request header")
        else:
            notes.append(
                f"header strategy {requested!r} ignored: policy {name!r} does not allow overrides"
            )

    # An expert's own constraints judge quality in the request's domain: the header's, else the
    # policy's default (applied to the context only after this; an inferred one comes later still).
    experts = choose_experts(policy, ctx if ctx.domain or not sel.default_domain
                             else replace(ctx, domain=sel.default_domain), policy_set.models)
    notes.extend(experts.notes)
    params = policy_set.selection_params(policy, override, experts.preferred, experts.reason,
                                         drop_capabilities=CHAT_CAPABILITIES if embedding else frozenset())
    return Resolution(
        policy=policy,
        policy_name=name,
        params=params,
        strategy_source=source,
        domain=ctx.domain or sel.default_domain,
        default_domain=sel.default_domain,
        fallbacks=sel.fallbacks,
        budget=policy.budget,
        exploration=sel.exploration,
        experts=experts,
        notes=tuple(notes),
    )


def choose_experts(
    policy: Policy, ctx: RequestContext, models: Mapping[str, ModelInfo] | None = None
) -> ExpertChoice:
    """The expert models for `ctx`: forced tool > last tool result > offered tools."""
    table = policy.experts
    if not table:
        return ExpertChoice()
    notes: list[str] = []
    for trigger, tool in (("forced", ctx.forced_tool), ("last_tool_result", ctx.last_tool_result)):
        if tool is None:
            continue
        if tool in table:
            kept = _eligible(tool, table[tool], ctx, models, notes)
            label = "forced tool" if trigger == "forced" else "result of tool"
            reason = f"{label} {tool!r}: experts {', '.join(kept)}" if kept else None
            return ExpertChoice(kept, trigger, (tool,), reason, tuple(notes))  # type: ignore[arg-type]
        notes.append(f"{'forced tool' if trigger == 'forced' else 'tool result'} {tool!r} has no experts")

    offered = [t for t in dict.fromkeys(ctx.tool_names) if t in table]
    if not offered:
        return ExpertChoice(notes=tuple(notes))
    lists = [_eligible(tool, table[tool], ctx, models, notes) for tool in offered]
    ranked = _by_coverage(lists)
    reason = (
        f"offered tools {', '.join(offered)}: experts {', '.join(ranked)}" if ranked else None
    )
    return ExpertChoice(ranked, "offered", tuple(offered), reason, tuple(notes))


def _by_coverage(lists: list[tuple[str, ...]]) -> tuple[str, ...]:
    """Union of the lists: experts for more of the offered tools first, then by best position,
    then by the order the tools were offered. The request may call any offered tool, so a model
    that is expert for several of them is the safest bet; the tie-breaks keep it deterministic."""
    stats: dict[str, tuple[int, int, int]] = {}
    for tool_index, names in enumerate(lists):
        for position, model in enumerate(names):
            count, best, first = stats.get(model, (0, position, tool_index))
            stats[model] = (count + 1, min(best, position), min(first, tool_index))
    return tuple(sorted(stats, key=lambda m: (-stats[m][0], stats[m][1], stats[m][2])))


def _eligible(
    tool: str,
    spec: ExpertSpec,
    ctx: RequestContext,
    models: Mapping[str, ModelInfo] | None,
    notes: list[str],
) -> tuple[str, ...]:
    """The tool's experts that meet the expert's own constraints (a filter, never a rejection)."""
    constraints = spec.constraints.to_constraints()
    kept = []
    for name in spec.models:
        info = models.get(name) if models is not None else None
        why = _violations(name, info, constraints, ctx)
        if why:
            notes.append(f"expert {name!r} for {tool!r} not preferred: {'; '.join(why)}")
        else:
            kept.append(name)
    return tuple(kept)


def _violations(name: str, info: ModelInfo | None, c: Constraints, ctx: RequestContext) -> list[str]:
    out = []
    if c.allowed_models is not None and name not in c.allowed_models:
        out.append("not in the expert's allowed_models")
    if name in c.blocked_models:
        out.append("in the expert's blocked_models")
    if info is None:  # no catalog: only name-based constraints can be checked here
        return out
    if c.allowed_providers is not None and info.provider not in c.allowed_providers:
        out.append(f"provider {info.provider!r} not allowed")
    if info.provider in c.blocked_providers:
        out.append(f"provider {info.provider!r} blocked")
    quality = info.domain_quality.get(ctx.domain, info.quality) if ctx.domain else info.quality
    if c.min_quality is not None and quality < c.min_quality:
        out.append(f"quality {quality:g} < min_quality {c.min_quality:g}")
    missing = sorted(cap for cap in c.required_capabilities if not info.supports(cap))
    if missing:
        out.append(f"lacks {', '.join(missing)}")
    out_tokens = ctx.max_output_tokens or min(ASSUMED_OUTPUT_TOKENS, info.max_output_tokens)
    if c.max_cost_per_request_usd is not None:
        cost = ctx.input_tokens * info.input_cost_per_token + out_tokens * info.output_cost_per_token
        if cost > c.max_cost_per_request_usd:
            out.append(f"expected cost ${cost:.6f} > max ${c.max_cost_per_request_usd:g}")
    if c.max_latency_ms is not None:
        latency = info.ttft_ms + out_tokens / max(info.tokens_per_s, 1e-9) * 1000.0
        if latency > c.max_latency_ms:
            out.append(f"expected latency {latency:.0f} ms > max {c.max_latency_ms:g} ms")
    return out


class ResolutionMemo:
    """`resolve`, remembered per policy set for policies without experts.

    Without an experts table a resolution depends on the pipeline, the strategy header, the domain
    and whether the request is for embeddings alone (experts read the request's tools), and most
    requests share a handful of those; building the eleven-field result cost more than the lookup.
    Refusals (an unknown pipeline, a bad strategy) are raised every time, never remembered. A new
    policy set (a reload) starts afresh.
    """

    #: Header values are the client's: at most this many are kept (then the memory starts over).
    MAX = 256

    __slots__ = ("_known", "_policies")

    def __init__(self) -> None:
        self._policies: object = None
        self._known: dict[tuple, Resolution] = {}

    def __len__(self) -> int:
        return len(self._known)

    def resolve(self, policy_set: PolicySet, pipeline_id: str | None, header_strategy: str | None,
                ctx: RequestContext, allow_unknown_pipeline_fallback: bool = False,
                embedding: bool = False) -> Resolution:
        if self._policies is not policy_set:
            self._policies, self._known = policy_set, {}
        known = self._known
        key = (pipeline_id, header_strategy, ctx.domain, ctx.pipeline, embedding)
        resolution = known.get(key)
        if resolution is None:
            resolution = resolve(policy_set, pipeline_id, header_strategy, ctx, allow_unknown_pipeline_fallback,
                                 embedding)
            if not resolution.policy.experts:
                if len(known) >= self.MAX:
                    known.clear()
                known[key] = resolution
        return resolution
