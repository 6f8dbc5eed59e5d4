"""The decision for one request: which deployments to try, in which order, and why.

Request context in, ranked candidates with reasons out. The `model` field either pins a catalog
deployment or names a router alias (`auto`), which hands the choice to the selection engine under
the parameters the policy layer resolves (header strategy, pipeline policy, experts, default).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import random
import re

from gateway import errors
from gateway._frozen import builder
from gateway.core._attempts import attempt_order
from gateway.core.budgets import check_budget
from gateway.catalog import Catalog, ResolvedDeployment
from gateway.core.context import build_context
from gateway.core._ranking_memo import RankingMemo
from gateway.core.embeddings import batch_tokens, build_embedding_context, dimension_misfit
from gateway.core.exploration import explore
from gateway.core.params import OPENAI_WIRE_ONLY
from gateway.learning import RouterModel, SparseFeatures, TargetPlanner, header_domain, known_domains, messages_text
from gateway.policy import PolicySet, Resolution, ResolutionMemo
from gateway.selection.strategies import SelectionParamsError
from gateway.selection.types import LiveStats, ModelInfo, Ranking, Rejection, RequestContext, with_domain
from gateway.upstream.adapt import adapt
from gateway.upstream.operation import CHAT, EMBEDDINGS, Operation

__all__ = ["Decider", "Decision"]


@dataclass(frozen=True, slots=True)
class Decision:
    ctx: RequestContext
    ranking: Ranking
    candidates: Sequence[ResolvedDeployment]  # the order attempts follow (core/_attempts.py)
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


_new_decision = builder(Decision)  # Decision(...) without a setattr call per field (gateway/_frozen.py)


class Decider:
    """Turns a validated body and its headers into a `Decision`. Holds no per-request state."""

    def __init__(
        self,
        catalog: Catalog,
        engine: Any,
        policies: Callable[[], PolicySet],
        live: Callable[[str | None], Mapping[str, LiveStats]] = lambda pipeline: {},
        spend: Callable[[], Mapping[str, Any]] = lambda: {},
        *,
        allow_unknown_pipeline: bool = False,
        rng: random.Random | None = None,
        router: RouterModel | Callable[[], RouterModel | None] | None = None,
        domain_min_confidence: float = 0.5,
        keep_features: Callable[[], bool] | None = None,
    ) -> None:
        self._catalog = catalog
        self._engine = engine
        self._models = catalog.models
        self._embedding_models = catalog.models_for(EMBEDDINGS.mode)
        # dimensions -> (the embedding models that can return them, the rest rejected); a handful
        # of sizes cover the traffic, and the ranking's prepared catalog is cached per tuple.
        self._by_dimensions: dict[int | None, tuple[tuple[ModelInfo, ...], tuple[Rejection, ...]]] = {}
        self._policies = policies  # returns the current immutable set (hot reload swaps it)
        self._live = live  # pipeline -> the current stats snapshot as it ranks with it, without awaiting
        self._spend = spend  # returns pipeline -> SpendTotals from the last refresh
        self._allow_unknown = allow_unknown_pipeline
        self._rng = rng or random.Random()
        # A trained router model (`gateway eval --save-model`) wins over the policies' examples;
        # given as a callable, it is read per request (a reloaded model file replaces it).
        self._router = router if router is None or callable(router) else (lambda: router)
        self._min_confidence = domain_min_confidence
        # Whether a Decision keeps the prompt's features (for a learner that reads them at feedback
        # time); None: always. A stream holds its Decision for as long as it runs.
        self._keep_features = keep_features
        self._known: tuple[RouterModel | None, tuple[str, ...]] = (None, ())
        self._targets = TargetPlanner(catalog.models)  # quality targets / learned default (hook below)
        self._domains: tuple[object, frozenset[str]] = (None, frozenset())
        self._memo = RankingMemo()  # same request shape, same live stats and params: same ranking
        self._resolutions = ResolutionMemo()  # same pipeline, strategy header and domain: same resolution
        # Whether any deployment has provider parameter rules: without, no request needs a look at each.
        self._adapting = any(d.params is not None for d in catalog.deployments.values())

    @property
    def router(self) -> RouterModel | None:
        """The trained router model in use, if any."""
        return self._router() if self._router is not None else None

    @property
    def engine(self) -> Any:
        return self._engine

    def valid_names(self) -> list[str]:
        return [*self._catalog.aliases, *self._catalog.deployments]

    def decide(
        self, body: Mapping[str, Any], headers: Mapping[str, str], request_id: str, *, explain: bool = False,
        operation: Operation = CHAT,
    ) -> Decision:
        """Rank candidates; with `explain`, an empty ranking is returned instead of raising.

        `operation` says which deployments may serve: chat ones for chat completions, responses
        and messages; embedding ones for embeddings. The two sets never mix.
        """
        model = body["model"]
        deployments = self._catalog.deployments
        pinned = model if model in deployments else None
        if pinned is None and model not in self._catalog.aliases:
            raise errors.NotFoundError(
                f"The model '{model[:100]}' does not exist. Valid models: {', '.join(self.valid_names())}.",
                param="model",
                code="model_not_found",
            )
        if pinned is not None and deployments[pinned].info.mode != operation.mode:
            raise _wrong_mode(deployments[pinned].info, operation)
        pipeline = headers.get("x-pipeline-id") or None
        domain, domain_note = _domain_header(headers.get("x-task-domain")), None
        if domain:
            domain, domain_note = header_domain(domain, self._known_domains())
        embedding = operation is EMBEDDINGS
        ctx = (build_embedding_context if embedding else build_context)(
            body, request_id=request_id, pinned_model=pinned, domain=domain, pipeline=pipeline,
            domain_source="header" if domain else None,
        )
        # Resolving validates the strategy header and the pipeline id even for a pinned model.
        resolution = self._resolutions.resolve(self._policies(), pipeline, headers.get("x-selection-strategy"), ctx,
                                               self._allow_unknown)
        # Hook (gateway/learning/planner.py): X-Quality-Target is validated here, pinned or not.
        target, target_note = self._targets.target(headers, resolution)
        if ctx.domain is None and resolution.domain is not None:
            ctx = with_domain(ctx, resolution.domain, "policy")
        features, inferred_note = None, None
        router = None if pinned is not None or embedding else (self.router or self._policies().domain_router)
        if router is not None:
            ctx, features, inferred_note = self._learned(router, ctx, body, explain)
            if self._keep_features is not None and not self._keep_features():
                features = None
        live = self._live(resolution.policy_name)
        budget = check_budget(resolution.policy_name, resolution.budget, self._spend().get(resolution.policy_name))
        if pinned is not None:
            if embedding and (misfit := dimension_misfit(deployments[pinned].info, body.get("dimensions"))):
                raise errors.NoFeasibleModelError(
                    f"The model '{pinned}' cannot serve this request: {misfit}.", rejected=((pinned, (misfit,)),)
                )
            ranking = self._pinned(deployments[pinned].info, ctx, resolution, live, explain)
            strategy = source = "pinned"
            if budget.note:
                ranking = replace(ranking, notes=(*ranking.notes, budget.note + " (not applied: the request named a deployment)"))
        else:
            params, source = resolution.params, resolution.strategy_source
            if budget.downgrade and params.strategy != "cost":
                params, source = replace(params, strategy="cost"), "budget"
            strategy = params.strategy
            if embedding:  # quality targets and operating points are about answers, not vectors
                (models, misfits), finish_target = self._embedding_set(body.get("dimensions")), _same
            else:
                # Hook (gateway/learning/planner.py): a quality target or the learned default operating point.
                params, finish_target = self._targets.apply(target, params, ctx, self.router, request_id,
                                                            record=not explain)
                models, misfits = self._models, ()
            try:
                # Explanations for every candidate only when someone will read them.
                if explain:
                    ranking = self._engine.rank(ctx, models, params, live, detail=None)
                else:
                    ranking = self._memo.rank(self._engine.rank, ctx, models, params, live, 3)
            except SelectionParamsError as exc:
                raise errors.InvalidRequestError(str(exc), param="strategy", code="invalid_strategy") from None
            ranking = finish_target(ranking)
            if misfits:
                ranking = replace(ranking, rejected=(*ranking.rejected, *misfits))
            extra = tuple(n for n in (domain_note, inferred_note, budget.note, target_note) if n)
            if extra:
                ranking = ranking.noted(*extra)
            ex = resolution.exploration
            if not explain:
                ranking = explore(ranking, ex.method, ex.rate, ex.top_k, live, self._rng)
                if half_open := self._memo.half_open(live):
                    ranking = _probe_half_open(ranking, half_open)
        if not ranking.ranked and not explain:
            raise errors.NoFeasibleModelError.listing(ranking.rejected)
        candidates = self._memo.attempt_order(ranking.ranked, resolution.fallbacks, deployments,
                                              lambda: attempt_order(ranking, resolution.fallbacks, deployments))
        if embedding:
            candidates, ranking = _same_dimensions(candidates, ranking, body.get("dimensions"))
            # Selection bounds the longest input (the model's window is per input); budgets and
            # rate limits count the whole batch, as the provider bills it.
            ctx = replace(ctx, input_tokens=batch_tokens(body))
        else:
            if not OPENAI_WIRE_ONLY.isdisjoint(body):
                ranking = _wire_only_note(ranking, body, candidates)
            if self._adapting and (adapted := _adaptations(candidates, body)):
                ranking = ranking.noted(*adapted)
        return _new_decision(ctx, ranking, candidates, strategy, source, pipeline, resolution, features)

    def _embedding_set(self, dimensions: int | None) -> tuple[tuple[ModelInfo, ...], tuple[Rejection, ...]]:
        """The embedding models that can return vectors of `dimensions`, and the others rejected."""
        entry = self._by_dimensions.get(dimensions)
        if entry is None:
            fit, misfits = [], []
            for info in self._embedding_models:
                why = dimension_misfit(info, dimensions)
                if why is None:
                    fit.append(info)
                else:
                    misfits.append(Rejection(info.name, (why,)))
            entry = (tuple(fit), tuple(misfits))
            if len(self._by_dimensions) < 64:  # a client cycling through sizes must not grow it
                self._by_dimensions[dimensions] = entry
        return entry

    def _pinned(
        self, info: ModelInfo, ctx: RequestContext, resolution: Resolution, live: Mapping[str, LiveStats],
        explain: bool,
    ) -> Ranking:
        """A named deployment, held to the caller's policy and to the request's needs like `auto`."""
        stats = live.get(info.name)
        policy_why, request_why = self._engine.check_pinned(info, ctx, resolution.params.constraints, stats)
        if not policy_why and not request_why:
            return self._engine.pinned_ranking(info, ctx, stats)
        if explain:
            reasons = tuple(f"policy {resolution.policy_name!r}: {r}" for r in policy_why) + request_why
            return Ranking("pinned", (), (Rejection(info.name, reasons),), ())
        if policy_why:
            raise errors.PermissionDeniedError(
                f"The model '{info.name}' is not allowed by the policy of pipeline '{resolution.policy_name}': "
                f"{'; '.join(policy_why)}.",
                param="model", code="model_not_allowed",
            )
        raise errors.NoFeasibleModelError(
            f"The model '{info.name}' cannot serve this request: {'; '.join(request_why)}.",
            rejected=((info.name, request_why),),
        )

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
            ctx = with_domain(ctx, est.domain if confident else None, "inferred" if confident else None)
        if est.quality_estimates:
            ctx = replace(ctx, quality_estimates=est.quality_estimates, quality_explanations=est.explanations)
        return ctx, est.features, note

    def _known_domains(self) -> frozenset[str]:
        """Domain names something knows (cached per policy set: a reload can add some)."""
        policies, router = self._policies(), self.router  # a reloaded router model can add some too
        seen, names = self._domains
        if not (isinstance(seen, tuple) and seen[0] is policies and seen[1] is router):
            router = router or policies.domain_router
            classes = router.classifier.classes if router is not None and router.classifier is not None else ()
            named = [d for p in (policies.default, *policies.pipelines.values())
                     for d in (*p.domain_examples, p.selection_schema.default_domain) if d]
            names = known_domains((m.domain_quality for m in self._models), named, classes)
            self._domains = ((policies, self.router), names)
        return names

    def _known_models(self, router: RouterModel) -> tuple[str, ...]:
        """Catalog models the router's quality model has learned about (cached per router)."""
        seen, names = self._known
        if seen is not router:
            learned = set(router.quality.models) if router.quality is not None else set()
            names = tuple(n for n in self._catalog.deployments if n in learned)
            self._known = (router, names)
        return names


def _same(ranking: Ranking) -> Ranking:
    return ranking


_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


def _domain_header(value: str | None) -> str | None:
    """X-Task-Domain, case-folded (`CODE` is `code`); refused when it cannot be a domain name."""
    if not value or not value.strip():
        return None
    domain = value.strip().lower()
    if not _DOMAIN.match(domain):
        raise errors.InvalidRequestError(
            "X-Task-Domain must be a domain name such as 'code' or 'math' (letters, digits, '_', '.', '-').",
            param="x-task-domain", code="invalid_domain",
        )
    return domain


def _probe_half_open(ranking: Ranking, half_open: frozenset[str]) -> Ranking:
    """Send a half-open deployment its probe: it goes first, still followed by the ranking.

    Its live error rate keeps it low in the ranking, so without this it would never be tried and
    its circuit would never close. The forwarder's `admit` lets exactly one request through
    (shared across replicas); every other request skips it and moves on down the list.
    """
    ranked = ranking.ranked
    for i, cand in enumerate(ranked):
        if i and cand.model.name in half_open:
            note = f"probe: {cand.model.name} is half-open after its cool-down; trying it first"
            return replace(ranking, ranked=(cand, *ranked[:i], *ranked[i + 1:]), notes=(*ranking.notes, note))
    return ranking


def _wrong_mode(info: ModelInfo, operation: Operation) -> errors.InvalidRequestError:
    served_by = "POST /v1/embeddings" if info.mode == EMBEDDINGS.mode else (
        "POST /v1/chat/completions, /v1/responses or /v1/messages")
    return errors.InvalidRequestError(
        f"The model '{info.name}' is {'an embedding' if info.mode == EMBEDDINGS.mode else 'a chat'} model and "
        f"cannot serve {operation.name}; it is served by {served_by}.",
        param="model", code="model_not_supported",
    )


def _same_dimensions(
    candidates: tuple[ResolvedDeployment, ...], ranking: Ranking, dimensions: int | None
) -> tuple[tuple[ResolvedDeployment, ...], Ranking]:
    """Without `dimensions`, fallbacks keep the winner's native size: one request never gets
    vectors of another size from a fallback than its first choice would have returned."""
    if dimensions is not None or len(candidates) < 2:
        return candidates, ranking
    size = candidates[0].info.dimensions
    kept = tuple(d for d in candidates if d.info.dimensions == size)
    if len(kept) == len(candidates):
        return candidates, ranking
    note = f"fallbacks keep the winner's {size} dimensions; send 'dimensions' to choose a size"
    return kept, ranking.noted(note)


def _wire_only_note(ranking: Ranking, body: Mapping[str, Any], candidates: tuple[ResolvedDeployment, ...]) -> Ranking:
    """Say which parameters a litellm deployment among the candidates will not receive."""
    dropped = sorted(OPENAI_WIRE_ONLY.intersection(body))
    names = [d.name for d in candidates if d.transport == "litellm"]
    if not names:
        return ranking
    note = f"{', '.join(dropped)}: not forwarded to {', '.join(names)} (litellm transport; see docs/api.md)"
    return ranking.noted(note)


def _adaptations(candidates: tuple[ResolvedDeployment, ...], body: Mapping[str, Any]) -> tuple[str, ...]:
    """What each candidate's provider will get changed in the body (gateway/upstream/adapt.py)."""
    out: list[str] = []
    for dep in candidates:
        if dep.params is None:
            continue
        sent = body
        if dep.transport == "litellm" and not OPENAI_WIRE_ONLY.isdisjoint(body):
            sent = {k: v for k, v in body.items() if k not in OPENAI_WIRE_ONLY}  # the note above covers them
        out += [f"{dep.name}: {note}" for note in adapt(sent, dep.params)[1]]
    return tuple(out)

