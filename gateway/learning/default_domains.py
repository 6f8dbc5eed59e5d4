"""The default domain model: shipped trained on `data/domains.jsonl`, loaded at start-up.

The corpus (written for this project, see data/README.md) labels several thousand prompts with the
six default domains and splits them once into a training part and a held-out part (whole template
families, unseen slot values, a third of the hand-written prompts, an everyday set). The model is
`DomainClassifier.fit_features` (what `gateway eval --save-model` trains) on the training part,
averaged over a few seeds, with word and character n-gram features; the file records the corpus
hash. Rebuild it, and print the held-out report, with::

    python -m gateway.learning.default_domains train      # ~1 min; rewrites data/default-domains.npz
    python -m gateway.learning.default_domains evaluate   # held-out figures + confusion matrix
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gateway.learning.domain import DomainClassifier
from gateway.learning.features import FeatureHasher

__all__ = [
    "CORPUS_PATH",
    "DEFAULT_DOMAINS",
    "MODEL_PATH",
    "CorpusRow",
    "DomainEvaluation",
    "corpus_sha256",
    "evaluate",
    "load_corpus",
    "load_default",
    "train_default",
]

DEFAULT_DOMAINS = ("code", "math", "reasoning", "writing", "chat", "extraction")
_DATA = Path(__file__).parent / "data"
CORPUS_PATH = _DATA / "domains.jsonl"
MODEL_PATH = _DATA / "default-domains.npz"
# Character 3-5-grams recognise "sorted" from "sorting" and cognates across languages; chosen, with
# their weight, by leave-family-out cross-validation on the training part.
_HASHER = {"char_ngrams": (3, 5), "char_weight": 0.3}
_SEEDS = 5
_REPLAY_PER_DOMAIN = 40  # training prompts kept in the model for `DomainClassifier.extended`


@dataclass(frozen=True, slots=True)
class CorpusRow:
    id: str
    domain: str
    split: str  # train | test
    source: str  # template | handwritten | everyday
    family: str
    lang: str
    text: str


def load_corpus(path: str | Path = CORPUS_PATH) -> list[CorpusRow]:
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            rows.append(CorpusRow(**json.loads(line)))
    return rows


def corpus_sha256(path: str | Path = CORPUS_PATH) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def train_default(rows: Sequence[CorpusRow], *, seeds: int = _SEEDS) -> DomainClassifier:
    """The default model from the corpus's training part (a few seconds per seed)."""
    train = [r for r in rows if r.split == "train"]
    hasher = FeatureHasher(**_HASHER)
    features = [hasher.transform(r.text) for r in train]
    labels = [r.domain for r in train]
    model = DomainClassifier.averaged(
        [DomainClassifier(hasher, seed=s).fit_features(features, labels) for s in range(seeds)]
    )
    rng = random.Random(0)
    model.replay = tuple(
        (r.text, r.domain)
        for domain in sorted({r.domain for r in train})
        for r in rng.sample([r for r in train if r.domain == domain], _REPLAY_PER_DOMAIN)
    )
    return model


@functools.lru_cache(maxsize=1)
def load_default() -> DomainClassifier | None:
    """The shipped model (read once per process; callers must not modify it), None if absent."""
    if not MODEL_PATH.exists():
        return None
    return DomainClassifier.load(MODEL_PATH)


@dataclass(frozen=True)
class DomainEvaluation:
    """Outcome counts at a confidence threshold; an abstention (best guess below it) is not right."""

    n: int
    right: int
    confidently_wrong: int
    abstained: int
    labels: tuple[str, ...]  # confusion rows (true) and columns (predicted; last: abstained)
    confusion: np.ndarray

    @property
    def right_rate(self) -> float:
        return self.right / self.n

    @property
    def confidently_wrong_rate(self) -> float:
        return self.confidently_wrong / self.n

    def markdown(self) -> str:
        head = "| true \\ inferred | " + " | ".join(self.labels) + " | abstained | n | right |"
        lines = [head, "|---|" + "---:|" * (len(self.labels) + 3)]
        for i, label in enumerate(self.labels):
            row = self.confusion[i]
            cells = [f"**{v}**" if j == i else str(v) for j, v in enumerate(row[:-1])]
            n = int(row.sum())
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {row[-1]} | {n} | {row[i] / max(n, 1):.1%} |")
        return "\n".join(lines)


def evaluate(model: DomainClassifier, rows: Sequence[CorpusRow], min_confidence: float = 0.5) -> DomainEvaluation:
    present = {r.domain for r in rows} | set(model.classes)
    labels = tuple(d for d in DEFAULT_DOMAINS if d in present) + tuple(sorted(present - set(DEFAULT_DOMAINS)))
    confusion = np.zeros((len(labels), len(labels) + 1), dtype=np.int64)
    right = wrong = abstained = 0
    for r in rows:
        domain, p = model.predict_text(r.text)
        i = labels.index(r.domain)
        if p < min_confidence:
            abstained += 1
            confusion[i, -1] += 1
            continue
        confusion[i, labels.index(domain)] += 1
        if domain == r.domain:
            right += 1
        else:
            wrong += 1
    return DomainEvaluation(len(rows), right, wrong, abstained, labels, confusion)


def _report(model: DomainClassifier, rows: Sequence[CorpusRow]) -> str:
    test = [r for r in rows if r.split == "test"]
    parts = {
        "held-out (all)": test,
        "held-out template families": [r for r in test if r.source == "template"],
        "  of which the second batch (v2)": [r for r in test if "/v2-" in r.family],
        "held-out hand-written": [r for r in test if r.source == "handwritten"],
        "everyday set": [r for r in test if r.source == "everyday"],
        "non-English / mixed": [r for r in test if r.lang != "en"],
    }
    lines = ["| part | n | right | confidently wrong | abstained |", "|---|---:|---:|---:|---:|"]
    for name, part in parts.items():
        e = evaluate(model, part)
        lines.append(f"| {name} | {e.n} | {e.right_rate:.1%} | {e.confidently_wrong_rate:.1%} | "
                     f"{e.abstained / e.n:.1%} |")
    return "\n".join(lines) + "\n\n" + evaluate(model, test).markdown()


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m gateway.learning.default_domains", description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=["train", "evaluate"])
    args = ap.parse_args(argv)
    rows = load_corpus()
    if args.command == "train":
        model = train_default(rows)
        model.save(MODEL_PATH, corpus_sha256=corpus_sha256(), seeds=_SEEDS)
        print(f"wrote {MODEL_PATH} ({MODEL_PATH.stat().st_size // 1024} KiB)")
    else:
        model = DomainClassifier.load(MODEL_PATH)
    print(_report(model, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
