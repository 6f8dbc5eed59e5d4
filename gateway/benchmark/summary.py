"""Accuracy per deployment and domain from the attempts, with Wilson score intervals."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gateway.benchmark.results import Attempt

__all__ = ["Cell", "Summary", "summarise", "wilson"]


def wilson(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a proportion (95% at z = 1.96); (0, 1) without samples.

    Unlike mean +/- z*sd it stays inside [0, 1] and keeps its coverage near 0 and 1, where a
    good model's accuracy lives.
    """
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Cell:
    """One deployment on one domain (or on all of them, domain None)."""

    deployment: str
    domain: str | None
    samples: int  # graded attempts
    correct: float  # sum of scores
    failed: int  # attempts without an answer
    cost_usd: float

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.samples if self.samples else None

    def interval(self, z: float = 1.96) -> tuple[float, float]:
        return wilson(self.correct, self.samples, z)


@dataclass(frozen=True)
class Summary:
    deployments: tuple[str, ...]
    domains: tuple[str, ...]
    cells: dict[tuple[str, str | None], Cell]

    def cell(self, deployment: str, domain: str | None = None) -> Cell:
        return self.cells.get((deployment, domain)) or Cell(deployment, domain, 0, 0.0, 0, 0.0)

    def table(self) -> str:
        """Accuracy [95% CI] (n) per deployment and domain, overall last, and what it cost."""
        head = ["deployment", *self.domains, "overall", "cost $"]
        rows = [head]
        for dep in self.deployments:
            row = [dep]
            for domain in (*self.domains, None):
                c = self.cell(dep, domain)
                if c.accuracy is None:
                    row.append("-")
                    continue
                lo, hi = c.interval()
                row.append(f"{c.accuracy:.2f} [{lo:.2f}-{hi:.2f}] n={c.samples}")
            row.append(f"{self.cell(dep).cost_usd:.4f}")
            rows.append(row)
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        return "\n".join("  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths)))
                         for r in rows)


def summarise(attempts: Iterable[Attempt], deployments: Sequence[str], domains: Sequence[str]) -> Summary:
    acc: dict[tuple[str, str | None], list[float]] = {}
    for a in attempts:
        for key in ((a.deployment, a.domain), (a.deployment, None)):
            samples, correct, failed, cost = acc.setdefault(key, [0, 0.0, 0, 0.0])
            if a.score is None:
                failed += 1
            else:
                samples += 1
                correct += a.score
            acc[key] = [samples, correct, failed, cost + a.cost_usd]
    cells = {key: Cell(key[0], key[1], int(v[0]), v[1], int(v[2]), v[3]) for key, v in acc.items()}
    return Summary(tuple(deployments), tuple(domains), cells)
