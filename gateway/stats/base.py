"""The `StatsStore` interface every backend implements, and the tunables they share."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from gateway.selection.types import LiveStats
from gateway.stats.events import Outcome, Quality, SpendTotals, SpendVerdict

__all__ = ["StatsConfig", "StatsStore"]


@dataclass(frozen=True, slots=True)
class StatsConfig:
    """Tunables shared by all backends; every replica on one Redis must use the same values."""

    half_life_s: float = 60.0  # EWMA time decay of live figures
    # A deployment's figures are stale (samples reads 0, the next sample starts them afresh)
    # after this many half-lives without a sample, and never before this many times its mean
    # latency (an answer may still be on its way).
    stale_half_lives: float = 2.0
    stale_latencies: float = 3.0
    failure_threshold: int = 5  # consecutive server-side failures that open the circuit
    error_rate_threshold: float = 0.5  # ... or this failure rate
    min_samples: float = 10.0  # ... over at least this many (decayed) recent samples
    cooldown_s: float = 30.0  # open -> half-open after this long
    probe_ttl_s: float = 30.0  # a half-open probe slot frees itself after this long
    stats_ttl_s: float = 3600.0  # live-figure keys; 60 half-lives, the figures are ~0 by then
    quality_ttl_s: float = 30 * 86400.0  # feedback posteriors
    min_gen_ms: float = 1.0  # below this (latency - ttft) a tokens/s figure is noise

    @property
    def stale_after_s(self) -> float:
        return self.half_life_s * self.stale_half_lives


class StatsStore(abc.ABC):
    """Shared live statistics, circuit state, budgets and feedback. All methods are coroutines.

    `record_many` also adds each outcome's `cost_usd` to its pipeline's spend, so callers must
    not `add_spend` the same cost again; `add_spend` is for spend that has no outcome.
    """

    config: StatsConfig

    @abc.abstractmethod
    async def record_many(self, outcomes: Sequence[Outcome]) -> None: ...

    @abc.abstractmethod
    async def read_stats(self, now: float | None = None) -> dict[str, LiveStats]:
        """Per-deployment figures decayed to `now` (default: the current time)."""

    @abc.abstractmethod
    async def try_acquire_probe(self, deployment: str) -> bool:
        """Whether a request may go to `deployment` now.

        True when the circuit is closed; False while it cools down; when half-open, True for
        exactly one caller across all replicas (the probe) until its outcome is recorded or the
        probe slot expires.
        """

    @abc.abstractmethod
    async def add_spend(self, pipeline: str, usd: float) -> SpendTotals: ...

    @abc.abstractmethod
    async def get_spend(self, pipelines: Iterable[str] | None = None) -> dict[str, SpendTotals]:
        """Spend for `pipelines`, or for every pipeline that has spend when None."""

    @abc.abstractmethod
    async def reserve_spend(
        self, pipeline: str, reservation: str, usd: float, *, daily_limit: float | None,
        monthly_limit: float | None, ttl_s: float,
    ) -> SpendVerdict:
        """Atomically (across replicas): hold `usd` for an in-flight request if spend plus every
        held amount plus `usd` stays within each limit; refuse otherwise. A held amount frees
        itself after `ttl_s` if it is never settled (a replica died mid-request)."""

    @abc.abstractmethod
    async def settle_spend(self, pipeline: str, reservation: str, usd: float) -> SpendTotals:
        """Release the reservation (if still held) and add the real cost `usd` to the spend."""

    @abc.abstractmethod
    async def add_feedback(
        self, deployment: str, domain: str | None, score: float, scope: str | None = None
    ) -> None: ...

    @abc.abstractmethod
    async def read_quality(self) -> dict[str, Mapping[str | None, Quality]]:
        """deployment -> domain (None = all domains) -> posterior."""

    @abc.abstractmethod
    async def ping(self) -> bool: ...

    @abc.abstractmethod
    async def close(self) -> None: ...
