"""The router model's part of a decision: the domain it infers from the prompt, its per-model
quality estimates when it has a quality model, and the prompt's features for a feedback learner
that reads them. `Decider` asks it before the upstream call or, when the winner cannot change,
while the call is in flight (`Decider._later`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from gateway.catalog import Catalog
from gateway.learning import RouterModel, SparseFeatures
from gateway.selection import RequestContext
from gateway.selection.types import with_domain

__all__ = ["RouterStep"]


class RouterStep:
    """Holds no per-request state: only the known-models cache, per router model."""

    def __init__(self, catalog: Catalog, min_confidence: float, keep_features: Callable[[], bool] | None) -> None:
        self._catalog = catalog
        self._min_confidence = min_confidence
        # Whether a Decision keeps the prompt's features (for a learner that reads them at feedback
        # time); None: always. A stream holds its Decision for as long as it runs.
        self._keep_features = keep_features
        self._known: tuple[RouterModel | None, tuple[str, ...]] = (None, ())

    def read(self, router: RouterModel, ctx: RequestContext) -> bool:
        """Whether anything reads what `apply` would compute. With the domain given (a header, the
        policy's default) and no per-prompt quality model, only the prompt's features are left, and
        only a feedback learner that wants them reads those: else hashing the prompt (~60 us, more
        on a cold cache) would be thrown away, before the upstream call."""
        return ctx.domain is None or router.quality is not None or self._keeps()

    def apply(
        self, router: RouterModel, ctx: RequestContext, text: str, explain: bool
    ) -> tuple[RequestContext, SparseFeatures | None, str | None]:
        """Infer the domain when none was given, and the router model's per-model quality; the
        features are kept when the feedback learner wants them."""
        est = router.estimate(
            text, self._known_models(router), domain=ctx.domain,
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
        return ctx, est.features if self._keeps() else None, note

    def _keeps(self) -> bool:
        keep = self._keep_features
        return keep is None or keep()

    def _known_models(self, router: RouterModel) -> tuple[str, ...]:
        """Catalog models the router's quality model has learned about (cached per router)."""
        seen, names = self._known
        if seen is not router:
            learned = set(router.quality.models) if router.quality is not None else set()
            names = tuple(n for n in self._catalog.deployments if n in learned)
            self._known = (router, names)
        return names
