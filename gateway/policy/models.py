"""The policy file format as pydantic models, and its conversion to `SelectionParams`.

Models check what one value (or one section) can know on its own: types, ranges, allowed names.
Checks that need the file name or the model catalog live in `validate.py`, so a policy can be
built and unit-tested without either.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, StrictBool, StrictInt, StrictStr, model_validator
from pydantic_core import PydanticCustomError

from gateway.policy.errors import InvalidStrategyError
from gateway.selection.types import Constraints, SelectionParams

__all__ = [
    "CAPABILITY_NAMES",
    "SCORERS",
    "STRATEGIES",
    "BudgetSpec",
    "ConstraintsSpec",
    "ExpertSpec",
    "ExplorationSpec",
    "Policy",
    "SelectionSchema",
    "TargetSpec",
    "Weights",
    "merge_constraints",
]

STRATEGIES = ("cost", "performance", "balanced", "custom")
SCORERS = ("cost", "quality", "latency", "reliability")
# What a policy may require of every candidate: the request-parameter capabilities
# (`multiple_choices`, `logprobs`) come from the request alone.
CAPABILITY_NAMES = ("tools", "vision", "json_schema", "streaming", "audio_input", "pdf_input")

Strategy = Literal["cost", "performance", "balanced", "custom"]
Capability = Literal["tools", "vision", "json_schema", "streaming", "audio_input", "pdf_input"]

#: The error type whose context names the field a cross-field check is really about, so the
#: loader can point at that key instead of the whole section.
AT_FIELD = "policy_at_field"

# Strict scalars: YAML already types its values, so "0.5" (quoted), `yes` for a number or
# `!!binary` for a name is a mistake to report, not to coerce. Strict floats still take ints.
# Finite floats only: an `inf` weight or cap would turn normalised scores into NaN downstream.
_NonNeg = Annotated[float, Strict(), Field(ge=0, allow_inf_nan=False)]
_Positive = Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)]
_Unit = Annotated[float, Strict(), Field(ge=0, le=1, allow_inf_nan=False)]
_Name = Annotated[str, Strict(), Field(min_length=1, max_length=200)]


def _at(field: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(AT_FIELD, message, {"field": field})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConstraintsSpec(_Strict):
    """Hard constraints: a model that breaks any of them is never chosen."""

    min_quality: _Unit | None = Field(
        None, description="Reject models whose quality score (0..1, from the catalog) is below this."
    )
    max_cost_per_request_usd: _Positive | None = Field(
        None, description="Reject models whose expected cost for this request exceeds this (USD)."
    )
    max_latency_ms: _Positive | None = Field(
        None, description="Reject models whose expected end-to-end latency exceeds this (ms)."
    )
    required_capabilities: tuple[Capability, ...] = Field(
        (), description="Capabilities every candidate must support: tools, vision, json_schema, streaming."
    )
    allowed_models: tuple[_Name, ...] | None = Field(
        None, description="If set, only these catalog deployments may be chosen."
    )
    blocked_models: tuple[_Name, ...] = Field((), description="Catalog deployments never chosen.")
    allowed_providers: tuple[_Name, ...] | None = Field(
        None, description="If set, only deployments of these providers (e.g. openai) may be chosen."
    )
    blocked_providers: tuple[_Name, ...] = Field((), description="Providers never chosen.")

    def to_constraints(self) -> Constraints:
        return Constraints(
            min_quality=self.min_quality,
            max_cost_per_request_usd=self.max_cost_per_request_usd,
            max_latency_ms=self.max_latency_ms,
            required_capabilities=frozenset(self.required_capabilities),
            allowed_models=None if self.allowed_models is None else frozenset(self.allowed_models),
            blocked_models=frozenset(self.blocked_models),
            allowed_providers=None if self.allowed_providers is None else frozenset(self.allowed_providers),
            blocked_providers=frozenset(self.blocked_providers),
        )


class Weights(_Strict):
    """Relative importance of each scorer for the `custom` strategy; a missing scorer weighs 0."""

    cost: _NonNeg = Field(0.0, description="Weight of the cost scorer (cheaper is better).")
    quality: _NonNeg = Field(0.0, description="Weight of the quality scorer (catalog/domain quality).")
    latency: _NonNeg = Field(0.0, description="Weight of the latency scorer (faster is better).")
    reliability: _NonNeg = Field(0.0, description="Weight of the reliability scorer (error rate, circuits).")

    @model_validator(mode="after")
    def _not_all_zero(self) -> Weights:
        if not any(getattr(self, s) for s in SCORERS):
            raise ValueError("weights must not all be zero; give at least one scorer a positive weight")
        return self

    def as_mapping(self) -> MappingProxyType[str, float]:
        return MappingProxyType({s: float(getattr(self, s)) for s in SCORERS})


class ExplorationSpec(_Strict):
    """How often to try a model other than the top-ranked one, so live stats stay fresh."""

    method: Literal["none", "ucb", "thompson"] = Field(
        "none", description="Exploration method: none (always the top-ranked model), ucb or thompson."
    )
    rate: _Unit = Field(
        0.0, description="Fraction of requests that may explore (epsilon), in [0, 1]."
    )
    top_k: StrictInt = Field(3, ge=1, le=1000, description="Explore only among the k best-ranked candidates.")


class BudgetSpec(_Strict):
    """Spend limits for the pipeline; enforced by the runtime from recorded spend."""

    daily_usd: _Positive | None = Field(None, description="Spend limit per UTC day, in USD.")
    monthly_usd: _Positive | None = Field(None, description="Spend limit per UTC calendar month, in USD.")
    soft_limit_ratio: Annotated[float, Strict()] = Field(
        0.8,
        gt=0,
        le=1,
        allow_inf_nan=False,
        description="Fraction of a limit at which the runtime starts warning/downgrading, in (0, 1].",
    )
    on_exceed: Literal["downgrade", "reject"] = Field(
        "downgrade",
        description="At the limit: downgrade (rank by cost) or reject (refuse further requests).",
    )

    @model_validator(mode="after")
    def _has_a_limit(self) -> BudgetSpec:
        if self.daily_usd is None and self.monthly_usd is None:
            raise ValueError("a budget needs daily_usd, monthly_usd or both")
        return self


class TargetSpec(_Strict):
    """An operating point stated as a share of the best eligible model: exactly one field."""

    quality_share: Annotated[float, Strict(), Field(gt=0, le=1, allow_inf_nan=False)] | None = Field(
        None,
        description="Reach at least this share of the best eligible model's quality (e.g. 0.95), as cheaply "
                    "as possible.",
    )
    max_cost_share: Annotated[float, Strict(), Field(gt=0, le=1, allow_inf_nan=False)] | None = Field(
        None, description="Spend at most this share of the best eligible model's cost, for the best quality it buys."
    )
    max_strong_share: _Unit | None = Field(
        None, description="Send at most this share of requests to the best eligible model (a traffic cap)."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> TargetSpec:
        given = [k for k in ("quality_share", "max_cost_share", "max_strong_share") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a target needs exactly one of quality_share, max_cost_share, max_strong_share"
                             + (f"; got {', '.join(given)}" if given else ""))
        return self

    def kind_value(self) -> tuple[str, float]:
        """("quality" | "cost" | "strong", share)."""
        if self.quality_share is not None:
            return "quality", float(self.quality_share)
        if self.max_cost_share is not None:
            return "cost", float(self.max_cost_share)
        return "strong", float(self.max_strong_share)  # type: ignore[arg-type]


class SelectionSchema(_Strict):
    """How requests of this pipeline are ranked."""

    strategy: Strategy = Field(
        "balanced", description="Ranking strategy: cost, performance, balanced or custom (uses weights)."
    )
    weights: Weights | None = Field(
        None,
        description="Scorer weights; required when strategy is custom (also used when a header asks for custom).",
    )
    constraints: ConstraintsSpec = Field(
        default_factory=ConstraintsSpec, description="Hard constraints applied to every candidate."
    )
    default_domain: _Name | None = Field(
        None, description="Domain (e.g. code, support) used for domain quality when the request names none."
    )
    allow_header_override: StrictBool = Field(
        True, description="Whether a request's strategy header may replace this policy's strategy."
    )
    exploration: ExplorationSpec = Field(
        default_factory=ExplorationSpec, description="Exploration of non-top candidates."
    )
    fallbacks: tuple[_Name, ...] = Field(
        (), description="Catalog deployments tried, in order, after the ranked candidates fail."
    )
    target: TargetSpec | None = Field(
        None,
        description="Operating point for strategy balanced, as a share of the best eligible model "
                    "(quality_share, max_cost_share or max_strong_share); mapped through the router model's "
                    "calibration table, or through the catalog's priors without one.",
    )

    @model_validator(mode="after")
    def _custom_needs_weights(self) -> SelectionSchema:
        if self.strategy == "custom" and self.weights is None:
            raise _at("strategy", "strategy 'custom' requires a `weights` section")
        if self.target is not None and self.strategy != "balanced":
            raise _at("target", f"a target applies to strategy 'balanced', not {self.strategy!r}")
        return self


class ExpertSpec(_Strict):
    """Models preferred when a tool is in play; a bare list is shorthand for `{models: [...]}`."""

    models: tuple[_Name, ...] = Field(
        min_length=1, description="Catalog deployments preferred for this tool, best first."
    )
    constraints: ConstraintsSpec = Field(
        default_factory=ConstraintsSpec,
        description="Extra constraints an expert must meet to be preferred (they never reject other models).",
    )

    @model_validator(mode="before")
    @classmethod
    def _list_shorthand(cls, data: Any) -> Any:
        return {"models": data} if isinstance(data, list | tuple) else data


class Policy(_Strict):
    """One policy file: the global default (`default.yaml`) or one pipeline (`<pipeline>.yaml`)."""

    pipeline: StrictStr = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
        description="Pipeline id; must equal the file name without extension (`default` for default.yaml).",
    )
    description: StrictStr | None = Field(None, description="Free text for humans.")
    selection_schema: SelectionSchema = Field(
        default_factory=SelectionSchema, description="Strategy, weights, constraints and runtime knobs."
    )
    experts: dict[_Name, ExpertSpec] = Field(
        default_factory=dict,
        description="Tool name -> models preferred when that tool is forced, just returned, or offered.",
    )
    budget: BudgetSpec | None = Field(None, description="Spend limits for this pipeline.")
    domain_examples: dict[_Name, tuple[StrictStr, ...]] = Field(
        default_factory=dict,
        description=(
            "Domain -> example prompts, for domains of your own. The gateway ships a domain model for "
            "code, math, reasoning, writing, chat and extraction; the examples of every loaded policy "
            "teach it the domains it does not know. It labels requests that name no domain (no "
            "X-Task-Domain header and no default_domain); the label selects the catalog's "
            "domain_quality scores."
        ),
    )

    def selection_params(
        self,
        strategy_override: str | None = None,
        preferred: tuple[str, ...] = (),
        preferred_reason: str | None = None,
        *,
        extra_constraints: Constraints | None = None,
    ) -> SelectionParams:
        """Params for one request; `extra_constraints` (e.g. per request) tighten the policy's."""
        sel = self.selection_schema
        strategy = sel.strategy if strategy_override is None else strategy_override
        if strategy not in STRATEGIES:
            raise InvalidStrategyError(
                f"unknown strategy {strategy!r}; allowed: {', '.join(STRATEGIES)}"
            )
        if strategy == "custom" and sel.weights is None:
            raise InvalidStrategyError(
                f"strategy 'custom' needs weights, and policy {self.pipeline!r} defines none"
            )
        constraints = sel.constraints.to_constraints()
        if extra_constraints is not None:
            constraints = merge_constraints(constraints, extra_constraints)
        return SelectionParams(
            strategy=strategy,
            weights=sel.weights.as_mapping() if sel.weights is not None else MappingProxyType({}),
            constraints=constraints,
            preferred=tuple(preferred),
            preferred_reason=preferred_reason,
        )


def _tighter(a: float | None, b: float | None, pick: Any) -> float | None:
    if a is None:
        return b
    return a if b is None else pick(a, b)


def _intersect(a: frozenset[str] | None, b: frozenset[str] | None) -> frozenset[str] | None:
    if a is None:
        return b
    return a if b is None else a & b


def merge_constraints(a: Constraints, b: Constraints) -> Constraints:
    """Both sets at once: the stricter bound wins, allow-lists intersect, block-lists add up."""
    return Constraints(
        min_quality=_tighter(a.min_quality, b.min_quality, max),
        max_cost_per_request_usd=_tighter(a.max_cost_per_request_usd, b.max_cost_per_request_usd, min),
        max_latency_ms=_tighter(a.max_latency_ms, b.max_latency_ms, min),
        required_capabilities=a.required_capabilities | b.required_capabilities,
        allowed_models=_intersect(a.allowed_models, b.allowed_models),
        blocked_models=a.blocked_models | b.blocked_models,
        allowed_providers=_intersect(a.allowed_providers, b.allowed_providers),
        blocked_providers=a.blocked_providers | b.blocked_providers,
    )
