"""kNN over dense prompt vectors learned from the train split: per-prompt quality without domains.

`PromptIndex.fit` learns a small dense space from the hashed features of the train prompts (latent
semantic analysis: TF-IDF weighting, then a seeded randomized truncated SVD, Halko et al. 2011,
with two power iterations) and keeps every train prompt's vector with its outcome per model.
`predict` embeds a new prompt (a gather of its features' rows and one small product), takes the
``k`` most similar train prompts by cosine, and returns per model the similarity-weighted mean
outcome, shrunk toward a prior (the per-domain average) with ``strength`` pseudo-prompts:

    q_m = (sum_i w_i * s_im + strength * prior_m) / (sum_i w_i + strength),  w_i = max(cos_i, 0)^2

This is the signal per-domain averages cannot carry: on a one-domain data set every prompt gets the
same domain average, while its neighbours differ. Everything is learned by `gateway eval` from the
user's labelled data and saved with the router model; nothing is downloaded. Inference is about
0.1 ms for a few thousand train prompts (bench/bench_learning.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from gateway.learning.features import SparseFeatures

__all__ = ["PromptIndex"]

_FORMAT = "gateway-prompt-index/1"


class PromptIndex:
    """Dense prompt vectors + outcomes of the train prompts; `predict` is a kNN mean."""

    def __init__(self, *, dim: int = 32, min_df: int = 3, k: int = 30, strength: float = 5.0, seed: int = 0,
                 power_iterations: int = 1) -> None:
        self.dim = dim
        self.power_iterations = power_iterations
        self.min_df = min_df
        self.k = k
        self.strength = strength
        self.seed = seed
        self.models: tuple[str, ...] = ()
        self._column = np.zeros(0, dtype=np.int32)  # hashed index -> vocabulary row (-1: none)
        self._idf = np.zeros(0, dtype=np.float32)
        self._proj = np.zeros((0, dim), dtype=np.float32)  # (vocab, dim)
        self._vectors = np.zeros((0, dim), dtype=np.float32)  # unit rows, one per train prompt
        self._outcomes = np.zeros((0, 0), dtype=np.float32)  # (train prompts, models)

    @property
    def fitted(self) -> bool:
        return len(self._vectors) > 0

    def __len__(self) -> int:
        return len(self._vectors)

    # -- fitting ----------------------------------------------------------------------------------

    def _columns(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions in ``indices`` that are in the vocabulary, their vocabulary columns)."""
        space = len(self._column)
        col = self._column[np.minimum(indices, space - 1)]
        hit = (col >= 0) & (indices < space)
        return hit, col[hit]

    def _rows(self, features: Sequence[SparseFeatures]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """CSR (row pointers, columns, values) of TF-IDF rows over the vocabulary, L2-normalised."""
        cols, vals, ptr = [], [], [0]
        for f in features:
            hit, c = self._columns(f.indices)
            v = np.abs(f.values[hit]).astype(np.float32) * self._idf[c]
            norm = float(np.sqrt(v @ v))
            cols.append(c)
            vals.append(v / norm if norm > 0 else v)
            ptr.append(ptr[-1] + len(c))
        return np.array(ptr), np.concatenate(cols).astype(np.int64), np.concatenate(vals)

    @staticmethod
    def _spmm(ptr: np.ndarray, idx: np.ndarray, vals: np.ndarray, dense: np.ndarray) -> np.ndarray:
        """(sparse rows given by ``ptr``/``idx``/``vals``) @ ``dense``, in chunks of about 2**18
        non-zeros so the (non-zeros, k) temporary stays small."""
        n = len(ptr) - 1
        out = np.zeros((n, dense.shape[1]), dtype=np.float64)
        dense = dense.astype(np.float32, copy=False)
        start = 0
        while start < n:
            stop = int(np.searchsorted(ptr, ptr[start] + (1 << 18), side="right")) - 1
            stop = min(max(stop, start + 1), n)
            lo, hi = int(ptr[start]), int(ptr[stop])
            if hi > lo:
                prod = dense[idx[lo:hi]] * vals[lo:hi, None]
                heads = ptr[start:stop] - lo
                nonempty = ptr[start + 1:stop + 1] > ptr[start:stop]
                out[start:stop][nonempty] = np.add.reduceat(prod, heads[nonempty], axis=0)
            start = stop
        return out

    def fit(self, features: Sequence[SparseFeatures], outcomes: np.ndarray, models: Sequence[str]) -> PromptIndex:
        """``outcomes[i, j]``: score of ``models[j]`` on train prompt i, in [0, 1]."""
        outcomes = np.asarray(outcomes, dtype=np.float32)
        if outcomes.shape != (len(features), len(models)):
            raise ValueError(f"outcomes must be (prompts, models) = {(len(features), len(models))}, "
                             f"got {outcomes.shape}")
        if len(features) < 2:
            raise ValueError("need at least two train prompts")
        n_bits = max(int(f.indices.max()) for f in features if len(f)).bit_length() if len(features) else 1
        space = 1 << max(n_bits, 8)
        df = np.bincount(np.concatenate([f.indices for f in features]), minlength=space)
        vocab = np.flatnonzero(df >= self.min_df)
        self._column = np.full(space, -1, dtype=np.int32)
        self._column[vocab] = np.arange(len(vocab), dtype=np.int32)
        n = len(features)
        self._idf = (np.log((1.0 + n) / (1.0 + df[vocab])) + 1.0).astype(np.float32)
        ptr, cols, vals = self._rows(features)
        v = len(vocab)
        # The transpose (CSC), for X^T @ dense.
        by_col = np.argsort(cols, kind="stable")
        rows = np.repeat(np.arange(n), np.diff(ptr))[by_col]
        t_ptr = np.concatenate(([0], np.cumsum(np.bincount(cols, minlength=v))))
        t_vals = vals[by_col]

        def x_times(d: np.ndarray) -> np.ndarray:
            return self._spmm(ptr, cols, vals, d)

        def xt_times(d: np.ndarray) -> np.ndarray:
            return self._spmm(t_ptr, rows, t_vals, d)

        dim = max(1, min(self.dim, n - 1, v))
        # Randomized range finder with power iterations (orthonormalised on the small, prompt
        # side only), then the SVD of B = Q^T X through its (l x l) Gram matrix.
        rng = np.random.default_rng(self.seed)
        y = x_times(rng.standard_normal((v, dim + 10)))
        for _ in range(self.power_iterations):
            q, _ = np.linalg.qr(y)
            y = x_times(xt_times(q))
        q, _ = np.linalg.qr(y)
        b_t = xt_times(q)  # (vocab, l) = X^T Q = B^T
        evals, u = np.linalg.eigh(b_t.T @ b_t)  # B B^T = U S^2 U^T
        top = np.argsort(-evals)[:dim]
        s = np.sqrt(np.maximum(evals[top], 0.0))
        keep = s > 1e-9
        # Right singular vectors V = B^T U / S; the projection X -> X V / S maps to U-coordinates.
        self._proj = (b_t @ u[:, top[keep]] / (s[keep] ** 2)).astype(np.float32)
        self.dim = int(self._proj.shape[1])
        self._vectors = self._unit(x_times(self._proj)).astype(np.float32)
        self._outcomes = outcomes
        self.models = tuple(models)
        return self

    @staticmethod
    def _unit(m: np.ndarray) -> np.ndarray:
        norms = np.linalg.norm(m, axis=1, keepdims=True)
        return m / np.where(norms > 0, norms, 1.0)

    # -- inference --------------------------------------------------------------------------------

    def embed(self, features: SparseFeatures) -> np.ndarray:
        """The prompt's unit vector in the learned space (zeros when no feature is known)."""
        hit, c = self._columns(features.indices)
        w = np.abs(features.values[hit]).astype(np.float32) * self._idf[c]
        vec = w @ self._proj[c]
        norm = float(np.sqrt(vec @ vec))
        return vec / norm if norm > 0 else vec

    def neighbours(self, features: SparseFeatures) -> tuple[np.ndarray, np.ndarray]:
        """(train prompt indices, weights) of the ``k`` nearest train prompts."""
        sims = self._vectors @ self.embed(features)
        k = min(self.k, len(sims))
        top = np.argpartition(-sims, k - 1)[:k]
        w = np.maximum(sims[top], 0.0) ** 2
        return top, w

    def predict(self, features: SparseFeatures, models: Sequence[str], prior: Mapping[str, float]) -> dict[str, float]:
        """Per model: the neighbours' weighted mean outcome shrunk toward ``prior[model]``; models
        the index has no outcomes for get their prior."""
        top, w = self.neighbours(features)
        total = float(w.sum()) + self.strength
        means = (w @ self._outcomes[top]) if len(top) else np.zeros(len(self.models))
        col = {m: j for j, m in enumerate(self.models)}
        out = {}
        for m in models:
            p = prior[m]
            j = col.get(m)
            out[m] = p if j is None else float((means[j] + self.strength * p) / total)
        return out

    # -- persistence ------------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """A compressed .npz; the projection is stored as float16 (about 8 MB for 60k features)."""
        meta = {"format": _FORMAT, "dim": self.dim, "min_df": self.min_df, "k": self.k,
                "strength": self.strength, "seed": self.seed, "models": list(self.models)}
        with open(path, "wb") as fh:
            vocab = np.flatnonzero(self._column >= 0)
            vocab = vocab[np.argsort(self._column[vocab])]
            np.savez_compressed(fh, meta=np.array(json.dumps(meta)), space=np.array(len(self._column)),
                                vocab=vocab, idf=self._idf,
                                proj=self._proj.astype(np.float16), vectors=self._vectors.astype(np.float16),
                                outcomes=self._outcomes.astype(np.float16))

    @classmethod
    def load(cls, path: str | Path) -> PromptIndex:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("format") != _FORMAT:
                raise ValueError(f"{path}: not a prompt index ({meta.get('format')!r})")
            index = cls(dim=meta["dim"], min_df=meta["min_df"], k=meta["k"], strength=meta["strength"],
                        seed=meta["seed"])
            index.models = tuple(meta["models"])
            index._column = np.full(int(data["space"]), -1, dtype=np.int32)
            index._column[data["vocab"]] = np.arange(len(data["vocab"]), dtype=np.int32)
            index._idf = data["idf"]
            index._proj = data["proj"].astype(np.float32)
            index._vectors = index._unit(data["vectors"].astype(np.float32)).astype(np.float32)
            index._outcomes = data["outcomes"].astype(np.float32)
        return index
