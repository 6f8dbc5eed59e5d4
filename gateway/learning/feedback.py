"""The feedback seam: one path from "this answer scored s" to every learner.

Live traffic: after serving a request the request path calls `remember(request_id, deployment,
domain, features)`; later `POST /v1/feedback {request_id, score}` calls `apply(request_id, score)`.
Offline evaluation calls exactly the same two methods for every (train prompt, model) pair, so
what the eval measures is what live feedback would learn. Both end in `observe`, which updates the
stats store's Beta posteriors (`StatsService.feedback`) and the prompt-quality model.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol

from gateway.learning.features import SparseFeatures
from gateway.learning.quality import PromptQualityModel
from gateway.stats import StatsService

__all__ = ["FeedbackProcessor", "Remembered"]


class Remembered(NamedTuple):
    deployment: str
    domain: str | None
    features: SparseFeatures | None
    pipeline: str | None = None  # the pipeline the request counted against
    principal: str | None = None  # the key that made it (None: authentication off)


class FeedbackProcessor:
    """Bounded memory of recent requests plus the one `observe` that updates every learner."""

    def __init__(
        self,
        stats: StatsService,
        quality_model: PromptQualityModel | None,
        *,
        max_remembered: int = 50_000,
        listeners: Sequence[Callable[[str, str, float], None]] = (),
    ) -> None:
        if max_remembered < 1:
            raise ValueError("max_remembered must be at least 1")
        # Called as listener(request_id, deployment, score) after every applied score (e.g. the
        # router model's live check of its calibration table).
        self.listeners = tuple(listeners)
        self.stats = stats
        self.quality_model = quality_model
        self.max_remembered = max_remembered
        self._recent: OrderedDict[str, Remembered] = OrderedDict()
        self.applied = 0  # feedback events that found their request
        self.unknown = 0  # feedback for request ids never seen or already evicted / applied

    def __len__(self) -> int:
        return len(self._recent)

    def remember(
        self, request_id: str, deployment: str, domain: str | None, features: SparseFeatures | None,
        *, pipeline: str | None = None, principal: str | None = None,
    ) -> None:
        """Called once a request was served; the oldest entry goes when the memory is full."""
        recent = self._recent
        recent[request_id] = Remembered(deployment, domain, features, pipeline, principal)
        recent.move_to_end(request_id)
        while len(recent) > self.max_remembered:
            recent.popitem(last=False)

    def apply(self, request_id: str, score: float, caller: Caller | None = None) -> bool:
        """Feedback for a remembered request; False when the id is unknown (never seen, evicted,
        already scored: a request is learned from once) or not the caller's to score. Raises
        ValueError for a bad score.

        `caller` (the authenticated key; None when authentication is off) may score only requests
        it made itself, unless it is the master key. A key bound to a pipeline teaches only that
        pipeline's view; other keys teach the global one (see docs/security.md#tenancy).
        """
        score = _checked(score)
        entry = self._recent.get(request_id)
        if entry is None or not _may_score(caller, entry):
            self.unknown += 1
            return False
        del self._recent[request_id]
        scope = getattr(caller, "pipeline", None)
        self.observe(entry.deployment, entry.domain, entry.features, score, scope=scope)
        if scope is None:  # a tenant's scores must not re-tune what every pipeline is served by
            for listener in self.listeners:
                listener(request_id, entry.deployment, score)
        self.applied += 1
        return True

    def observe(
        self, deployment: str, domain: str | None, features: SparseFeatures | None, score: float,
        *, scope: str | None = None,
    ) -> None:
        """Update the stats posterior (model and model x domain) and, for global feedback, the
        prompt-quality model (one tenant's scores must not move another tenant's estimates)."""
        score = _checked(score)
        self.stats.feedback(deployment, domain, score, scope)
        if self.quality_model is not None and scope is None:
            self.quality_model.update(deployment, features, domain, score)


class Caller(Protocol):
    name: str
    pipeline: str | None
    master: bool


def _may_score(caller: Caller | None, entry: Remembered) -> bool:
    if caller is None or caller.master:
        return True
    return entry.principal == caller.name


def _checked(score: float) -> float:
    if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
        raise ValueError(f"score must be a finite number in [0, 1], got {score!r}")
    if not 0.0 <= score <= 1.0:
        raise ValueError(f"score must be in [0, 1], got {score}")
    return float(score)
