"""The decision for one request: which deployments to try, in which order, and why.

Request context in, ranked candidates with reasons out. The `model` field either pins a catalog
deployment or names a router alias (`auto`), which hands the choice to the selection engine under
the strategy from the header, the pipeline policy or the global default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway import errors
from gateway.catalog import Catalog, ResolvedDeployment
from gateway.context import build_context
from gateway.selection.strategies import SelectionParamsError
from gateway.selection.types import LiveStats, Ranking, RequestContext, SelectionParams

__all__ = ["Decider", "Decision", "HEADER_STRATEGIES"]

#: Strategies a caller may ask for with `X-Selection-Strategy`; `custom` needs a policy's weights.
HEADER_STRATEGIES = ("cost", "performance", "balanced")


@dataclass(frozen=True, slots=True)
class Decision:
    ctx: RequestContext
    ranking: Ranking
    candidates: tuple[ResolvedDeployment, ...]  # ranking order, then policy fallbacks
    strategy: str
    strategy_source: str  # pinned | header | pipeline | default
    pipeline: str | None


class Decider:
    def __init__(self, catalog: Catalog, engine: Any, live: Any = None) -> None:
        self._catalog = catalog
        self._engine = engine
        self._models = catalog.models
        # `live()` returns the current Mapping[str, LiveStats] snapshot without awaiting.
        self._live = live or (lambda: {})

    def valid_names(self) -> list[str]:
        return [*self._catalog.aliases, *self._catalog.deployments]

    def header_strategy(self, headers: Mapping[str, str]) -> str | None:
        value = headers.get("x-selection-strategy")
        if value is None:
            return None
        value = value.strip().lower()
        if value not in HEADER_STRATEGIES:
            raise errors.InvalidRequestError(
                f"Invalid X-Selection-Strategy {value[:40]!r}; allowed values: {', '.join(HEADER_STRATEGIES)}.",
                param="X-Selection-Strategy",
                code="invalid_strategy",
            )
        return value

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
        header_strategy = self.header_strategy(headers)
        pipeline = headers.get("x-pipeline-id")
        ctx = build_context(
            body, request_id=request_id, pinned_model=pinned,
            domain=headers.get("x-task-domain"), pipeline=pipeline,
        )
        if pinned is not None:
            ranking = self._engine.pinned_ranking(deployments[pinned].info, ctx)
            strategy = source = "pinned"
        else:
            strategy = header_strategy or self._catalog.default_strategy
            source = "header" if header_strategy else "default"
            params = SelectionParams(strategy=strategy)
            live: Mapping[str, LiveStats] = self._live()
            try:
                # Explanations for every candidate only when someone will read them.
                ranking = self._engine.rank(ctx, self._models, params, live, detail=None if explain else 3)
            except SelectionParamsError as exc:
                raise errors.InvalidRequestError(str(exc), param="strategy", code="invalid_strategy") from None
        if not ranking.ranked and not explain:
            raise _no_feasible(ranking)
        candidates = tuple(deployments[c.model.name] for c in ranking.ranked)
        return Decision(ctx, ranking, candidates, strategy, source, pipeline)


def _no_feasible(ranking: Ranking) -> errors.NoFeasibleModelError:
    parts = [f"{r.model}: {'; '.join(r.reasons)}" for r in ranking.rejected]
    return errors.NoFeasibleModelError(
        "No model satisfies this request's constraints. " + " | ".join(parts),
        rejected=((r.model, r.reasons) for r in ranking.rejected),
    )
