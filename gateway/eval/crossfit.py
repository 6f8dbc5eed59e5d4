"""Out-of-fold estimates on the train split: every train prompt estimated by a router that never saw it.

The train split is cut into ``folds`` seeded parts; for each, a router is trained on the others
(classifier, quality model, prompt index, output lengths: everything `train` builds) and estimates
the held-out prompts in every quality mode, with the domain inferred as on the request path. These
estimates decide the default quality mode and build the calibration table a quality target reads
(`gateway.eval.operating`), so neither choice looks at the test split, and both see a router's
errors on prompts it was not trained on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from gateway.eval.data import EvalData
from gateway.eval.training import train
from gateway.learning import QUALITY_MODES, FeatureHasher, SparseFeatures
from gateway.selection import LiveStats, ModelInfo

__all__ = ["OutOfFold", "crossfit"]

Estimate = tuple[str | None, str | None, Mapping[str, float] | None]


@dataclass
class OutOfFold:
    rows: np.ndarray  # train rows, in data order
    estimates: dict[str, list[Estimate]]  # quality mode -> per row (domain, source, estimates)
    output_tokens: list[Mapping[str, float]]  # per row: expected completion tokens per model
    live: Mapping[str, LiveStats]  # the last fold's live stats (shared by every prompt's context)
    folds: int


def crossfit(
    data: EvalData,
    rows: np.ndarray,
    features: Mapping[int, SparseFeatures],
    catalog: Sequence[ModelInfo],
    *,
    folds: int,
    seed: int,
    hasher: FeatureHasher,
    modes: Sequence[str] = QUALITY_MODES,
) -> OutOfFold | None:
    """None when the split is too small to hold out a tenth of it."""
    n = len(rows)
    if folds < 2 or n < 10 * folds:
        return None
    names = [m.name for m in catalog]
    fold_of = np.random.default_rng(seed + 1).permutation(n) % folds
    estimates: dict[str, list[Estimate | None]] = {m: [None] * n for m in modes}
    outputs: list[Mapping[str, float] | None] = [None] * n
    live: Mapping[str, LiveStats] = {}
    for f in range(folds):
        fit = np.flatnonzero(fold_of != f)
        held = np.flatnonzero(fold_of == f)
        trained = train(data, rows[fit], [features[int(rows[k])] for k in fit], catalog, seed=seed + f,
                        hasher=hasher)
        live = trained.live
        router = trained.router
        for k in held:
            i = int(rows[k])
            feats = features[i]
            for mode in modes:
                r = router.estimate(data.texts[i], names, explain=False, mode=mode, features=feats)
                estimates[mode][k] = (r.domain, r.domain_source, r.quality_estimates)
            domain = estimates[modes[0]][k][0]  # type: ignore[index]
            outputs[k] = router.expected_output(names, domain) or {}
    return OutOfFold(rows, {m: list(v) for m, v in estimates.items()},  # type: ignore[misc]
                     list(outputs), live, folds)  # type: ignore[arg-type]
