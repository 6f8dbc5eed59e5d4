"""The decision for one request: which deployments to try, in which order, and why.

Request context in, ranked candidates with reasons out. The `model` field either pins a catalog
deployment or names a router alias (`auto`), which hands the choice to the selection engine under
the parameters the policy layer resolves (header strategy, pipeline policy, experts, default).
"""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from gateway import errors
from gateway._frozen import builder
from gateway.core._attempts import attempt_order
from gateway.core._decision_steps import (
    adaptations,
    domain_header,
    probe_half_open,
    same_dimensions,
    unchanged,
    wire_only_note,
    wrong_mode,
)
from gateway.core.budgets import check_budget
from gateway.catalog import Catalog, ResolvedDeployment
from gateway.core.context import build_context
from gateway.core.tokens import count_from
from gateway.core._ranking_memo import DIFFERENT, FILL, SAME, RankingMemo
from gateway.core._router_step import RouterStep
from gateway.core.embeddings import batch_tokens, context_builder as embedding_context_builder, dimension_misfit
from gateway.core.exploration import explore
from gateway.core.params import OPENAI_WIRE_ONLY
from gateway.learning import RouterModel, SparseFeatures, TargetPlanner, header_domain, known_domains, messages_text
from gateway.policy import PolicySet, Resolution, ResolutionMemo
from gateway.selection import SelectionParams
from gateway.selection.strategies import SelectionParamsError
from gateway.selection.types import LiveStats, ModelInfo, Ranking, Rejection, RequestContext, with_domain
from gateway.upstream.adapt import has_mark
from gateway.upstream.operation import CHAT, EMBEDDINGS, Operation

__all__ = ["Decider", "Decision", "settled"]

log = logging.getLogger("gateway")


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
    #: Set when the domain inference waits for the upstream call (`Decider._later`): returns the
    #: final decision, with the same winner. Run it through `settled`.
    settle: Callable[[], Decision] | None = None

    @property
    def budget_key(self) -> str:
        """The pipeline whose spend this request counts against ("default" without a pipeline)."""
        return self.resolution.policy_name if self.resolution else (self.pipeline or "default")

    @property
    def notes(self) -> tuple[str, ...]:
        extra = self.resolution.notes if self.resolution else ()  # the experts' notes among them
        return extra + self.ranking.notes


_new_decision = builder(Decision)  # Decision(...) without a setattr call per field (gateway/_frozen.py)


def settled(decision: Decision) -> Decision:
    """The final decision: `decision` itself, or what its `settle` returns. A failure there is
    logged and the decision kept as it is: the request went where it should, only its record
    lacks the inferred domain."""
    settle = decision.settle
    if settle is None:
        return decision
    try:
        final = settle()
    except Exception:  # noqa: BLE001 - the call is already on its way; its record is what is at stake
        log.exception("settling the decision of %s failed", decision.ctx.request_id)
        return replace(decision, settle=None)
    if final.candidates[0].name != decision.candidates[0].name:  # `RankingMemo.same_winner` said it could not
        log.error("the settled decision of %s has another winner", decision.ctx.request_id)
    return final


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
        defer_domain: bool = True,
        stats_refresh_s: float = 0.25,
    ) -> None:
        self._catalog = catalog
        self._engine = engine
        self._models = catalog.models
        self._embedding_models = catalog.models_for(EMBEDDINGS.mode)
        # Each counts an input near its smallest window (`CountFirst`).
        self._chat_context = functools.partial(build_context, exact_from=count_from(catalog.models_for(CHAT.mode)))
        self._embedding_context = embedding_context_builder(self._embedding_models)
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
        self._router_step = RouterStep(catalog, domain_min_confidence, keep_features)
        # Whether the domain inference may wait for the upstream call (`_later`); off, it always
        # runs first (the benchmarks' and tests' comparison).
        self._defer = defer_domain
        self._inferable: tuple[Any, ...] = (None, None, None, (None,))  # router, models, live -> domains
        self._targets = TargetPlanner(catalog.models)  # quality targets / learned default (hook below)
        self._domains: tuple[object, frozenset[str]] = (None, frozenset())
        # Same request shape, same live stats and params: same ranking. A shape that filled its
        # rankings within a few refreshes keeps coming (`RankingMemo.same_winner`).
        self._memo = RankingMemo(recurring_s=max(2.0, 4 * stats_refresh_s))
        self._resolutions = ResolutionMemo()  # same pipeline, strategy header and domain: same resolution
        # Whether any deployment has provider parameter rules: without, no request needs a look at
        # each. Rules that only remove cache marks need one only for a body that has some.
        rules = [d.params for d in catalog.deployments.values() if d.params is not None]
        self._adapting = any(not r.marks_only for r in rules)
        self._unmarking = any(r.drop_cache_control for r in rules)

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
        operation: Operation = CHAT, counted: int | None = None,
    ) -> Decision:
        """Rank candidates; with `explain`, an empty ranking is returned instead of raising.

        `operation` says which deployments may serve: chat ones for chat completions, responses
        and messages; embedding ones for embeddings. The two sets never mix.

        Raises `CountFirst` (before anything else is done) when the input's estimate is too near a
        context window to decide on: count it off the event loop and call again with `counted`.
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
            raise wrong_mode(deployments[pinned].info, operation)
        pipeline = headers.get("x-pipeline-id") or None
        domain, domain_note = domain_header(headers.get("x-task-domain")), None
        if domain:
            domain, domain_note = header_domain(domain, self.known_domains())
        embedding = operation is EMBEDDINGS
        ctx = (self._embedding_context if embedding else self._chat_context)(
            body, request_id=request_id, pinned_model=pinned, domain=domain, pipeline=pipeline,
            domain_source="header" if domain else None, counted=counted,
        )
        # Resolving validates the strategy header and the pipeline id even for a pinned model.
        resolution = self._resolutions.resolve(self._policies(), pipeline, headers.get("x-selection-strategy"), ctx,
                                               self._allow_unknown, embedding)
        # Hook (gateway/learning/planner.py): X-Quality-Target is validated here, pinned or not.
        target, target_note = self._targets.target(headers, resolution)
        if ctx.domain is None and resolution.domain is not None:
            ctx = with_domain(ctx, resolution.domain, "policy")
        features, inferred_note = None, None
        router = None if pinned is not None or embedding else (self.router or self._policies().domain_router)
        # The domain inference may wait for the upstream call (see `_later`) when nothing before the
        # call reads more of it than the domain: a model that estimates quality per prompt, a quality
        # target and a random exploration step do.
        ex = resolution.exploration
        later = (router is not None and self._defer and not explain and ctx.domain is None and target is None
                 and router.quality is None and (ex.rate <= 0 or ex.method == "none"))
        if router is not None and not later and self._router_step.read(router, ctx):
            ctx, features, inferred_note = self._router_step.apply(router, ctx, messages_text(body["messages"]),
                                                                   explain)
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
            if not ranking.ranked and not explain:
                raise errors.NoFeasibleModelError.listing(ranking.rejected)
            return self._final(ctx, ranking, body, embedding, strategy, source, pipeline, resolution, features)
        params, source = resolution.params, resolution.strategy_source
        if budget.downgrade and params.strategy != "cost":
            params, source = replace(params, strategy="cost"), "budget"
        strategy = params.strategy
        if embedding:  # quality targets and operating points are about answers, not vectors
            (models, misfits), finish_target = self._embedding_set(body.get("dimensions")), unchanged
        else:
            # Hook (gateway/learning/planner.py): a quality target or the learned default operating point.
            params, finish_target = self._targets.apply(target, params, ctx, self.router, request_id,
                                                        record=not explain)
            models, misfits = self._models, ()
        auto = (body, models, misfits, params, finish_target, live, resolution, explain, embedding,
                (domain_note, budget.note, target_note), strategy, source, pipeline)
        if later:
            return self._later(auto, router, ctx, messages_text(body["messages"]))  # type: ignore[arg-type]
        return self._auto(*auto, ctx, features, inferred_note)

    def _auto(
        self, body: Mapping[str, Any], models: Sequence[ModelInfo], misfits: tuple[Rejection, ...],
        params: SelectionParams, finish_target: Callable[[Ranking], Ranking], live: Mapping[str, LiveStats],
        resolution: Resolution, explain: bool, embedding: bool, notes: tuple[str | None, str | None, str | None],
        strategy: str, source: str, pipeline: str | None,
        ctx: RequestContext, features: SparseFeatures | None, inferred_note: str | None,
    ) -> Decision:
        """The decision for a router alias (`auto`): ranked, noted, explored, in attempt order."""
        try:
            # Explanations for every candidate only when someone will read them.
            if explain:
                ranking = self._engine.rank(ctx, models, params, live, detail=None)
            else:
                domain = ctx.domain
                if domain is not None and domain not in self._memo.graded(models, live):
                    domain = None  # ranks as no domain does: one remembered ranking for both
                ranking = self._memo.rank(self._engine.rank, ctx, models, params, live, 3, domain)
        except SelectionParamsError as exc:
            raise errors.InvalidRequestError(str(exc), param="strategy", code="invalid_strategy") from None
        ranking = finish_target(ranking)
        if misfits:
            ranking = replace(ranking, rejected=(*ranking.rejected, *misfits))
        domain_note, budget_note, target_note = notes
        extra = tuple(n for n in (domain_note, inferred_note, budget_note, target_note) if n)
        if extra:
            ranking = ranking.noted(*extra)
        if not explain:
            ex = resolution.exploration
            ranking = explore(ranking, ex.method, ex.rate, ex.top_k, live, self._rng)
            if half_open := self._memo.half_open(live):
                ranking = probe_half_open(ranking, half_open)
            if not ranking.ranked:
                raise errors.NoFeasibleModelError.listing(ranking.rejected)
        return self._final(ctx, ranking, body, embedding, strategy, source, pipeline, resolution, features)

    def _final(
        self, ctx: RequestContext, ranking: Ranking, body: Mapping[str, Any], embedding: bool, strategy: str,
        source: str, pipeline: str | None, resolution: Resolution, features: SparseFeatures | None,
    ) -> Decision:
        """The attempt order, and what it means for the body each candidate gets."""
        deployments = self._catalog.deployments
        candidates = self._memo.attempt_order(ranking.ranked, resolution.fallbacks, deployments,
                                              lambda: attempt_order(ranking, resolution.fallbacks, deployments))
        if embedding:
            candidates, ranking = same_dimensions(candidates, ranking, body.get("dimensions"))
            # Selection bounds the longest input (the model's window is per input); budgets and
            # rate limits count the whole batch, as the provider bills it.
            ctx = replace(ctx, input_tokens=batch_tokens(body))
        else:
            if not OPENAI_WIRE_ONLY.isdisjoint(body):
                ranking = wire_only_note(ranking, body, candidates)
            if (self._adapting or self._unmarking and has_mark(body)) and (adapted := adaptations(candidates, body)):
                ranking = ranking.noted(*adapted)
        return _new_decision(ctx, ranking, candidates, strategy, source, pipeline, resolution, features, None)

    def _later(self, auto: tuple, router: RouterModel, ctx: RequestContext, text: str) -> Decision:
        """Decide now without the domain when no domain it could infer changes the winner; the
        inference then runs while the call to the winner is in flight (`Decision.settle`, run by
        the request pipeline), and the settled decision is the one the request would have got with
        the inference first: its domain, scores, notes and fallbacks (a fallback is only needed
        once the winner failed, after the decision settled), for the response headers, the stats
        and the request log.

        Whether the winner is the same for every domain is read from the rankings remembered for
        the current live stats (`RankingMemo.same_winner`), so asking ranks nothing. Until they are
        all there, the domain is inferred first, and a shape that keeps coming has the missing
        rankings made while its upstream call is in flight. A deployment waiting for its half-open
        probe could be moved ahead of the winner for one domain and not another: then too the
        domain comes first."""
        models, params, live, resolution = auto[1], auto[3], auto[5], auto[6]
        strategy, source, pipeline = auto[10:13]
        domains = self._outcomes(router, models, live)
        if self._memo.half_open(live):
            verdict = DIFFERENT
        elif len(domains) == 1:  # no domain it can infer ranks otherwise than none: nothing to ask
            verdict = SAME
        else:
            verdict = self._memo.same_winner(ctx, models, params, live, domains,
                                             (ctx, params, router, auto[6].policy_name))

        def inferred() -> Decision:
            with_domain_ctx, features, note = self._router_step.apply(router, ctx, text, False)
            return self._auto(*auto, with_domain_ctx, features, note)

        if verdict == SAME:
            def late() -> Decision:
                try:
                    return inferred()
                except Exception:  # a bug: the call went to the right winner; fallbacks follow no domain's order
                    log.exception("the domain inference of %s failed after its call was sent", ctx.request_id)
                    return self._auto(*auto, ctx, None, None)

            # Before it settles, a decision is read for its winner (the forwarder's first try) and its
            # context (rate limits): the ranking without a domain, remembered, and the winner will do.
            # (Nothing feasible, or params the engine refuses: the inference-first path says so.)
            try:
                ranking = self._memo.rank(self._engine.rank, ctx, models, params, live, 3)
            except SelectionParamsError:
                ranking = None
            if ranking is not None and ranking.ranked:
                winner = (self._catalog.deployments[ranking.ranked[0].model.name],)
                return _new_decision(ctx, ranking, winner, strategy, source, pipeline, resolution, None, late)
        decision = inferred()
        if verdict != FILL:
            return decision

        def fill() -> Decision:
            for domain in domains:
                self._memo.rank(self._engine.rank, with_domain(ctx, domain, "inferred") if domain else ctx,
                                models, params, live, 3)
            return decision

        return replace(decision, settle=fill)  # (once per shape and live map)

    def refill(self) -> Iterator[None]:
        """Rank the domains of the shapes that keep coming in the live stats that replaced the last
        ones, one ranking per step, so the first request of each after a stats refresh waits for no
        inference either (`RankingMemo.same_winner`; StatsService runs it after each refresh, with
        requests served between the steps). The same rankings as that request's fill, made before
        it comes; a shape that stopped coming costs one pass more. Bounded to a quarter of what the
        memo holds: at 1,000 deployments a ranking holds a thousand candidates and costs milliseconds."""
        # (A deferred decision ranks the catalog's chat models, `self._models`: only a router is reloaded.)
        models, router = self._models, self.router or self._policies().domain_router
        room = self._memo.max_candidates // 4
        for ctx, params, by, pipeline in self._memo.take_recurring():  # type: ignore[misc]
            live = self._live(pipeline)
            if by is not router or self._memo.half_open(live):
                continue  # a reloaded router: another shape now; a probe: inferred first anyway
            for domain in self._outcomes(router, models, live):
                room -= len(models) + 1  # what a ranking holds: every model, ranked or rejected
                if room < 0:
                    return
                try:
                    self._memo.rank(self._engine.rank, with_domain(ctx, domain, "inferred") if domain else ctx,
                                    models, params, live, 3)
                except SelectionParamsError:
                    break
                yield

    def _outcomes(self, router: RouterModel, models: Sequence[ModelInfo],
                  live: Mapping[str, LiveStats]) -> tuple[str | None, ...]:
        """None (a guess below the confidence floor), and every domain `router` can infer that
        could rank otherwise than none (`RankingMemo.graded`)."""
        seen = self._inferable
        if seen[0] is router and seen[1] is models and seen[2] is live:
            return seen[3]
        graded = self._memo.graded(models, live)
        classes = router.classifier.classes if router.classifier is not None else ()
        domains = (None, *(d for d in classes if d in graded))
        self._inferable = (router, models, live, domains)
        return domains

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

    def known_domains(self) -> frozenset[str]:
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
