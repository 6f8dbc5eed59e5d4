"""Quality targets: "95 % of the best model's quality at the lowest cost", made concrete.

A target names what the user cares about, relative to a **reference**: the best single model on
the labelled data (the most accurate one; the cheaper on a tie):

- ``quality``: reach at least this share of the reference's mean quality, as cheaply as possible;
- ``cost``: spend at most this share of what sending everything to the reference would cost, for
  the best quality that buys;
- ``strong``: send at most this share of requests to the reference (a cap on the frontier model's
  traffic), for the best quality under that cap.

**Calibration table** (`CalibrationTable`, made by ``gateway eval --save-model``): the learned
router ranks by ``quality - lam * cost`` (`gateway.selection.frontier.Frontier`); on the user's
labelled data, with out-of-fold estimates (each prompt estimated by a router that never saw it),
every ``lam`` of a sweep gives a realised quality share, cost share and reference share. Those
three are made monotone in ``lam`` (isotonic regression, so sampling noise cannot make a dearer
setting look worse), and a target picks the cheapest setting that meets it (``quality``), or the
dearest that stays under the cap (``cost``, ``strong``). The table's **knee** (the vertex of its
cost-quality hull farthest above the chord from its cheapest to its best point) is the operating
point of ``balanced`` when no target is given.

**Live correction** (`TargetMonitor`): each routed request remembers the quality the router
expected from the model it chose and from the reference; `POST /v1/feedback` scores arrive for
some of them. The live quality share is ``sum(score) / sum(expected reference quality)``, with the
reference's expectation corrected by its own scored requests' residuals. When it falls short of
what the table promised, later lookups aim higher by the shortfall, shrunk by ``n / (n + 100)``.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

__all__ = [
    "TARGET_KINDS",
    "CalibrationRow",
    "CalibrationTable",
    "QualityTarget",
    "TargetMonitor",
    "isotonic",
]

TargetKind = Literal["quality", "cost", "strong"]
TARGET_KINDS: tuple[str, ...] = ("quality", "cost", "strong")
_FORMAT = "gateway-calibration/1"


@dataclass(frozen=True, slots=True)
class QualityTarget:
    kind: TargetKind
    value: float  # a share in (0, 1]
    source: str = "policy"  # header | policy

    def describe(self, reference: str) -> str:
        pct = f"{self.value:.0%}" if abs(self.value * 100 - round(self.value * 100)) < 1e-9 else f"{self.value:.1%}"
        if self.kind == "quality":
            return f"target {pct} of {reference}'s quality"
        if self.kind == "cost":
            return f"target at most {pct} of {reference}'s cost"
        return f"target at most {pct} of traffic on {reference}"


@dataclass(frozen=True, slots=True)
class CalibrationRow:
    lam: float
    quality_share: float  # monotone (isotonic) in lam
    cost_share: float
    strong_share: float
    raw_quality_share: float  # as measured at this lam
    raw_cost_share: float


def isotonic(y: Sequence[float], increasing: bool = True) -> np.ndarray:
    """Least-squares monotone fit (pool adjacent violators), equal weights."""
    v = np.asarray(y, dtype=float) if increasing else -np.asarray(y, dtype=float)
    blocks: list[list[float]] = []  # [mean, count]
    for x in v:
        blocks.append([x, 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, n2 = blocks.pop()
            m1, n1 = blocks.pop()
            blocks.append([(m1 * n1 + m2 * n2) / (n1 + n2), n1 + n2])
    out = np.concatenate([np.full(int(n), m) for m, n in blocks])
    return out if increasing else -out


@dataclass
class CalibrationTable:
    """Rows sorted cheapest first (``lam`` descending). See the module docstring."""

    reference: str
    reference_quality: float  # mean score of the reference on the calibration prompts
    reference_cost: float  # its mean cost per request (USD): the cost scale of ``lam``
    rows: list[CalibrationRow]
    knee: int
    prompts: int
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        reference: str,
        reference_quality: float,
        reference_cost: float,
        lams: Sequence[float],
        quality_share: Sequence[float],
        cost_share: Sequence[float],
        strong_share: Sequence[float],
        knee_lam: float,
        *,
        prompts: int,
        source: str = "",
    ) -> CalibrationTable:
        """Rows from a sweep (any order); ``knee_lam`` is the default operating point's ``lam``."""
        order = np.argsort(-np.asarray(lams, float), kind="stable")  # cheapest first
        lam = np.asarray(lams, float)[order]
        q, c, s = (np.asarray(a, float)[order] for a in (quality_share, cost_share, strong_share))
        qi, ci, si = isotonic(q), isotonic(c), isotonic(s)
        rows = [CalibrationRow(float(lam[i]), float(qi[i]), float(ci[i]), float(si[i]), float(q[i]), float(c[i]))
                for i in range(len(lam))]
        knee = int(np.argmin(np.abs(lam - knee_lam)))
        return cls(reference, float(reference_quality), float(reference_cost), rows, knee, int(prompts), source)

    # -- lookups ----------------------------------------------------------------------------------

    def lookup(self, target: QualityTarget | None, shortfall: float = 0.0) -> tuple[int, bool]:
        """(row index, met) for ``target`` (the knee for None). ``shortfall`` raises a quality
        target by what live feedback says the table over-promises. ``met`` is False when no row
        reaches the target; the closest row is returned then."""
        rows = self.rows
        if target is None:
            return self.knee, True
        if target.kind == "quality":
            want = target.value + shortfall
            for i, r in enumerate(rows):
                if r.quality_share >= want - 1e-12:
                    return i, True
            return len(rows) - 1, False
        key = (lambda r: r.cost_share) if target.kind == "cost" else (lambda r: r.strong_share)
        ok = [i for i, r in enumerate(rows) if key(r) <= target.value + 1e-12]
        if not ok:
            return 0, False
        return ok[-1], True

    # -- persistence ------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {"format": _FORMAT, "reference": self.reference, "reference_quality": self.reference_quality,
                "reference_cost": self.reference_cost, "knee": self.knee, "prompts": self.prompts,
                "source": self.source, "extra": self.extra, "rows": [asdict(r) for r in self.rows]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CalibrationTable:
        if data.get("format") != _FORMAT:
            raise ValueError(f"not a calibration table ({data.get('format')!r})")
        rows = [CalibrationRow(**r) for r in data["rows"]]
        if not rows:
            raise ValueError("calibration table has no rows")
        return cls(data["reference"], data["reference_quality"], data["reference_cost"], rows,
                   int(data["knee"]), int(data["prompts"]), data.get("source", ""), data.get("extra", {}))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> CalibrationTable:
        return cls.from_json(json.loads(Path(path).read_text()))


@dataclass(slots=True)
class _Pending:
    row: int
    promised: float  # the table's quality share at that row
    chosen: str
    p_chosen: float
    p_reference: float


class TargetMonitor:
    """Live check of a calibration table from `POST /v1/feedback` (see the module docstring)."""

    def __init__(self, reference: str, *, max_pending: int = 50_000, prior_requests: float = 100.0,
                 residual_strength: float = 30.0) -> None:
        self.reference = reference
        self.max_pending = max_pending
        self.prior_requests = prior_requests
        self.residual_strength = residual_strength
        self._pending: OrderedDict[str, _Pending] = OrderedDict()
        self.n = 0  # scored requests routed through the table
        self.score_sum = 0.0
        self.promised_sum = 0.0
        self.reference_expected_sum = 0.0
        self.reference_n = 0  # scored requests the reference itself served
        self.reference_residual = 0.0  # sum of (score - expected) on those

    def record(self, request_id: str, row: int, promised: float, chosen: str, p_chosen: float,
               p_reference: float) -> None:
        pending = self._pending
        pending[request_id] = _Pending(row, promised, chosen, p_chosen, p_reference)
        pending.move_to_end(request_id)
        while len(pending) > self.max_pending:
            pending.popitem(last=False)

    def observe(self, request_id: str, deployment: str, score: float) -> None:
        """A feedback score for a served request (a no-op for requests not routed by the table, or
        served by a fallback: the router's expectation was for the model it chose)."""
        entry = self._pending.pop(request_id, None)
        if entry is None or deployment != entry.chosen:
            return
        self.n += 1
        self.score_sum += score
        self.promised_sum += entry.promised
        self.reference_expected_sum += entry.p_reference
        if deployment == self.reference:
            self.reference_n += 1
            self.reference_residual += score - entry.p_chosen

    def live_share(self) -> float | None:
        """Estimated quality share of the routed traffic relative to the reference."""
        if self.n == 0:
            return None
        bias = self.reference_residual / (self.reference_n + self.residual_strength)
        denominator = self.reference_expected_sum + self.n * bias
        return self.score_sum / denominator if denominator > 0 else None

    def shortfall(self) -> float:
        """How much higher to aim: (promised - live share), shrunk by n / (n + prior_requests)."""
        live = self.live_share()
        if live is None:
            return 0.0
        gap = self.promised_sum / self.n - live
        return gap * self.n / (self.n + self.prior_requests)
