"""Domain inference: a multinomial logistic regression on hashed prompt features.

Trained with a few seeded epochs of per-example AdaGrad SGD (numpy only): one example touches only
the rows of its own features, so an epoch over thousands of prompts takes a fraction of a second,
and prediction is one gather + a (k x classes) product, far below a millisecond.

Only features seen in at least `min_df` training prompts get a row (a compact vocabulary), which
keeps the saved model small and drops one-off bigrams that would only memorise the train set.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gateway.learning.features import FeatureHasher, SparseFeatures

__all__ = ["DomainClassifier"]

_FORMAT = "gateway-domain-classifier/1"


class DomainClassifier:
    """`fit(texts, labels)`, then `predict(features) -> (label, confidence)`."""

    def __init__(
        self,
        hasher: FeatureHasher | None = None,
        *,
        epochs: int = 6,
        learning_rate: float = 0.5,
        min_df: int = 2,
        seed: int = 0,
    ) -> None:
        self.hasher = hasher or FeatureHasher()
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.min_df = min_df
        self.seed = seed
        self.classes: tuple[str, ...] = ()
        self._column = np.zeros(0, dtype=np.int32)  # hashed index -> vocab row (-1: unknown)
        self._weights = np.zeros((1, 0), dtype=np.float32)  # (vocab + 1 zero row, classes)
        self._bias = np.zeros(0, dtype=np.float32)

    @property
    def fitted(self) -> bool:
        return len(self.classes) > 0

    # -- training ---------------------------------------------------------------------------------

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> DomainClassifier:
        return self.fit_features([self.hasher.transform(t) for t in texts], labels)

    def fit_features(self, features: Sequence[SparseFeatures], labels: Sequence[str]) -> DomainClassifier:
        if len(features) != len(labels):
            raise ValueError(f"{len(features)} examples but {len(labels)} labels")
        classes = tuple(sorted(set(labels)))
        if len(classes) < 2:
            raise ValueError(f"need at least two domains to train a classifier, got {list(classes)}")
        y = np.array([classes.index(label) for label in labels], dtype=np.int64)
        df = np.bincount(np.concatenate([f.indices for f in features]), minlength=self.hasher.dim)
        vocab = np.flatnonzero(df >= self.min_df)
        column = np.full(self.hasher.dim, len(vocab), dtype=np.int32)
        column[vocab] = np.arange(len(vocab), dtype=np.int32)
        rows = [(column[f.indices], f.values.astype(np.float32)) for f in features]

        n_cls = len(classes)
        w = np.zeros((len(vocab) + 1, n_cls), dtype=np.float32)
        g2 = np.full((len(vocab) + 1, n_cls), 1e-6, dtype=np.float32)
        b = np.log(np.bincount(y, minlength=n_cls) / len(y) + 1e-9).astype(np.float32)
        lr = np.float32(self.learning_rate)
        rng = np.random.default_rng(self.seed)
        unknown = len(vocab)
        for _ in range(self.epochs):
            for i in rng.permutation(len(rows)):
                cols, vals = rows[i]
                z = vals @ w[cols] + b
                z -= z.max()
                p = np.exp(z)
                p /= p.sum()
                p[y[i]] -= 1.0
                grad = np.outer(vals, p)
                g2[cols] += grad * grad
                w[cols] -= lr * grad / np.sqrt(g2[cols])
                w[unknown] = 0.0  # the shared row for out-of-vocabulary features stays zero
                b -= np.float32(0.05) * lr * p
        self.classes, self._column, self._weights, self._bias = classes, column, w, b
        return self

    # -- inference --------------------------------------------------------------------------------

    def predict_proba(self, features: SparseFeatures) -> np.ndarray:
        """Probabilities over `classes` (in that order)."""
        if not self.fitted:
            raise RuntimeError("DomainClassifier is not fitted")
        z = features.values.astype(np.float32) @ self._weights[self._column[features.indices]] + self._bias
        z = z - z.max()
        p = np.exp(z)
        return p / p.sum()

    def predict(self, features: SparseFeatures) -> tuple[str, float]:
        p = self.predict_proba(features)
        k = int(np.argmax(p))
        return self.classes[k], float(p[k])

    def predict_text(self, text: str) -> tuple[str, float]:
        return self.predict(self.hasher.transform(text))

    # -- persistence ------------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """A compressed .npz: vocabulary (hashed indices), weights, bias, classes, hasher bits."""
        vocab = np.flatnonzero(self._column < len(self._weights) - 1)
        meta = {"format": _FORMAT, "classes": list(self.classes), "n_bits": self.hasher.n_bits,
                "bigrams": self.hasher.bigrams}
        with open(path, "wb") as fh:
            np.savez_compressed(fh, meta=np.array(json.dumps(meta)), vocab=vocab.astype(np.int64),
                                order=self._column[vocab], weights=self._weights, bias=self._bias)

    @classmethod
    def load(cls, path: str | Path, hasher: FeatureHasher | None = None) -> DomainClassifier:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("format") != _FORMAT:
                raise ValueError(f"{path}: not a domain classifier ({meta.get('format')!r})")
            hasher = hasher or FeatureHasher(meta["n_bits"], bigrams=meta["bigrams"])
            if hasher.n_bits != meta["n_bits"]:
                raise ValueError(f"{path}: trained with {meta['n_bits']} bits, hasher has {hasher.n_bits}")
            model = cls(hasher)
            weights = data["weights"]
            column = np.full(hasher.dim, len(weights) - 1, dtype=np.int32)
            column[data["vocab"]] = data["order"]
            model.classes = tuple(meta["classes"])
            model._column, model._weights, model._bias = column, weights, data["bias"]
        return model
