"""The decision for one request: which deployments to try, in which order, and why.

Request context in, ranked candidates with reasons out. The `model` field either pins a catalog
deployment or names a router alias (`auto`), which hands the choice to the selection engine under
the parameters the policy layer resolves (header strategy, pipeline policy, experts, default).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import random

from gateway import errors
from gateway.core.budgets import check_budget
from gateway.catalog import Catalog, ResolvedDeployment
from gateway.core.context import build_context
from gateway.core.exploration import explore
from gateway.learning import RouterModel, SparseFeatures, header_domain, known_domains, messages_text
from gateway.policy import PolicySet, Resolution, resolve
from gateway.selection.strategies import SelectionParamsError
from gateway.selection.types import LiveStats, Ranking, RequestContext

__all__ = ["Decider", "Decision"]


@dataclass(frozen=True, slots=True)
class Decision:
    ctx: RequestContext
    ranking: Ranking
    candidates: tuple[ResolvedDeployment, ...]  # the order attempts follow
    strategy: str
    strategy_source: str  # pinned | header | pipeline | default
    pipeline: str | None
    resolution: Resolution | None = None
    features: SparseFeatures | None = None  # the prompt's features, kept for feedback

    @property
    def budget_key(self) -> str:
        """The pipeline whose spend this request counts against ("default" without a pipeline)."""
        return self.resolution.policy_name if self.resolution else (self.pipeline or "default")

    @property
    def notes(self) -> tuple[str, ...]:
        extra = self.resolution.notes + self.resolution.experts.notes if self.resolution else ()
        return extra + self.ranking.notes


class Decider:
    """Turns a validated body and its headers into a `Decision`. Holds no per-request state."""

    def __init__(
        self,
        catalog: Catalog,
        engine: Any,
        policies: Callable[[], PolicySet],
        live: Callable[[], Mapping[str, LiveStats]] = lambda: {},
        spend: Callable[[], Mapping[str, Any]] = lambda: {},
        *,
        allow_unknown_pipeline: bool = False,
        rng: random.Random | None = None,
        router: RouterModel | None = None,
        domain_min_confidence: float = 0.5,
    ) -> None:
        self._catalog = catalog
        self._engine = engine
        self._models = catalog.models
        self._policies = policies  # returns the current immutable set (hot reload swaps it)
        self._live = live  # returns the current stats snapshot without awaiting
        self._spend = spend  # returns pipeline -> SpendTotals from the last refresh
        self._allow_unknown = allow_unknown_pipeline
        self._rng = rng or random.Random()
        # A trained router model (`gateway eval --save-model`) wins over the policies' examples.
        self._router = router
        self._min_confidence = domain_min_confidence
        self._known: tuple[RouterModel | None, tuple[str, ...]] = (None, ())
        self._domains: tuple[object, frozenset[str]] = (None, frozenset())

    def valid_names(self) -> list[str]:
        return [*self._catalog.aliases, *self._catalog.deployments]

    def decide(
        self, body: Mapping[str, Any], headers: Mapping[str, str], request_id: str, *, explain: bool = False
    ) -> Decision:
        """Rank candidates; with `explain`, an empty ranking is returned instead of raising."""
        model = body["model"]
        deployments = self._catalog.deployments
        pinned = model if model in deployments else None
        if pinned is None and model not in self._catalog.aliases:
            raise errors.NotFoundError(
                f"The model '{model[:100]}' does not exist. Valid models: {', '.join(self.valid_names())}.",
                param="model",
                code="model_not_found",
            )
        pipeline = headers.get("x-pipeline-id") or None
        domain, domain_note = headers.get("x-task-domain") or None, None
        if domain:
            domain, domain_note = header_domain(domain, self._known_domains())
        ctx = build_context(
            body, request_id=request_id, pinned_model=pinned, domain=domain, pipeline=pipeline,
            domain_source="header" if domain else None,
        )
        # Resolving validates the strategy header and the pipeline id even for a pinned model.
        resolution = resolve(
            self._policies(), pipeline, headers.get("x-selection-strategy"), ctx, self._allow_unknown
        )
        if ctx.domain is None and resolution.domain is not None:
            ctx = replace(ctx, domain=resolution.domain, domain_source="policy")
        features, inferred_note = None, None
        router = None if pinned is not None else (self._router or self._policies().domain_router)
        if router is not None:
            ctx, features, inferred_note = self._learned(router, ctx, body, explain)
        live = self._live()
        if pinned is not None:
            ranking = self._engine.pinned_ranking(deployments[pinned].info, ctx, live.get(pinned))
            strategy = source = "pinned"
        else:
            params, source = resolution.params, resolution.strategy_source
            budget = check_budget(resolution.policy_name, resolution.budget, self._spend().get(resolution.policy_name))
            if budget.downgrade and params.strategy != "cost":
                params, source = replace(params, strategy="cost"), "budget"
            strategy = params.strategy
            try:
                # Explanations for every candidate only when someone will read them.
                ranking = self._engine.rank(ctx, self._models, params, live, detail=None if explain else 3)
            except SelectionParamsError as exc:
                raise errors.InvalidRequestError(str(exc), param="strategy", code="invalid_strategy") from None
            extra = tuple(n for n in (domain_note, inferred_note, budget.note) if n)
            if extra:
                ranking = replace(ranking, notes=(*ranking.notes, *extra))
            ex = resolution.exploration
            if not explain:
                ranking = explore(ranking, ex.method, ex.rate, ex.top_k, live, self._rng)
                ranking = _probe_half_open(ranking, live)
        if not ranking.ranked and not explain:
            raise _no_feasible(ranking)
        candidates = _attempt_order(ranking, resolution.fallbacks, deployments)
        return Decision(ctx, ranking, candidates, strategy, source, pipeline, resolution, features)

    def _learned(
        self, router: RouterModel, ctx: RequestContext, body: Mapping[str, Any], explain: bool
    ) -> tuple[RequestContext, SparseFeatures, str | None]:
        """Infer the domain when none was given, and the router model's per-model quality."""
        est = router.estimate(
            messages_text(body["messages"]), self._known_models(router), domain=ctx.domain,
            domain_source=ctx.domain_source or "header", explain=explain,
        )
        note = None
        if est.domain_source == "inferred":
            confident = est.domain_confidence is not None and est.domain_confidence >= self._min_confidence
            note = (f"domain inferred from the prompt: {est.domain} (p={est.domain_confidence:.2f})"
                    if confident else
                    f"domain not inferred: best guess {est.domain} (p={est.domain_confidence:.2f}) "
                    f"< {self._min_confidence:g}")
            ctx = replace(ctx, domain=est.domain if confident else None,
                          domain_source="inferred" if confident else None)
        if est.quality_estimates:
            ctx = replace(ctx, quality_estimates=est.quality_estimates, quality_explanations=est.explanations)
        return ctx, est.features, note

    def _known_domains(self) -> frozenset[str]:
        """Domain names something knows (cached per policy set: a reload can add some)."""
        policies = self._policies()
        seen, names = self._domains
        if seen is not policies:
            router = self._router or policies.domain_router
            classes = router.classifier.classes if router is not None and router.classifier is not None else ()
            named = [d for p in (policies.default, *policies.pipelines.values())
                     for d in (*p.domain_examples, p.selection_schema.default_domain) if d]
            names = known_domains((m.domain_quality for m in self._models), named, classes)
            self._domains = (policies, names)
        return names

    def _known_models(self, router: RouterModel) -> tuple[str, ...]:
        """Catalog models the router's quality model has learned about (cached per router)."""
        seen, names = self._known
        if seen is not router:
            learned = set(router.quality.models) if router.quality is not None else set()
            names = tuple(n for n in self._catalog.deployments if n in learned)
            self._known = (router, names)
        return names


def _probe_half_open(ranking: Ranking, live: Mapping[str, LiveStats]) -> Ranking:
    """Send a half-open deployment its probe: it goes first, still followed by the ranking.

    Its live error rate keeps it low in the ranking, so without this it would never be tried and
    its circuit would never close. The forwarder's `admit` lets exactly one request through
    (shared across replicas); every other request skips it and moves on down the list.
    """
    ranked = ranking.ranked
    for i, cand in enumerate(ranked):
        s = live.get(cand.model.name)
        if i and s is not None and s.circuit_state == "half_open" and not s.circuit_open:
            note = f"probe: {cand.model.name} is half-open after its cool-down; trying it first"
            return replace(ranking, ranked=(cand, *ranked[:i], *ranked[i + 1:]), notes=(*ranking.notes, note))
    return ranking


def _attempt_order(
    ranking: Ranking, fallbacks: tuple[str, ...], deployments: Mapping[str, ResolvedDeployment]
) -> tuple[ResolvedDeployment, ...]:
    """The winner, then the policy's fallbacks that are feasible, then the rest of the ranking.

    Fallbacks never resurrect a rejected model: whatever broke a hard constraint would break again.
    """
    ranked = [c.model.name for c in ranking.ranked]
    feasible = set(ranked)
    order = ranked[:1] + [f for f in fallbacks if f in feasible and f not in ranked[:1]]
    order += [name for name in ranked if name not in order]
    return tuple(deployments[name] for name in order)


def _no_feasible(ranking: Ranking) -> errors.NoFeasibleModelError:
    parts = [f"{r.model}: {'; '.join(r.reasons)}" for r in ranking.rejected]
    return errors.NoFeasibleModelError(
        "No model satisfies this request's constraints. " + " | ".join(parts),
        rejected=((r.model, r.reasons) for r in ranking.rejected),
    )
