"""Learn from a file's train split exactly as live traffic would teach the gateway.

For every (train prompt, model) pair: the served request is recorded (`StatsService.record`, which
gives the engine each model's live output length), remembered (`FeedbackProcessor.remember`) and
scored (`FeedbackProcessor.apply`), which updates the stats store's Beta posteriors and the
prompt-quality model. Prompts arrive in a seeded random order, as feedback would. The domain
classifier is fitted on the train prompts that carry a domain; the kNN prompt index
(`PromptIndex`) on all of them, with their outcome per model; the expected completion tokens per
model and domain (`OutputLengths`) come from the same outcomes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from gateway.eval.data import EvalData
from gateway.learning import (
    DomainClassifier,
    FeatureHasher,
    FeedbackProcessor,
    OutputLengths,
    PromptIndex,
    PromptQualityModel,
    RouterModel,
    SparseFeatures,
)
from gateway.selection import LiveStats, ModelInfo
from gateway.stats import MemoryStatsStore, Outcome, StatsService

__all__ = ["Trained", "quality_log_loss", "train"]

# Outcomes carry one fixed timestamp and the snapshot is read "as of" it, so the time-decayed
# figures (and every ranking that reads them) do not depend on how long training took.
_EPOCH_TS = 1_700_000_000.0


@dataclass
class Trained:
    router: RouterModel
    stats: StatsService
    feedback: FeedbackProcessor
    live: Mapping[str, LiveStats]


def _latency_ms(info: ModelInfo, out_tokens: int) -> float:
    # The data has no latency; record the catalog prior's figure so latency stays neutral.
    return info.ttft_ms + out_tokens * 1000.0 / max(info.tokens_per_s, 1e-3)


def train(
    data: EvalData,
    rows: np.ndarray,
    features: Sequence[SparseFeatures],
    catalog: Sequence[ModelInfo],
    *,
    seed: int,
    hasher: FeatureHasher,
    with_classifier: bool = True,
    with_index: bool = True,
    record_outcomes: bool = True,
) -> Trained:
    """``features[k]`` belongs to ``rows[k]``. Returns the router model and the stats it built."""
    classifier = None
    labelled = [k for k, i in enumerate(rows) if data.domains[i] is not None]
    if with_classifier and len({data.domains[rows[k]] for k in labelled}) >= 2:
        classifier = DomainClassifier(hasher, seed=seed).fit_features(
            [features[k] for k in labelled], [data.domains[rows[k]] for k in labelled]  # type: ignore[misc]
        )
    quality = PromptQualityModel()
    stats = StatsService(MemoryStatsStore())
    feedback = FeedbackProcessor(stats, quality, max_remembered=max(1024, len(catalog) * 4))
    names = [m.name for m in catalog]
    lengths = OutputLengths()
    order = np.random.default_rng(seed).permutation(len(rows))
    for k in order:
        i = int(rows[k])
        domain = data.domains[i]
        feats = features[k]
        for j, info in enumerate(catalog):
            rid = f"{data.ids[i]}\x1f{names[j]}"
            out = int(data.out_tokens[i, j])
            if record_outcomes:
                stats.record(Outcome(names[j], None, "ok", _latency_ms(info, out), None, out,
                                     float(data.costs[i, j]), ts=_EPOCH_TS, domain=domain))
            feedback.remember(rid, names[j], domain, feats)
            feedback.apply(rid, float(data.scores[i, j]))
            lengths.update(names[j], domain, out)
    live = asyncio.run(stats.store.read_stats(now=_EPOCH_TS))
    index = None
    if with_index and len(rows) >= 10:
        index = PromptIndex(seed=seed).fit(list(features), data.scores[rows], names)
    router = RouterModel(hasher, classifier, quality, index=index, lengths=lengths)
    return Trained(router, stats, feedback, live)


def quality_log_loss(
    router: RouterModel,
    data: EvalData,
    rows: np.ndarray,
    features: Sequence[SparseFeatures],
    mode: str,
) -> dict[str, float]:
    """Mean log loss and Brier score of P(good) over (row, model) on held-out ``rows``."""
    names = list(data.model_names)
    preds = np.array([
        [v for v in router.estimate(data.texts[i], names, domain=data.domains[i], explain=False,
                                    mode=mode, features=features[k]).quality_estimates.values()]  # type: ignore[union-attr]
        for k, i in enumerate(rows)
    ])
    y = data.scores[rows]
    p = np.clip(preds, 1e-6, 1 - 1e-6)
    return {
        "log_loss": float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))),
        "brier": float(np.mean((p - y) ** 2)),
    }
