"""Domain inference: a multinomial logistic regression on hashed prompt features.

Trained with a few seeded epochs of per-example AdaGrad SGD (numpy only): one example touches only
the rows of its own features, so an epoch over thousands of prompts takes a fraction of a second,
and prediction is one gather + a (k x classes) product, far below a millisecond.

Only features seen in at least `min_df` training prompts get a row (a compact vocabulary), which
keeps the saved model small and drops one-off bigrams that would only memorise the train set.

`averaged` merges runs with different seeds into one model; `extended` teaches a trained model new
domains from a few examples without retraining it (the shipped default model plus policies'
`domain_examples`, see gateway/learning/default_domains.py).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gateway.learning.features import FeatureHasher, SparseFeatures

__all__ = ["DomainClassifier"]

_FORMAT = "gateway-domain-classifier/1"
_HASHER_KEYS = ("n_bits", "bigrams", "char_ngrams", "char_weight")


_max, _sum = np.maximum.reduce, np.add.reduce
_F32 = np.dtype(np.float32)
#: Columns (hashed index -> row) of up to this many entries also get an intp copy for inference:
#: `take` converts int32 rows to intp on every call otherwise (2.6 k of ~26 k instructions per
#: request). 2**18 entries (the shipped model's) cost 2 MiB more; far larger spaces keep int32.
_INTP_COLUMN_MAX = 1 << 20


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
        #: A few training prompts (text, label) kept with the model, so `extended` can rehearse them.
        self.replay: tuple[tuple[str, str], ...] = ()
        self._rehearsal: tuple[list[SparseFeatures], np.ndarray] | None = None  # replay features, logits
        self._intp: tuple[np.ndarray, np.ndarray] = (self._column, self._column)  # (_column, its intp copy)

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
        w = np.zeros((len(vocab) + 1, len(classes)), dtype=np.float32)
        b = np.log(np.bincount(y, minlength=len(classes)) / len(y) + 1e-9).astype(np.float32)
        rows = [(column[f.indices], f.values.astype(np.float32)) for f in features]
        _adagrad(rows, y, w, b, epochs=self.epochs, lr=self.learning_rate, seed=self.seed)
        self.classes, self._column, self._weights, self._bias = classes, column, w, b
        return self

    @classmethod
    def averaged(cls, models: Sequence[DomainClassifier]) -> DomainClassifier:
        """One model whose weights are the mean of `models` (the same examples, different seeds).

        Per-example SGD ends somewhere different for every example order; the mean keeps what the
        runs agree on and shrinks what one order happened to favour, which steadies the
        probabilities, at no cost at inference.
        """
        first = models[0]
        for m in models[1:]:
            if m.classes != first.classes or not np.array_equal(m._column, first._column):
                raise ValueError("averaged() needs models trained on the same examples (classes and vocabulary)")
        out = cls(first.hasher, epochs=first.epochs, learning_rate=first.learning_rate, min_df=first.min_df,
                  seed=first.seed)
        out.classes, out._column, out.replay = first.classes, first._column, first.replay
        out._weights = np.mean([m._weights for m in models], axis=0).astype(np.float32)
        out._bias = np.mean([m._bias for m in models], axis=0).astype(np.float32)
        return out

    def extended(
        self, texts: Sequence[str], labels: Sequence[str], *, epochs: int = 10, repeat: int = 3,
        learning_rate: float = 1.0,
    ) -> DomainClassifier:
        """This model plus the domains of `texts` it does not know yet; `self` is left unchanged.

        Only new domains are learnt: their columns are trained on the examples (each counted
        `repeat` times) and on `replay` (counter-examples from this model's own training data),
        against this model's frozen logits, and merged into one linear model that predicts like any
        other. Examples of domains this model already knows serve as counter-examples for the new
        ones and change nothing else, so they cannot make the known domains worse. Without a new
        domain the model itself is returned.
        """
        if not self.fitted:
            raise RuntimeError("DomainClassifier is not fitted")
        if len(texts) != len(labels):
            raise ValueError(f"{len(texts)} examples but {len(labels)} labels")
        new = sorted(set(labels) - set(self.classes))
        if not new:
            return self
        classes = tuple(sorted({*self.classes, *new}))
        old = np.array([classes.index(c) for c in self.classes], dtype=np.int64)
        trainable = np.array([classes.index(c) for c in new], dtype=np.int64)
        examples = [self.hasher.transform(t) for t in texts]
        replay_features, replay_logits = self._replay_cache()
        features = [*examples * repeat, *replay_features]
        y = np.array([classes.index(c) for c in [*labels * repeat, *(c for _, c in self.replay)]], dtype=np.int64)
        # A new domain starts well below the known ones' prior (e^-2: it must earn its mass from
        # features) and learns its bias at full rate, so the replay can hold it down where it is
        # not wanted; otherwise it takes every prompt the known domains are unsure of.
        prior = float(np.mean(self._bias)) - 2.0
        frozen = np.full((len(features), len(classes)), prior, dtype=np.float32)
        frozen[: len(examples) * repeat, old] = np.tile([self._logits(f) for f in examples], (repeat, 1))
        frozen[len(examples) * repeat:, old] = replay_logits
        # The new columns only need the examples' own features (any other feature would stay zero).
        res_vocab = np.unique(np.concatenate([f.indices for f in examples]))
        res_column = np.full(self.hasher.dim, len(res_vocab), dtype=np.int32)
        res_column[res_vocab] = np.arange(len(res_vocab), dtype=np.int32)
        rows = []
        for f in features:
            inside = res_column[f.indices] < len(res_vocab)
            rows.append((res_column[f.indices[inside]], f.values[inside].astype(np.float32)))
        res_w = np.zeros((len(res_vocab) + 1, len(classes)), dtype=np.float32)
        res_b = np.zeros(len(classes), dtype=np.float32)
        _adagrad(rows, y, res_w, res_b, epochs=epochs, lr=learning_rate, seed=self.seed, offsets=frozen,
                 trainable=trainable, bias_step=1.0)
        # Merge: one vocabulary; this model's weights in the known columns, the residual's in the new.
        old_vocab = self._vocab()
        vocab = np.union1d(old_vocab, res_vocab)
        column = np.full(self.hasher.dim, len(vocab), dtype=np.int32)
        column[vocab] = np.arange(len(vocab), dtype=np.int32)
        w = np.zeros((len(vocab) + 1, len(classes)), dtype=np.float32)
        w[np.ix_(column[old_vocab], old)] = self._weights[self._column[old_vocab]]
        w[column[res_vocab]] += res_w[:-1]
        b = np.full(len(classes), prior, dtype=np.float32)
        b[old] = self._bias
        out = DomainClassifier(self.hasher, epochs=self.epochs, learning_rate=self.learning_rate,
                               min_df=self.min_df, seed=self.seed)
        out.classes, out._column, out._weights, out._bias = classes, column, w, b + res_b
        out.replay = self.replay
        return out

    def _replay_cache(self) -> tuple[list[SparseFeatures], np.ndarray]:
        # Hashing the replay prompts costs more than the training that uses them; a loaded model is
        # extended on every policy reload, so they are hashed once.
        if self._rehearsal is None:
            features = [self.hasher.transform(t) for t, _ in self.replay]
            logits = np.array([self._logits(f) for f in features], dtype=np.float32).reshape(len(features), -1)
            self._rehearsal = (features, logits)
        return self._rehearsal

    # -- inference --------------------------------------------------------------------------------

    def _logits(self, features: SparseFeatures) -> np.ndarray:
        # `take` gathers the same rows into the same fresh C-ordered array as indexing does, in a
        # third of the time; `dot` makes the same sgemv call as `@` (the same bits) without the
        # generalised ufunc's dispatch (9.4 k -> 5.9 k instructions).
        column, intp = self._intp
        if column is not self._column:  # (a fitted, loaded or merged model sets `_column`)
            column = self._column
            intp = column.astype(np.intp) if column.size <= _INTP_COLUMN_MAX else column
            self._intp = (column, intp)
        rows = self._weights.take(intp[features.indices], 0)
        return features.values.astype(_F32).dot(rows) + self._bias

    def predict_proba(self, features: SparseFeatures) -> np.ndarray:
        """Probabilities over `classes` (in that order)."""
        if not self.classes:
            raise RuntimeError("DomainClassifier is not fitted")
        # The ufuncs' own reduce (what .max() and .sum() call through numpy's Python wrappers), in
        # place on the fresh logits array: the same float32 operations, for a third less time.
        z = self._logits(features)
        logits = z.tolist()
        # A handful of Python floats (exact copies of the float32s) find their max sooner than a
        # numpy reduction; it is the same value unless a NaN is among them, which their sum shows.
        z -= _max(z) if math.isnan(sum(logits)) else max(logits)
        p = np.exp(z, out=z)
        p /= _sum(p)
        return p

    def predict(self, features: SparseFeatures) -> tuple[str, float]:
        p = self.predict_proba(features)
        k = int(np.argmax(p))
        return self.classes[k], float(p[k])

    def predict_text(self, text: str) -> tuple[str, float]:
        return self.predict(self.hasher.transform(text))

    def _vocab(self) -> np.ndarray:
        """The hashed indices that have a row, sorted."""
        return np.flatnonzero(self._column < len(self._weights) - 1)

    # -- persistence ------------------------------------------------------------------------------

    def save(self, path: str | Path, **extra_meta: object) -> None:
        """A compressed .npz: vocabulary (hashed indices), weights, bias, classes, hasher settings,
        the replay prompts, and `extra_meta` (e.g. what the model was trained on)."""
        vocab = self._vocab()
        meta = {**extra_meta, "format": _FORMAT, "classes": list(self.classes), **self.hasher.config(),
                "replay": [list(pair) for pair in self.replay]}
        with open(path, "wb") as fh:
            np.savez_compressed(fh, meta=np.array(json.dumps(meta)), vocab=vocab.astype(np.int64),
                                order=self._column[vocab], weights=self._weights, bias=self._bias)

    @staticmethod
    def read_meta(path: str | Path) -> dict:
        with np.load(path, allow_pickle=False) as data:
            return json.loads(str(data["meta"]))

    @classmethod
    def load(cls, path: str | Path, hasher: FeatureHasher | None = None) -> DomainClassifier:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("format") != _FORMAT:
                raise ValueError(f"{path}: not a domain classifier ({meta.get('format')!r})")
            config = {k: meta[k] for k in _HASHER_KEYS if k in meta}
            hasher = hasher or FeatureHasher(**config)
            if hasher.config() != FeatureHasher(**config).config():
                raise ValueError(f"{path}: trained with features {config}, the hasher has {hasher.config()}")
            model = cls(hasher)
            weights = data["weights"]
            column = np.full(hasher.dim, len(weights) - 1, dtype=np.int32)
            column[data["vocab"]] = data["order"]
            model.classes = tuple(meta["classes"])
            model._column, model._weights, model._bias = column, weights, data["bias"]
            model.replay = tuple((str(t), str(c)) for t, c in meta.get("replay", ()))
        return model


def _adagrad(
    rows: Sequence[tuple[np.ndarray, np.ndarray]],
    y: np.ndarray,
    w: np.ndarray,
    b: np.ndarray,
    *,
    epochs: int,
    lr: float,
    seed: int,
    offsets: np.ndarray | None = None,
    trainable: np.ndarray | None = None,
    bias_step: float = 0.05,
) -> None:
    """Per-example AdaGrad on softmax cross-entropy, in place on `w` (its last row, for unknown
    features, stays zero) and `b`. `rows[i]` = (vocabulary rows, values) of example i;
    `offsets[i]` are fixed logits added to example i's; only the `trainable` columns move."""
    g2 = np.full(w.shape, 1e-6, dtype=np.float32)
    step = np.float32(lr)
    mask = None
    if trainable is not None:
        mask = np.zeros(w.shape[1], dtype=np.float32)
        mask[trainable] = 1.0
    rng = np.random.default_rng(seed)
    unknown = len(w) - 1
    for _ in range(epochs):
        for i in rng.permutation(len(rows)):
            cols, vals = rows[i]
            z = vals @ w[cols] + b
            if offsets is not None:
                z += offsets[i]
            z -= z.max()
            p = np.exp(z)
            p /= p.sum()
            p[y[i]] -= 1.0
            if mask is not None:
                p *= mask
            grad = vals[:, None] * p
            g2[cols] += grad * grad
            w[cols] -= step * grad / np.sqrt(g2[cols])
            w[unknown] = 0.0  # the shared row for out-of-vocabulary features stays zero
            b -= np.float32(bias_step) * step * p
