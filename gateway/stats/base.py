"""The `StatsStore` interface every backend implements, and the tunables they share."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from gateway.selection.types import LiveStats
from gateway.stats.events import LearningEntry, Outcome, Quality, RequestRecord, SpendTotals, SpendVerdict, Taken

__all__ = ["Once", "ProbeAnswer", "StatsConfig", "StatsStore"]

#: `acquire_probe`'s answer: "probe" (this caller got the half-open probe slot), "closed" (the
#: circuit is closed: send, no probe needed), "refused" (cooling down, or another caller probes).
ProbeAnswer = Literal["probe", "closed", "refused"]
#: (writer, number): a write that adds up, numbered by its writer so that a shared store applies it
#: once however often it is re-sent. A writer numbers its writes in the order it sends them and
#: re-sends a failed one, under the same number, before anything newer.
Once = tuple[str, int]


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
    # A deployment's feedback posteriors (overall, per domain, per pipeline): past this many, feedback
    # makes no new per-domain one. Feedback keeps only domains the gateway knows (tens); this bounds
    # the cost of every refresh should anything else ever reach the store.
    max_posteriors: int = 1000
    min_gen_ms: float = 1.0  # below this (latency - ttft) a tokens/s figure is noise
    request_ttl_s: float = 900.0  # feedback records: how long a served request can still be scored
    learning_ttl_s: float = 30 * 86400.0  # a learned model's shared log and checkpoint
    history_ttl_s: float = 900.0  # the dashboard's shared history (series buckets, recent decisions)

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
    async def record_many(self, outcomes: Sequence[Outcome], *, once: Once | None = None) -> None:
        """Apply `outcomes`; with `once`, at most once however often the same call is re-sent."""

    @abc.abstractmethod
    async def read_stats(self, now: float | None = None) -> dict[str, LiveStats]:
        """Per-deployment figures decayed to `now` (default: the current time)."""

    @abc.abstractmethod
    async def try_acquire_probe(self, deployment: str) -> bool:
        """Whether a request may go to `deployment` now.

        True when the circuit is closed; False while it cools down; when half-open, True for
        exactly one caller across all replicas (the probe) until its outcome is recorded or the
        probe slot expires. A client-side outcome (`events.CLIENT_SIDE`) frees the slot without
        deciding: the circuit stays half-open and the next caller probes.
        """

    async def acquire_probe(self, deployment: str) -> ProbeAnswer:
        """`try_acquire_probe`, telling a closed circuit ("closed") from a granted probe ("probe")."""
        return "probe" if await self.try_acquire_probe(deployment) else "refused"

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

    async def settle_many(
        self, settlements: Sequence[tuple[str, str, float]], *, once: Once | None = None,
    ) -> list[SpendTotals]:
        """`settle_spend` for each (pipeline, reservation, usd), in order; with `once` (writer, n),
        settlement i is numbered n + i and applied at most once however often it is re-sent."""
        return [await self.settle_spend(*s) for s in settlements]

    @abc.abstractmethod
    async def add_feedback(
        self, deployment: str, domain: str | None, score: float, scope: str | None = None,
        *, once: Once | None = None,
    ) -> None: ...

    @abc.abstractmethod
    async def read_quality(self) -> dict[str, Mapping[str | None, Quality]]:
        """deployment -> domain (None = all domains) -> posterior."""

    @abc.abstractmethod
    async def ping(self) -> bool: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    # -- shared state beyond the live figures (docs/scaling.md) -----------------------------------

    async def read_view(
        self, now: float | None = None, *, every_s: float = 0.25,
    ) -> tuple[dict[str, LiveStats], dict[str, SpendTotals]]:
        """`read_stats()` and `get_spend()` together, as cheaply as the backend can, for a caller
        that asks every `every_s` seconds: the Redis store lets one replica read every deployment
        and publish a snapshot the others fetch in one call."""
        return await self.read_stats(now), await self.get_spend()

    @abc.abstractmethod
    async def put_requests(self, records: Sequence[RequestRecord]) -> None:
        """Keep each record for `config.request_ttl_s`. A request id already stored, or already
        consumed, is left as it is (a re-sent batch must not resurrect a scored request)."""

    @abc.abstractmethod
    async def take_request(self, request_id: str, principal: str | None) -> Taken:
        """Consume a record atomically: across every replica, one caller gets "ok", later ones
        "missing". `principal` None may take any record (master key, or authentication off);
        otherwise only one that key made: another key's record answers "denied" and stays."""

    @abc.abstractmethod
    async def drop_request(self, request_id: str) -> None:
        """Mark a record consumed without reading it (feedback was applied from local memory)."""

    @abc.abstractmethod
    async def sync_learning(
        self, lineage: str, origin: str, blob: str | None, after: str | None, *, limit: int = 1000,
    ) -> tuple[list[LearningEntry], str | None, str | None]:
        """Append `blob` (when given) to a learned model's log, then read up to `limit` entries
        after id `after` (from the start when None). Also returns the log's floor (entries before
        it may have been trimmed, so a reader whose `after` is below it must reload the checkpoint)
        and the id of the latest checkpoint (None: none yet)."""

    @abc.abstractmethod
    async def save_learning_checkpoint(self, lineage: str, upto: str, blob: str) -> bool:
        """Store `blob` as the sum of the log up to id `upto`, unless a later checkpoint is stored;
        then trim the log before the previous checkpoint. True when stored."""

    @abc.abstractmethod
    async def load_learning_checkpoint(self, lineage: str) -> tuple[str, str] | None:
        """(id, blob) of the latest checkpoint, or None."""

    @abc.abstractmethod
    async def add_history(
        self, buckets: Mapping[int, Mapping[str, float]], decisions: Sequence[str], *, keep: int,
        once: Once | None = None,
    ) -> None:
        """Add per-bucket figures (bucket start -> field -> amount; amounts add up across writers)
        and prepend recent decisions (opaque strings, newest last), keeping the newest `keep`.
        With `once`, applied at most once however often the same call is re-sent."""

    @abc.abstractmethod
    async def read_history(self, since: int, keep: int) -> tuple[dict[int, dict[str, float]], list[str]]:
        """Buckets starting at or after `since`, and the newest `keep` decisions, oldest first."""
