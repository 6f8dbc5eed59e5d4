"""Latency of the per-request learning call: `RouterModel.estimate` on a ~1,000-token prompt.

Trains a router on a seeded synthetic corpus (14 domains, 9 models, 3,000 prompts of ~150 words;
sizes like the MMLU-Pro dev set), then times, one call at a time with perf_counter_ns:
hashing alone, domain inference, the full estimate without and with explanations, the kNN prompt
index (mode ``knn``: embed + 30 nearest of 3,000 train prompts), and the quality-target planner
(calibration-table lookup + expected costs -> frontier params).
Budgets: p50 <= 2 ms for the whole estimate; prompt-level prediction (kNN) under 1 ms.

    .venv/bin/python bench/bench_learning.py
"""

from __future__ import annotations

import time

import numpy as np

from gateway.learning import (
    CalibrationTable,
    DomainClassifier,
    FeatureHasher,
    OutputLengths,
    PromptIndex,
    PromptQualityModel,
    QualityTarget,
    RouterModel,
    TargetPlanner,
)
from gateway.selection import ModelInfo, RequestContext, SelectionParams

MODELS = [f"model-{i}" for i in range(9)]


def _corpus(rng: np.random.Generator, n: int) -> tuple[list[str], list[str]]:
    vocab = [f"w{i}" for i in range(20_000)]
    texts, labels = [], []
    for i in range(n):
        d = i % 14
        topical = rng.integers(d * 1000, d * 1000 + 1000, size=60)
        common = rng.integers(14_000, 20_000, size=90)
        texts.append(" ".join(vocab[j] for j in np.concatenate((topical, common))))
        labels.append(f"domain-{d}")
    return texts, labels


def _time(fn, runs: int) -> tuple[float, float]:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - t0)
    a = np.array(samples) / 1e6
    return float(np.median(a)), float(np.percentile(a, 90))


def main() -> None:
    rng = np.random.default_rng(0)
    texts, labels = _corpus(rng, 3000)
    hasher = FeatureHasher()
    feats = [hasher.transform(t) for t in texts]
    clf = DomainClassifier(hasher).fit_features(feats, labels)
    quality = PromptQualityModel()
    lengths = OutputLengths()
    outcomes = (rng.random((len(feats), len(MODELS))) < 0.6).astype(float)
    for f, d, row in zip(feats, labels, outcomes, strict=True):
        for m, score in zip(MODELS, row, strict=True):
            quality.update(m, f, d, score)
            lengths.update(m, d, float(rng.integers(5, 400)))
    index = PromptIndex().fit(feats, outcomes, MODELS)
    table = CalibrationTable.build(MODELS[-1], 0.7, 6e-4, np.geomspace(1e-3, 10, 30)[::-1],
                                   np.linspace(0.8, 1.0, 30), np.linspace(0.05, 1.0, 30), np.linspace(0, 1, 30),
                                   knee_lam=0.1, prompts=3000)
    router = RouterModel(hasher, clf, quality, index=index, lengths=lengths, calibration=table)
    catalog = [ModelInfo(name=m, provider="p", litellm_model=m, input_cost_per_token=1e-7 * (i + 1),
                         output_cost_per_token=4e-7 * (i + 1)) for i, m in enumerate(MODELS)]
    planner = TargetPlanner(catalog)
    est = router.estimate("warm up", MODELS, explain=False)
    ctx = RequestContext("r", 1300, domain="domain-3", quality_estimates=est.quality_estimates)
    target = QualityTarget("quality", 0.95, "header")
    # ~1,000 tokens of English-like text (words of 4-8 letters at ~1.3 tokens each).
    words = [" ".join(rng.choice(list("etaoinshrdlu"), size=int(rng.integers(3, 8)))).replace(" ", "")
             for _ in range(760)]
    prompt = "Question: " + " ".join(words) + "\nAnswer with the letter of the correct option."
    x = hasher.transform(prompt)
    print(f"prompt: {len(prompt):,} chars, {x.n_tokens} word tokens (~{len(prompt) // 4} BPE tokens), "
          f"{len(x)} features")
    rows = [
        ("hash features", lambda: hasher.transform(prompt)),
        ("infer domain (given features)", lambda: clf.predict_proba(x)),
        ("estimate (no explanations)", lambda: router.estimate(prompt, MODELS, explain=False)),
        ("estimate (with explanations)", lambda: router.estimate(prompt, MODELS, explain=True)),
        ("estimate, domain given", lambda: router.estimate(prompt, MODELS, domain="domain-3", explain=False)),
        ("kNN index predict (given features)", lambda: index.predict(x, MODELS, dict.fromkeys(MODELS, 0.5))),
        ("estimate, mode knn", lambda: router.estimate(prompt, MODELS, explain=False, mode="knn")),
        ("quality target -> frontier params", lambda: planner.apply(target, SelectionParams(), ctx, router, "r",
                                                                    record=False)),
    ]
    print(f"{'step':<34} {'p50 ms':>8} {'p90 ms':>8}")
    for name, fn in rows:
        _time(fn, 50)  # warm-up
        p50, p90 = _time(fn, 500)
        print(f"{name:<34} {p50:>8.3f} {p90:>8.3f}")


if __name__ == "__main__":
    main()
