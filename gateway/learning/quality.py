"""Prompt-level quality: per model, P(good outcome | prompt), learned online from feedback.

The prediction for model m is a logistic model *offset* by the per-domain average:

    P(good) = sigmoid( logit(prior_m(domain)) + w_m . x )

- ``prior_m(d)`` is the Beta posterior mean of m's feedback in domain d, shrunk toward m's overall
  mean with ``prior_strength`` pseudo-samples (the same sums the stats store keeps per model x
  domain). With soft domain probabilities it is their probability-weighted mix.
- ``w_m . x`` is a per-model linear model on hashed prompt features (folded to ``2**n_bits``),
  trained by one AdaGrad logistic-loss step per feedback event. It only has to learn what the
  domain average misses, and it starts at zero, so with little feedback the model *is* the
  per-domain average and degrades to it gracefully.

Cheap (a gather and a dot product per request for all models at once), incremental (every
`update` is one SGD step), and explainable: `explain` lists the features whose weight moved this
prompt's estimate most. Scores may be fractional in [0, 1] (soft labels).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import NamedTuple

import numpy as np

from gateway.learning.features import SparseFeatures

__all__ = ["OnlineState", "PromptQualityModel"]


class OnlineState(NamedTuple):
    """What `update` changes, as parts that add up (gateway/learning/shared.py shares them between
    replicas by sending differences): per-model columns of row arrays, and Beta sums."""

    models: tuple[str, ...]  # the arrays' columns
    rows: np.ndarray | None  # the row indices the arrays hold (None: every row, in order)
    arrays: dict[str, np.ndarray]  # name -> float32 (len(rows) or dim, len(models))
    counts: dict[str, dict[str | None, tuple[float, float]]]  # model -> domain -> (sum score, sum 1 - score)

_FORMAT = "gateway-prompt-quality/1"
_EPS = 1e-4


def _logit(p: float) -> float:
    p = min(max(p, _EPS), 1.0 - _EPS)
    return math.log(p / (1.0 - p))


class PromptQualityModel:
    def __init__(
        self,
        *,
        n_bits: int = 16,
        learning_rate: float = 0.1,
        prior_strength: float = 10.0,
        use_features: bool = True,
    ) -> None:
        self.n_bits = n_bits
        self.dim = 1 << n_bits
        self.learning_rate = learning_rate
        self.prior_strength = prior_strength
        self.use_features = use_features
        self.models: list[str] = []
        self._col: dict[str, int] = {}
        self._w = np.zeros((self.dim, 0), dtype=np.float32)
        self._g2 = np.zeros((self.dim, 0), dtype=np.float32)
        # model -> domain (None = all domains) -> [sum(score), sum(1 - score)]
        self._counts: dict[str, dict[str | None, list[float]]] = {}

    # -- learning ---------------------------------------------------------------------------------

    def _column(self, model: str) -> int:
        j = self._col.get(model)
        if j is None:
            j = len(self.models)
            self.models.append(model)
            self._col[model] = j
            grow = np.zeros((self.dim, 1), dtype=np.float32)
            self._w = np.hstack((self._w, grow))
            self._g2 = np.hstack((self._g2, grow + 1e-6))
        return j

    def update(self, model: str, features: SparseFeatures | None, domain: str | None, score: float) -> None:
        """One feedback event: an SGD step on the feature model, then the Beta sums."""
        score = min(max(float(score), 0.0), 1.0)
        j = self._column(model)
        if features is not None and self.use_features and len(features):
            idx = features.indices & (self.dim - 1)
            vals = features.values.astype(np.float32)
            w = self._w[:, j]
            z = _logit(self.prior(model, domain)[0]) + float(vals @ w[idx])
            grad = (1.0 / (1.0 + math.exp(-z)) - score) * vals
            g2 = self._g2[:, j]
            np.add.at(g2, idx, grad * grad)
            np.add.at(w, idx, -self.learning_rate * grad / np.sqrt(g2[idx]))
        per = self._counts.setdefault(model, {})
        for d in {None, domain}:
            ab = per.setdefault(d, [0.0, 0.0])
            ab[0] += score
            ab[1] += 1.0 - score

    # -- inference --------------------------------------------------------------------------------

    def prior(self, model: str, domain: str | None) -> tuple[float, float]:
        """(per-domain posterior mean shrunk toward the model's overall mean, domain samples)."""
        per = self._counts.get(model, {})
        a, b = per.get(None, (0.0, 0.0))
        overall = (a + 1.0) / (a + b + 2.0)  # Laplace: an unseen model is a coin flip
        if domain is None:
            return overall, a + b
        da, db = per.get(domain, (0.0, 0.0))
        s = self.prior_strength
        return (da + s * overall) / (da + db + s), da + db

    def _prior_mix(self, model: str, domain: str | None, domain_probs: Mapping[str, float] | None) -> float:
        if not domain_probs:
            return self.prior(model, domain)[0]
        return sum(p * self.prior(model, d)[0] for d, p in domain_probs.items())

    def predict(
        self,
        features: SparseFeatures | None,
        domain: str | None,
        models: Iterable[str],
        *,
        domain_probs: Mapping[str, float] | None = None,
        use_features: bool | None = None,
    ) -> dict[str, float]:
        """P(good outcome) per model. ``domain_probs`` (domain -> probability) replaces the hard
        ``domain`` for the prior when given, so an uncertain inferred domain hedges between them."""
        models = list(models)
        z = np.array([_logit(self._prior_mix(m, domain, domain_probs)) for m in models])
        with_features = self.use_features if use_features is None else use_features
        if with_features and features is not None and len(features) and self.models:
            cols = [self._col.get(m, -1) for m in models]
            known = [i for i, c in enumerate(cols) if c >= 0]
            if known:
                idx = features.indices & (self.dim - 1)
                vals = features.values.astype(np.float32)
                sub = self._w[idx][:, [cols[i] for i in known]]
                z[known] += vals @ sub
        p = 1.0 / (1.0 + np.exp(-z))
        return {m: float(v) for m, v in zip(models, p, strict=True)}

    def contributions(self, features: SparseFeatures, model: str, top: int = 3) -> list[tuple[int, float]]:
        """The ``top`` (feature index, logit contribution) pairs by magnitude for ``model``."""
        return self.top_contributions(features, [model], top)[model]

    def top_contributions(
        self, features: SparseFeatures, models: Iterable[str], top: int = 3
    ) -> dict[str, list[tuple[int, float]]]:
        """`contributions` for several models with one gather (explanations run per request)."""
        models = list(models)
        out: dict[str, list[tuple[int, float]]] = {m: [] for m in models}
        known = [(m, self._col[m]) for m in models if m in self._col]
        if not known or not len(features):
            return out
        idx = features.indices & (self.dim - 1)
        contrib = features.values[:, None] * self._w[idx][:, [j for _, j in known]]
        k = min(top, len(idx))
        for c, (m, _) in enumerate(known):
            col = contrib[:, c]
            part = np.argpartition(-np.abs(col), k - 1)[:k]
            part = part[np.argsort(-np.abs(col[part]), kind="stable")]
            out[m] = [(int(features.indices[i]), float(col[i])) for i in part if col[i] != 0.0]
        return out

    def explain(
        self,
        features: SparseFeatures,
        domain: str | None,
        model: str,
        names: Mapping[int, str] | None = None,
        *,
        top: int = 3,
        domain_probs: Mapping[str, float] | None = None,
        estimate: float | None = None,
        contributions: list[tuple[int, float]] | None = None,
    ) -> str:
        """E.g. ``p=0.71: domain math prior 0.62 (n=640); +0.31 'integral', -0.12 'len~2^7'``.

        ``estimate`` and ``contributions`` skip recomputing what the caller already has."""
        p = estimate if estimate is not None else self.predict(
            features, domain, [model], domain_probs=domain_probs)[model]
        prior = self._prior_mix(model, domain, domain_probs)
        n = self.prior(model, domain)[1]
        basis = f"domain {domain}" if domain is not None else "overall"
        text = f"p={p:.2f}: {basis} prior {prior:.2f} (n={n:.0f})"
        if self.use_features:
            pairs = contributions if contributions is not None else self.contributions(features, model, top)
            parts = [f"{c:+.2f} '{(names or {}).get(i, f'#{i}')}'" for i, c in pairs]
            if parts:
                text += "; " + ", ".join(parts)
        return text

    # -- online state (shared between replicas: gateway/learning/shared.py) ------------------------

    def online_state(self) -> OnlineState:
        """A copy of everything online learning changes (every row)."""
        counts = {m: {d: (ab[0], ab[1]) for d, ab in per.items()} for m, per in self._counts.items()}
        return OnlineState(tuple(self.models), None, {"w": self._w.copy(), "g2": self._g2.copy()}, counts)

    def add_online(self, delta: OnlineState) -> None:
        """Add a difference of two `online_state`s (columns matched by model name; a model not seen
        yet gets a fresh column first)."""
        cols = [self._column(m) for m in delta.models]
        at = (slice(None), cols) if delta.rows is None else np.ix_(delta.rows, cols)
        for name, target in (("w", self._w), ("g2", self._g2)):
            part = delta.arrays.get(name)
            if part is not None and part.size:
                target[at] += part
        for m, per in delta.counts.items():
            mine = self._counts.setdefault(m, {})
            for d, (a, b) in per.items():
                ab = mine.setdefault(d, [0.0, 0.0])
                ab[0] += a
                ab[1] += b

    # -- persistence ------------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """A compressed .npz: only non-zero weight rows are stored."""
        rows = np.flatnonzero(np.any(self._w != 0.0, axis=1))
        meta = {
            "format": _FORMAT, "n_bits": self.n_bits, "learning_rate": self.learning_rate,
            "prior_strength": self.prior_strength, "use_features": self.use_features,
            "models": self.models,
            "counts": {m: [[d, ab] for d, ab in per.items()] for m, per in self._counts.items()},
        }
        with open(path, "wb") as fh:
            np.savez_compressed(fh, meta=np.array(json.dumps(meta)), rows=rows.astype(np.int64),
                                w=self._w[rows], g2=self._g2[rows])

    @classmethod
    def load(cls, path: str | Path) -> PromptQualityModel:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("format") != _FORMAT:
                raise ValueError(f"{path}: not a prompt quality model ({meta.get('format')!r})")
            model = cls(n_bits=meta["n_bits"], learning_rate=meta["learning_rate"],
                        prior_strength=meta["prior_strength"], use_features=meta["use_features"])
            for name in meta["models"]:
                model._column(name)
            model._w[data["rows"]] = data["w"]
            model._g2[data["rows"]] = data["g2"]
            model._counts = {m: {d: list(ab) for d, ab in per} for m, per in meta["counts"].items()}
        return model
