"""kNN over learned prompt vectors: similar prompts share outcomes, within one domain too."""

from __future__ import annotations

import numpy as np
import pytest

from gateway.learning import FeatureHasher, PromptIndex

HASHER = FeatureHasher()
# Two kinds of question inside one domain: the cheap model is right on arithmetic only.
ARITH = ["add", "sum", "plus", "total", "digits", "carry", "column", "numbers"]
PROOF = ["prove", "lemma", "theorem", "induction", "contradiction", "axiom", "rigorous", "qed"]


def _corpus(n: int, seed: int) -> tuple[list, np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    feats, outcomes, kinds = [], [], []
    for i in range(n):
        kind = "arith" if i % 2 else "proof"
        words = rng.choice(ARITH if kind == "arith" else PROOF, size=10).tolist()
        words += rng.choice(["the", "a", "question", "please", "math", "answer"], size=6).tolist()
        feats.append(HASHER.transform(" ".join(words)))
        p_cheap = 0.9 if kind == "arith" else 0.1
        outcomes.append([float(rng.random() < p_cheap), float(rng.random() < 0.9)])
        kinds.append(kind)
    return feats, np.array(outcomes), kinds


def test_neighbours_carry_the_signal_a_domain_average_cannot():
    feats, outcomes, _ = _corpus(300, 0)
    index = PromptIndex(dim=8, k=20, strength=2.0, min_df=2).fit(feats, outcomes, ["cheap", "dear"])
    prior = {"cheap": 0.5, "dear": 0.9}  # the one-domain average
    test, _, kinds = _corpus(60, 1)
    q = [index.predict(f, ["cheap", "dear"], prior)["cheap"] for f in test]
    arith = np.mean([v for v, k in zip(q, kinds, strict=True) if k == "arith"])
    proof = np.mean([v for v, k in zip(q, kinds, strict=True) if k == "proof"])
    assert arith > 0.75 and proof < 0.25


def test_unknown_models_get_their_prior_and_weights_shrink_to_it():
    feats, outcomes, _ = _corpus(100, 2)
    index = PromptIndex(dim=4, k=10, strength=1e9).fit(feats, outcomes, ["cheap", "dear"])
    out = index.predict(feats[0], ["cheap", "other"], {"cheap": 0.3, "other": 0.42})
    assert out["other"] == 0.42
    assert out["cheap"] == pytest.approx(0.3, abs=1e-6)  # an overwhelming prior wins


def test_save_load_predicts_the_same(tmp_path):
    feats, outcomes, _ = _corpus(120, 3)
    index = PromptIndex(dim=6).fit(feats, outcomes, ["cheap", "dear"])
    index.save(tmp_path / "i.npz")
    again = PromptIndex.load(tmp_path / "i.npz")
    prior = {"cheap": 0.5, "dear": 0.5}
    for f in feats[:10]:
        a, b = index.predict(f, ["cheap", "dear"], prior), again.predict(f, ["cheap", "dear"], prior)
        assert a == pytest.approx(b, abs=2e-3)  # float16 on disk


def test_unseen_words_embed_to_zero_and_fall_back_to_the_prior():
    feats, outcomes, _ = _corpus(60, 4)
    index = PromptIndex(dim=4, k=5).fit(feats, outcomes, ["cheap", "dear"])
    out = index.predict(HASHER.transform("zzzqx wvvy"), ["cheap"], {"cheap": 0.37})
    assert out["cheap"] == pytest.approx(0.37)


def test_rejects_misaligned_outcomes():
    feats, outcomes, _ = _corpus(20, 5)
    with pytest.raises(ValueError, match="outcomes must be"):
        PromptIndex().fit(feats, outcomes[:, :1], ["cheap", "dear"])
