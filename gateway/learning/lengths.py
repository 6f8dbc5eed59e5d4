"""Expected completion tokens per model and domain, for the cost side of a learned operating point.

Models differ in how much they write, and by how much depends on the task: on the dev set one
model answers a physics question in 6 tokens where another reasons for 300. The engine's live
figure is one mean per model; this keeps a running mean per (model, domain), shrunk toward the
model's overall mean with ``prior_strength`` pseudo-requests, so a domain with few requests says
little. Learned by `gateway eval` from the labelled outcomes and saved with the router model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["OutputLengths"]


class OutputLengths:
    def __init__(self, *, prior_strength: float = 10.0, default: float = 512.0) -> None:
        self.prior_strength = prior_strength
        self.default = default  # a model never seen: the engine's own prior
        # model -> domain (None = all) -> [sum of tokens, count]
        self._sums: dict[str, dict[str | None, list[float]]] = {}

    def update(self, model: str, domain: str | None, tokens: float) -> None:
        per = self._sums.setdefault(model, {})
        for d in {None, domain}:
            s = per.setdefault(d, [0.0, 0.0])
            s[0] += float(tokens)
            s[1] += 1.0

    def mean(self, model: str, domain: str | None) -> float:
        per = self._sums.get(model)
        if not per or None not in per:
            return self.default
        total, n = per[None]
        overall = total / n
        if domain is None or domain not in per:
            return overall
        dt, dn = per[domain]
        k = self.prior_strength
        return (dt + k * overall) / (dn + k)

    def predict(
        self, models: Iterable[str], domain: str | None, domain_probs: Mapping[str, float] | None = None
    ) -> dict[str, float]:
        """Expected completion tokens per model; ``domain_probs`` mixes several domains."""
        if domain_probs:
            return {m: sum(p * self.mean(m, d) for d, p in domain_probs.items()) for m in models}
        return {m: self.mean(m, domain) for m in models}

    def to_json(self) -> dict[str, Any]:
        return {"prior_strength": self.prior_strength, "default": self.default,
                "sums": {m: [[d, s] for d, s in per.items()] for m, per in self._sums.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OutputLengths:
        out = cls(prior_strength=data["prior_strength"], default=data["default"])
        out._sums = {m: {d: list(s) for d, s in per} for m, per in data["sums"].items()}
        return out
