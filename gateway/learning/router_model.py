"""The one call the request path makes per request: features, domain, per-model quality.

`RouterModel.estimate(text, models)` hashes the prompt once, infers the domain when none was
given (header or policy), and predicts P(good outcome) per candidate model, returning what goes
into `RequestContext` (`domain`, `domain_source`, `quality_estimates`, `quality_explanations`)
plus the features to hand to `FeedbackProcessor.remember` once the request is served.

Modes: ``prompt`` uses the prompt-level feature model on top of the per-domain prior; ``domain``
uses only the per-domain Beta prior (the baseline `gateway eval` compares against); ``knn`` shrinks
the outcomes of the most similar train prompts toward that prior (`PromptIndex`). `gateway eval`
reports all of them and records which one won on out-of-fold estimates of the train split.

A router model saved by `gateway eval` also carries what a quality target needs: the expected
completion tokens per model and domain (`OutputLengths`, for per-request cost) and the
calibration table (`CalibrationTable`) that maps a target to an operating point, with a
`TargetMonitor` that checks it against live feedback.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

import numpy as np

from gateway._atomic import write_directory
from gateway.learning.domain import DomainClassifier
from gateway.learning.features import FeatureHasher, SparseFeatures
from gateway.learning.lengths import OutputLengths
from gateway.learning.neighbours import PromptIndex
from gateway.learning.quality import PromptQualityModel
from gateway.learning.target import CalibrationTable, TargetMonitor

__all__ = ["QUALITY_MODES", "RouterModel", "RouterModelError", "RoutingEstimate"]


class RouterModelError(ValueError):
    """A router model directory that cannot be read: a user's error, said in one line."""

QUALITY_MODES = ("prompt", "domain", "knn")
_FORMAT = "gateway-router-model/1"
#: The files a router model directory holds (`save` replaces them as one).
_FILES = ("router.json", "domain.npz", "quality.npz", "index.npz", "calibration.json")


class RoutingEstimate(NamedTuple):
    domain: str | None
    domain_confidence: float | None  # None when the domain was given, not inferred
    quality_estimates: Mapping[str, float] | None
    explanations: Mapping[str, str] | None
    features: SparseFeatures
    domain_source: str | None  # "header" / "policy" (given), "inferred", or None


class RouterModel:
    def __init__(
        self,
        hasher: FeatureHasher | None = None,
        classifier: DomainClassifier | None = None,
        quality: PromptQualityModel | None = None,
        *,
        mode: str = "prompt",
        soft_domains: int = 3,
        index: PromptIndex | None = None,
        lengths: OutputLengths | None = None,
        calibration: CalibrationTable | None = None,
    ) -> None:
        if mode not in QUALITY_MODES:
            raise ValueError(f"unknown quality mode {mode!r}; allowed: {', '.join(QUALITY_MODES)}")
        self.hasher = hasher or (classifier.hasher if classifier is not None else FeatureHasher())
        self.classifier = classifier
        self.quality = quality
        self.mode = mode
        # An inferred domain hedges the quality prior over its top-k classes by probability.
        self.soft_domains = soft_domains
        self.index = index
        self.lengths = lengths
        # The calibration table and its live check (runtime state, never saved).
        self.calibration: CalibrationTable | None = None
        self.monitor: TargetMonitor | None = None
        self.set_calibration(calibration)

    def set_calibration(self, table: CalibrationTable | None) -> None:
        """Attach a calibration table (with a fresh live check of it)."""
        self.calibration = table
        self.monitor = TargetMonitor(table.reference) if table is not None else None

    def feedback_listeners(self) -> tuple:
        """Callbacks for `FeedbackProcessor(listeners=...)`: the calibration table's live check."""
        return (self.monitor.observe,) if self.monitor is not None else ()

    def expected_output(self, models: Sequence[str], domain: str | None) -> dict[str, float] | None:
        """Expected completion tokens per model for a request of ``domain`` (None: not learned)."""
        return self.lengths.predict(models, domain) if self.lengths is not None else None

    def infer_domain(self, features: SparseFeatures) -> tuple[str | None, float | None, dict[str, float] | None]:
        """(argmax domain, its probability, top-k domain -> renormalised probability)."""
        classifier = self.classifier
        if classifier is None or not classifier.classes:  # (`fitted`, without the property call)
            return None, None, None
        p = classifier.predict_proba(features)
        # A handful of classes: sorting their Python floats (exact copies of the float32s) is
        # cheaper than argsort on the array, and stable like it (ties keep class order).
        values = p.tolist()
        top = sorted(range(len(values)), key=values.__getitem__, reverse=True)[: max(1, self.soft_domains)]
        if len(top) < 8:
            # Summed in float32, left to right from the first, which is what numpy's add.reduce
            # (`.sum()`) does below 8 elements; numpy scalars skip building an array to reduce.
            total = p[top[0]]
            for i in top[1:]:
                total = total + p[i]
            mass = float(total)
        else:
            mass = float(np.add.reduce(p[top]))
        classes = classifier.classes
        probs = {}
        for i in top:  # (a comprehension builds and calls a function: 1 k of ~4 k instructions)
            probs[classes[i]] = values[i] / mass
        return classes[top[0]], values[top[0]], probs

    def estimate(
        self,
        text: str,
        models: Sequence[str],
        *,
        domain: str | None = None,
        domain_source: str = "header",
        explain: bool = True,
        mode: str | None = None,
        features: SparseFeatures | None = None,
    ) -> RoutingEstimate:
        """Features (computed unless given), domain (inferred unless given) and estimates."""
        if features is None:
            features = self.hasher.transform(text)
        confidence: float | None = None
        probs: dict[str, float] | None = None
        if domain is None:
            domain, confidence, probs = self.infer_domain(features)
            domain_source = "inferred" if domain is not None else None  # type: ignore[assignment]
        quality = self.quality
        if quality is None:
            return RoutingEstimate(domain, confidence, None, None, features, domain_source)
        mode = mode or self.mode
        use_features = mode == "prompt"
        estimates = quality.predict(features, domain, models, domain_probs=probs, use_features=use_features)
        if mode == "knn" and self.index is not None:
            estimates = self.index.predict(features, models, estimates)
        explanations = None
        if explain:
            if mode == "knn" and self.index is not None:
                explanations = self._explain_knn(features, domain, models, probs, estimates)
            else:
                explanations = self._explain(text, features, domain, models, probs, use_features, estimates)
        return RoutingEstimate(
            domain, confidence, MappingProxyType(estimates), explanations, features, domain_source
        )

    def _explain(
        self,
        text: str,
        features: SparseFeatures,
        domain: str | None,
        models: Sequence[str],
        probs: Mapping[str, float] | None,
        use_features: bool,
        estimates: Mapping[str, float],
    ) -> Mapping[str, str]:
        quality = self.quality
        assert quality is not None
        names: Mapping[int, str] = {}
        top: dict[str, list[tuple[int, float]]] = {m: [] for m in models}
        if use_features:
            top = quality.top_contributions(features, models)
            wanted = {i for pairs in top.values() for i, _ in pairs}
            names = self.hasher.describe(text, np.fromiter(wanted, dtype=np.int64, count=len(wanted)))
        saved, quality.use_features = quality.use_features, use_features
        try:
            out = {m: quality.explain(features, domain, m, names, domain_probs=probs, estimate=estimates[m],
                                      contributions=top[m]) for m in models}
        finally:
            quality.use_features = saved
        return MappingProxyType(out)

    def _explain_knn(
        self,
        features: SparseFeatures,
        domain: str | None,
        models: Sequence[str],
        probs: Mapping[str, float] | None,
        estimates: Mapping[str, float],
    ) -> Mapping[str, str]:
        quality, index = self.quality, self.index
        assert quality is not None and index is not None
        _, w = index.neighbours(features)
        basis = f"domain {domain}" if domain is not None else "overall"
        priors = quality.predict(features, domain, models, domain_probs=probs, use_features=False)
        return MappingProxyType({
            m: f"p={estimates[m]:.2f}: {len(w)} most similar train prompts (weight {float(w.sum()):.1f}) "
               f"over the {basis} prior {priors[m]:.2f} (weight {index.strength:g})"
            for m in models
        })

    # -- persistence ------------------------------------------------------------------------------

    def save(self, directory: str | Path) -> None:
        """``router.json`` + ``domain.npz`` + ``quality.npz`` (+ ``index.npz``, ``calibration.json``)
        in ``directory``."""
        # All the files or none, and no file of the model saved there before: a part the new model
        # lacks (an index, say) would otherwise be loaded with it (gateway/_atomic.py).
        write_directory(directory, self._write, _FILES, last="router.json")

    def _write(self, path: Path) -> None:
        if self.classifier is not None and self.classifier.fitted:
            self.classifier.save(path / "domain.npz")
        if self.quality is not None:
            self.quality.save(path / "quality.npz")
        if self.index is not None and self.index.fitted:
            self.index.save(path / "index.npz")
        if self.calibration is not None:
            self.calibration.save(path / "calibration.json")
        meta = {"format": _FORMAT, "mode": self.mode, "soft_domains": self.soft_domains, **self.hasher.config(),
                "output_lengths": self.lengths.to_json() if self.lengths is not None else None}
        (path / "router.json").write_text(json.dumps(meta, indent=2) + "\n")

    @classmethod
    def load(cls, directory: str | Path) -> RouterModel:
        try:
            return cls._load(Path(directory))
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            if isinstance(exc, RouterModelError) or (isinstance(exc, OSError) and exc.filename is not None):
                raise
            # A file cut short or from something else: say which model, not numpy's or json's insides.
            raise RouterModelError(f"{directory}: not a readable router model ({type(exc).__name__}: {exc})") from None

    @classmethod
    def _load(cls, path: Path) -> RouterModel:
        meta = json.loads((path / "router.json").read_text())
        if meta.get("format") != _FORMAT:
            raise RouterModelError(f"{path}: not a router model directory ({meta.get('format')!r})")
        hasher = FeatureHasher(**{k: meta[k] for k in ("n_bits", "bigrams", "char_ngrams", "char_weight") if k in meta})
        classifier = DomainClassifier.load(path / "domain.npz", hasher) if (path / "domain.npz").exists() else None
        quality = PromptQualityModel.load(path / "quality.npz") if (path / "quality.npz").exists() else None
        index = PromptIndex.load(path / "index.npz") if (path / "index.npz").exists() else None
        calibration = (CalibrationTable.load(path / "calibration.json")
                       if (path / "calibration.json").exists() else None)
        lengths = OutputLengths.from_json(meta["output_lengths"]) if meta.get("output_lengths") else None
        return cls(hasher, classifier, quality, mode=meta["mode"], soft_domains=meta["soft_domains"],
                   index=index, lengths=lengths, calibration=calibration)
