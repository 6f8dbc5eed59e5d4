"""In-process `StatsStore`: the default backend, and the recorder's local mirror of a shared one.

Everything is plain dicts mutated without awaiting, so each call is atomic on the event loop. The
synchronous `*_now` methods exist for the recorder, which must update its mirror without awaiting.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence

from gateway.selection.types import LiveStats
from gateway.stats._model import apply_outcome, circuit_view, live_from
from gateway.stats.base import Once, ProbeAnswer, StatsConfig, StatsStore
from gateway.stats.budget import PeriodCache
from gateway.stats.circuit import Transition, circuit_step
from gateway.stats.events import (
    NANOS_PER_USD, LearningEntry, Outcome, Quality, RequestRecord, SpendTotals, SpendVerdict, Taken, entry_order,
    scoped_key, usd_to_nanos,
)

__all__ = ["MemoryStatsStore"]


class MemoryStatsStore(StatsStore):
    def __init__(self, config: StatsConfig | None = None, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config or StatsConfig()
        self._clock = clock
        self._stats: dict[str, dict[str, float]] = {}
        self._circuit: dict[str, dict[str, float]] = {}
        self._cool_until: dict[str, float] = {}
        self._probe_until: dict[str, float] = {}
        self._quality: dict[str, dict[str | None, list[float]]] = {}
        self._spend: dict[str, dict[str, int]] = {}  # pipeline -> "d:YYYY-MM-DD"/"m:YYYY-MM" -> nanos
        self._held: dict[str, dict[str, tuple[int, float]]] = {}  # pipeline -> id -> (nanos, expiry)
        self._periods = PeriodCache()
        # Shared-state methods (docs/scaling.md): in one process they are plain containers.
        self._requests: OrderedDict[str, tuple[RequestRecord | None, float]] = OrderedDict()  # None: consumed
        self._logs: dict[str, list[LearningEntry]] = {}
        self._checkpoints: dict[str, tuple[str, str, str | None]] = {}  # lineage -> (id, blob, previous id)
        self._last_entry = (0, 0)
        self._history: dict[int, dict[str, float]] = {}
        self._decisions: deque[str] = deque()

    # -- synchronous core -------------------------------------------------------------------------

    def record_now(self, o: Outcome) -> Transition:
        """Fold one outcome in; returns the circuit transition it caused, if any."""
        cfg = self.config
        apply_outcome(
            self._stats.setdefault(o.deployment, {}), o, cfg.half_life_s, cfg.min_gen_ms,
            cfg.stale_after_s, cfg.stale_latencies,
        )  # fmt: skip
        if o.pipeline is not None and o.cost_usd:
            self._add_nanos(o.pipeline, usd_to_nanos(o.cost_usd), o.ts)
        circuit = self._circuit.setdefault(o.deployment, {})
        step = circuit_step(circuit, o.status, o.ts, self._cooling(o.deployment), cfg)
        if step in ("trip", "reopen"):
            self._cool_until[o.deployment] = self._clock() + cfg.cooldown_s
        if step is not None:  # every transition ends the probe; a "release" does nothing else
            self._probe_until.pop(o.deployment, None)
        return step

    def snapshot(self, now: float | None = None) -> dict[str, LiveStats]:
        now = self._clock() if now is None else now
        out: dict[str, LiveStats] = {}
        for dep in self._stats.keys() | self._quality.keys():
            out[dep] = live_from(
                self._stats.get(dep, {}),
                now,
                self.config.half_life_s,
                self.circuit_now(dep),
                self.quality_now(dep),
                self.config.stale_after_s,
                self.config.stale_latencies,
            )
        return out

    def circuit_now(self, dep: str) -> tuple[str, bool]:
        tripped = self._circuit.get(dep, {}).get("x", 0.0) >= 1
        probe_taken = self._probe_until.get(dep, 0.0) > self._clock()
        return circuit_view(tripped, self._cooling(dep), probe_taken)

    def try_probe_now(self, dep: str) -> bool:
        state, is_open = self.circuit_now(dep)
        if state != "half_open":
            return not is_open
        if is_open:
            return False
        self._probe_until[dep] = self._clock() + self.config.probe_ttl_s
        return True

    def add_feedback_now(self, dep: str, domain: str | None, score: float, scope: str | None = None) -> None:
        score = min(max(float(score), 0.0), 1.0)
        per_dep = self._quality.setdefault(dep, {})
        _add_score(per_dep, None if scope is None else scoped_key(scope, None), score)
        if domain is None:
            return
        key = domain if scope is None else scoped_key(scope, domain)
        # The overall posterior first, then the domain's within the cap: as the Redis script does.
        if key in per_dep or len(per_dep) < self.config.max_posteriors:
            _add_score(per_dep, key, score)

    def quality_now(self, dep: str) -> dict[str | None, Quality]:
        return {d: Quality(a, b) for d, (a, b) in self._quality.get(dep, {}).items()}

    def spend_now(self, pipelines: Iterable[str] | None = None) -> dict[str, SpendTotals]:
        day, month = self._periods(self._clock())
        names = self._spend.keys() if pipelines is None else pipelines
        out = {}
        for p in names:
            per = self._spend.get(p, {})
            out[p] = SpendTotals(per.get("d:" + day, 0) / NANOS_PER_USD, per.get("m:" + month, 0) / NANOS_PER_USD)
        return out

    def reserve_now(
        self, pipeline: str, reservation: str, usd: float, daily_limit: float | None,
        monthly_limit: float | None, ttl_s: float,
    ) -> SpendVerdict:
        now = self._clock()
        held = self._held.setdefault(pipeline, {})
        for rid in [rid for rid, (_, expiry) in held.items() if expiry <= now]:
            del held[rid]
        total = sum(n for n, _ in held.values())
        nanos = usd_to_nanos(usd)
        day, month = self._periods(now)
        per = self._spend.get(pipeline, {})
        d, m = per.get("d:" + day, 0), per.get("m:" + month, 0)
        totals = SpendTotals(d / NANOS_PER_USD, m / NANOS_PER_USD)
        for spent, limit in ((d, daily_limit), (m, monthly_limit)):
            if limit is not None and spent + total + nanos > usd_to_nanos(limit):
                return SpendVerdict(False, totals, total / NANOS_PER_USD)
        held[reservation] = (nanos, now + ttl_s)
        return SpendVerdict(True, totals, (total + nanos) / NANOS_PER_USD)

    def settle_now(self, pipeline: str, reservation: str, usd: float) -> SpendTotals:
        self._held.get(pipeline, {}).pop(reservation, None)
        self._add_nanos(pipeline, usd_to_nanos(usd), self._clock())
        return self.spend_now([pipeline])[pipeline]

    def _add_nanos(self, pipeline: str, nanos: int, ts: float) -> None:
        day, month = self._periods(ts)
        per = self._spend.setdefault(pipeline, {})
        dk, mk = "d:" + day, "m:" + month
        if dk not in per or mk not in per:
            # Only the current periods matter; dropping the rest keeps memory bounded.
            for k in [k for k in per if k not in (dk, mk) and k < (dk if k[0] == "d" else mk)]:
                del per[k]
        per[dk] = per.get(dk, 0) + nanos
        per[mk] = per.get(mk, 0) + nanos

    def _cooling(self, dep: str) -> bool:
        until = self._cool_until.get(dep)
        if until is None:
            return False
        if until > self._clock():
            return True
        del self._cool_until[dep]
        return False

    # -- StatsStore -------------------------------------------------------------------------------

    async def record_many(self, outcomes: Sequence[Outcome], *, once: Once | None = None) -> None:
        for o in sorted(outcomes, key=lambda o: o.ts):
            self.record_now(o)

    async def read_stats(self, now: float | None = None) -> dict[str, LiveStats]:
        return self.snapshot(now)

    async def try_acquire_probe(self, deployment: str) -> bool:
        return self.try_probe_now(deployment)

    async def acquire_probe(self, deployment: str) -> ProbeAnswer:
        state, _ = self.circuit_now(deployment)
        if state == "closed":
            return "closed"
        return "probe" if self.try_probe_now(deployment) else "refused"

    async def add_spend(self, pipeline: str, usd: float) -> SpendTotals:
        self._add_nanos(pipeline, usd_to_nanos(usd), self._clock())
        return self.spend_now([pipeline])[pipeline]

    async def get_spend(self, pipelines: Iterable[str] | None = None) -> dict[str, SpendTotals]:
        return self.spend_now(pipelines)

    async def reserve_spend(
        self, pipeline: str, reservation: str, usd: float, *, daily_limit: float | None,
        monthly_limit: float | None, ttl_s: float,
    ) -> SpendVerdict:
        return self.reserve_now(pipeline, reservation, usd, daily_limit, monthly_limit, ttl_s)

    async def settle_spend(self, pipeline: str, reservation: str, usd: float) -> SpendTotals:
        return self.settle_now(pipeline, reservation, usd)

    async def add_feedback(
        self, deployment: str, domain: str | None, score: float, scope: str | None = None,
        *, once: Once | None = None,
    ) -> None:
        self.add_feedback_now(deployment, domain, score, scope)

    async def read_quality(self) -> dict[str, Mapping[str | None, Quality]]:
        return {dep: self.quality_now(dep) for dep in self._quality}

    async def put_requests(self, records: Sequence[RequestRecord]) -> None:
        now = self._clock()
        requests = self._requests
        while requests:  # one TTL for all: the oldest entries expire first
            first = next(iter(requests.values()))
            if first[1] > now:
                break
            requests.popitem(last=False)
        for record in records:
            if record.request_id not in requests:
                requests[record.request_id] = (record, now + self.config.request_ttl_s)

    async def take_request(self, request_id: str, principal: str | None) -> Taken:
        entry = self._requests.get(request_id)
        if entry is None or entry[1] <= self._clock():
            return Taken("missing")
        if entry[0] is None:
            return Taken("missing", consumed=True)
        record, expiry = entry
        if principal is not None and record.principal != principal:
            return Taken("denied")
        self._requests[request_id] = (None, expiry)
        return Taken("ok", record)

    async def drop_request(self, request_id: str) -> None:
        self._requests[request_id] = (None, self._clock() + self.config.request_ttl_s)

    def _next_entry_id(self) -> str:
        ms, seq = int(self._clock() * 1000), 0
        if ms <= self._last_entry[0]:
            ms, seq = self._last_entry[0], self._last_entry[1] + 1
        self._last_entry = (ms, seq)
        return f"{ms}-{seq}"

    async def sync_learning(
        self, lineage: str, origin: str, blob: str | None, after: str | None, *, limit: int = 1000,
    ) -> tuple[list[LearningEntry], str | None, str | None]:
        log = self._logs.setdefault(lineage, [])
        if blob is not None:
            log.append(LearningEntry(self._next_entry_id(), origin, blob))
        start = entry_order(after) if after is not None else (-1, -1)
        newer = [e for e in log if entry_order(e.id) > start][:limit]
        checkpoint = self._checkpoints.get(lineage)
        return newer, *((checkpoint[2], checkpoint[0]) if checkpoint is not None else (None, None))

    async def save_learning_checkpoint(self, lineage: str, upto: str, blob: str) -> bool:
        current = self._checkpoints.get(lineage)
        if current is not None and entry_order(current[0]) >= entry_order(upto):
            return False
        prev = current[0] if current is not None else None
        self._checkpoints[lineage] = (upto, blob, prev)
        if prev is not None:
            floor = entry_order(prev)
            self._logs[lineage] = [e for e in self._logs.get(lineage, []) if entry_order(e.id) >= floor]
        return True

    async def load_learning_checkpoint(self, lineage: str) -> tuple[str, str] | None:
        current = self._checkpoints.get(lineage)
        return None if current is None else (current[0], current[1])

    async def add_history(
        self, buckets: Mapping[int, Mapping[str, float]], decisions: Sequence[str], *, keep: int,
        once: Once | None = None,
    ) -> None:
        oldest = self._clock() - self.config.history_ttl_s
        for start in [s for s in self._history if s < oldest]:
            del self._history[start]
        for start, fields in buckets.items():
            into = self._history.setdefault(start, {})
            for name, amount in fields.items():
                into[name] = into.get(name, 0.0) + amount
        self._decisions.extend(decisions)
        while len(self._decisions) > keep:
            self._decisions.popleft()

    async def read_history(self, since: int, keep: int) -> tuple[dict[int, dict[str, float]], list[str]]:
        buckets = {start: dict(fields) for start, fields in self._history.items() if start >= since}
        return buckets, list(self._decisions)[-keep:] if keep > 0 else []

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None


def _add_score(posteriors: dict[str | None, list[float]], key: str | None, score: float) -> None:
    ab = posteriors.setdefault(key, [0.0, 0.0])
    ab[0] += score
    ab[1] += 1.0 - score
