"""Exploration: now and then serve a runner-up, so new and recovering models earn traffic.

Without it, a model that once looked slow never gets the requests that would show it recovered:
its live figures only fade back to the prior as they decay. Exploration spends a small, policy-set
share of traffic (`rate`) among the `top_k` best-ranked candidates.

- `ucb`: pick the candidate with the best upper confidence bound, total + c * sqrt(ln N / (n + 1)),
  where n is its (decayed) live sample count and N the sum over the candidates: the least-known
  good candidate wins.
- `thompson`: draw each candidate's score from a normal around its total whose spread shrinks with
  its sample count (sd = 0.15 / sqrt(n + 1)) and pick the best draw.

Each method is one small object with one method and no per-call state; the random source is
passed in. Expert (preferred) winners are never explored away from.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import replace
from typing import Protocol

from gateway.selection.types import Candidate, LiveStats, Ranking

__all__ = ["Explorer", "Thompson", "UCB", "explore", "explorer_for"]

_UCB_C = 0.3
_THOMPSON_SD = 0.15


class Explorer(Protocol):
    name: str

    def choose(self, top: tuple[Candidate, ...], live: Mapping[str, LiveStats], rng: random.Random) -> int: ...


def _samples(c: Candidate, live: Mapping[str, LiveStats]) -> float:
    s = live.get(c.model.name)
    return s.samples if s is not None else 0.0


class UCB:
    name = "ucb"

    def choose(self, top: tuple[Candidate, ...], live: Mapping[str, LiveStats], rng: random.Random) -> int:
        n = [_samples(c, live) for c in top]
        log_total = math.log(sum(n) + 1.0)
        bounds = [c.total + _UCB_C * math.sqrt(log_total / (k + 1.0)) for c, k in zip(top, n)]
        return max(range(len(top)), key=bounds.__getitem__)


class Thompson:
    name = "thompson"

    def choose(self, top: tuple[Candidate, ...], live: Mapping[str, LiveStats], rng: random.Random) -> int:
        draws = [rng.gauss(c.total, _THOMPSON_SD / math.sqrt(_samples(c, live) + 1.0)) for c in top]
        return max(range(len(top)), key=draws.__getitem__)


_EXPLORERS: dict[str, Explorer] = {"ucb": UCB(), "thompson": Thompson()}


def explorer_for(method: str) -> Explorer | None:
    return _EXPLORERS.get(method)


def explore(
    ranking: Ranking, method: str, rate: float, top_k: int, live: Mapping[str, LiveStats], rng: random.Random
) -> Ranking:
    """The ranking, possibly with an explored candidate moved to the front (and a note saying so)."""
    explorer = _EXPLORERS.get(method)
    ranked = ranking.ranked
    if explorer is None or rate <= 0 or len(ranked) < 2 or ranked[0].preferred or rng.random() >= rate:
        return ranking
    top = ranked[: max(1, top_k)]
    i = explorer.choose(top, live, rng)
    if i == 0:
        return ranking
    chosen = ranked[i]
    note = f"exploration ({explorer.name}): serving {chosen.model.name} (rank {i + 1}) instead of {ranked[0].model.name}"
    return replace(ranking, ranked=(chosen, *ranked[:i], *ranked[i + 1:]), notes=(*ranking.notes, note))
