"""`StatsService`: the one object the gateway holds — recorder + local snapshot + store.

The request path reads `service.live` / `service.spend` (plain immutable mappings swapped
atomically by a background refresh, so reading never awaits) and calls `service.record()` once per
upstream attempt. Staleness: another replica's outcome shows up here within
flush_interval_s + 2 x refresh_s (+ Redis round trips), 550 ms by default (the replica publishing
the shared snapshot reads it up to one refresh before this one fetches it); this process's own
circuit trips show up immediately.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Literal

from gateway.aio import cancel_and_wait
from gateway.selection.types import LiveStats
from gateway.stats._model import scoped_view
from gateway.stats.base import StatsConfig, StatsStore
from gateway.stats.events import Feedback, Outcome, RequestRecord, SpendTotals, SpendVerdict, Taken
from gateway.stats.memory import MemoryStatsStore
from gateway.stats.recorder import StatsRecorder

__all__ = ["StatsService"]

_log = logging.getLogger(__name__)
_EMPTY_LIVE: Mapping[str, LiveStats] = MappingProxyType({})
_EMPTY_SPEND: Mapping[str, SpendTotals] = MappingProxyType({})


class StatsService:
    def __init__(
        self,
        store: StatsStore | None = None,
        *,
        refresh_s: float = 0.25,
        flush_interval_s: float = 0.05,
        batch_size: int = 256,
        max_buffer: int = 100_000,
        timeout_s: float = 2.0,
    ) -> None:
        self.store: StatsStore = store or MemoryStatsStore()
        self._shared = not isinstance(self.store, MemoryStatsStore)
        self.recorder = StatsRecorder(
            self.store,
            flush_interval_s=flush_interval_s,
            batch_size=batch_size,
            max_buffer=max_buffer,
            timeout_s=timeout_s,
            on_transition=self._on_transition,
            on_health=lambda ok, exc: self._set_health("flush", ok, exc),
        )
        self.mirror = self.recorder.mirror
        self._refresh_s = refresh_s
        self._timeout = timeout_s
        self._unhealthy: set[str] = set()
        self._remote_spend: dict[str, SpendTotals] = {}
        self._spend_base: dict[str, SpendTotals] = {}
        self._task: asyncio.Task[None] | None = None
        self._circuit_listeners: list[Callable[[str, str], None]] = []
        self._refresh_listeners: list[Callable[[], Iterable[None]]] = []
        self._scoped: dict[str, tuple[Mapping[str, LiveStats], Mapping[str, LiveStats]]] = {}
        # Settlements not yet taken by the shared store, in order: (number, pipeline, reservation,
        # usd). One task sends them (all queued, one pipeline); when the store fails they wait,
        # under their numbers, for the refresh loop to send them again before anything newer, so
        # a settlement whose reply was lost is still applied once (`StatsStore.settle_many`).
        self._unsettled: deque[tuple[int, str, str, float]] = deque()
        self._settle_writer = "s" + uuid.uuid4().hex[:12]
        self._settle_seq = 0
        self._settle_task: asyncio.Task[bool] | None = None
        self._settle_lock = asyncio.Lock()
        # While the shared store is known not to answer (a reservation or refresh failed), `reject`
        # budgets are judged locally at once instead of each request waiting for the timeout; a
        # background ping ends that as soon as the store answers again.
        self._budget_local = False
        self._budget_probe: asyncio.Task[None] | None = None
        # Deployments whose half-open probe this process sent: its outcome decides here at once.
        self._probing: set[str] = set()
        #: deployment -> live figures; read synchronously on the request path.
        self.live: Mapping[str, LiveStats] = _EMPTY_LIVE
        #: pipeline -> spend this UTC day / month, as of the last refresh.
        self.spend: Mapping[str, SpendTotals] = _EMPTY_SPEND

    @classmethod
    def from_url(
        cls,
        url: str | None,
        *,
        key_prefix: str = "gw",
        cluster: bool = False,
        config: StatsConfig | None = None,
        **kwargs: float | int,
    ) -> StatsService:
        """In-memory when `url` is None, else Redis (redis+cluster:// or cluster=True for Cluster)."""
        if url is None:
            return cls(MemoryStatsStore(config), **kwargs)  # type: ignore[arg-type]
        # Imported only here: redis-py takes ~50 ms to import, a twentieth of a start-up that has no use for it.
        from gateway.stats.redis_store import RedisStatsStore

        return cls(RedisStatsStore(url, key_prefix, cluster, config=config), **kwargs)  # type: ignore[arg-type]

    # -- request path (synchronous) ---------------------------------------------------------------

    @property
    def status(self) -> Literal["ok", "degraded"]:
        return "degraded" if self._unhealthy else "ok"

    @property
    def shared(self) -> bool:
        """Whether the store is shared with other processes (Redis), not this process's memory."""
        return self._shared

    def record(self, outcome: Outcome) -> None:
        """Once per upstream attempt. O(1), never awaits, never raises."""
        self.recorder.record(outcome)
        if self._probing and outcome.deployment in self._probing:
            self._probe_answered(outcome)

    def _probe_answered(self, outcome: Outcome) -> None:
        # Our own probe's success closes the circuit (the store learns it with the flush): stop
        # refusing our own requests now rather than at the next refresh.
        self._probing.discard(outcome.deployment)
        if outcome.status == "ok":
            current = self.live.get(outcome.deployment)
            if current is not None and current.circuit_state != "closed":
                self._patch(outcome.deployment, circuit_open=False, circuit_state="closed")
                self._notify_circuit(outcome.deployment, "closed")

    def feedback(self, deployment: str, domain: str | None, score: float, scope: str | None = None) -> None:
        """A quality score in [0, 1], global or for one pipeline's view; queued like outcomes. Never raises."""
        self.recorder.feedback(Feedback(deployment, domain, score, scope))

    # -- feedback records (shared store only; one process keeps its own memory) ------------------

    def remember_request(self, record: RequestRecord) -> None:
        """Queue a served request's feedback record; shipped with the next flush. Never raises."""
        self.recorder.remember(record)

    def drop_request(self, request_id: str) -> None:
        """Queue "consumed" for a record whose feedback was applied from local memory."""
        self.recorder.drop(request_id)

    async def take_request(self, request_id: str, principal: str | None) -> Taken:
        """Consume a feedback record from the shared store (see `StatsStore.take_request`).
        Raises when the store does not answer in time."""
        return await asyncio.wait_for(self.store.take_request(request_id, principal), self._timeout)

    def live_for(self, pipeline: str | None) -> Mapping[str, LiveStats]:
        """`live` as `pipeline` ranks with it: the global quality posteriors plus what keys bound
        to that pipeline taught it, and nobody else's (see docs/security.md#tenancy)."""
        live = self.live
        if pipeline is None:
            return live
        cached = self._scoped.get(pipeline)
        if cached is not None and cached[0] is live:
            return cached[1]
        view = scoped_view(live, pipeline)
        if len(self._scoped) > 1024:
            self._scoped.clear()
        self._scoped[pipeline] = (live, view)
        return view

    def admit_now(self, deployment: str) -> bool | None:
        """`admit`'s answer when it needs no store (a closed or open circuit); None when half-open."""
        s = self.live.get(deployment)
        if s is None or s.circuit_state == "closed":
            return True
        if s.circuit_open:
            return False
        return None

    async def admit(self, deployment: str) -> bool:
        """Whether to send a request to `deployment` now; awaits the store only when half-open."""
        verdict = self.admit_now(deployment)
        if verdict is not None:
            return verdict
        try:
            answer = await asyncio.wait_for(self.store.acquire_probe(deployment), self._timeout)
        except Exception:  # noqa: BLE001 - the refresh loop notices and reports the outage
            answer = await self.mirror.acquire_probe(deployment)
        if answer == "probe":
            # Our probe is out: the rest of this process need not ask the store until refresh.
            self._patch(deployment, circuit_open=True)
            self._probing.add(deployment)
            self._notify_circuit(deployment, "half_open")
        elif answer == "closed":
            # Another process's probe closed it since our last refresh.
            self._patch(deployment, circuit_open=False, circuit_state="closed")
        return answer != "refused"

    async def reserve(
        self, pipeline: str, reservation: str, usd: float, *, daily_limit: float | None,
        monthly_limit: float | None, ttl_s: float,
    ) -> SpendVerdict:
        """Hold `usd` of a pipeline's budget for one request (see `StatsStore.reserve_spend`).

        One store round trip, only for pipelines with a refusing budget. When the shared store is
        unreachable the hold is judged locally against the last known spend (degraded: replicas
        then cannot see each other's holds until it is back). Once a reservation or a refresh has
        failed, later ones are judged locally at once, without waiting for the store, until a
        background ping finds it answering again (within one refresh interval of that).
        """
        if self._shared and self._budget_local:
            verdict = self._reserve_locally(pipeline, reservation, usd, daily_limit, monthly_limit, ttl_s)
        elif self._shared:
            try:
                verdict = await asyncio.wait_for(
                    self.store.reserve_spend(pipeline, reservation, usd, daily_limit=daily_limit,
                                             monthly_limit=monthly_limit, ttl_s=ttl_s),
                    self._timeout,
                )
            except Exception as exc:  # noqa: BLE001 - degraded, not down
                self._set_health("budget", False, exc)
                self._judge_budgets_locally()
                verdict = self._reserve_locally(pipeline, reservation, usd, daily_limit, monthly_limit, ttl_s)
            else:
                self._set_health("budget", True, None)
        else:
            verdict = self.mirror.reserve_now(pipeline, reservation, usd, daily_limit, monthly_limit, ttl_s)
        self._patch_spend(pipeline, verdict.totals)
        return verdict

    def _reserve_locally(
        self, pipeline: str, reservation: str, usd: float, daily_limit: float | None,
        monthly_limit: float | None, ttl_s: float,
    ) -> SpendVerdict:
        # The mirror holds only this process's spend; lift its limits by the shared spend last seen.
        known = self.spend.get(pipeline, SpendTotals())
        local = self.mirror.spend_now([pipeline])[pipeline]
        day = None if daily_limit is None else daily_limit - max(known.day - local.day, 0.0)
        month = None if monthly_limit is None else monthly_limit - max(known.month - local.month, 0.0)
        verdict = self.mirror.reserve_now(pipeline, reservation, usd, day, month, ttl_s)
        return replace(verdict, totals=known)

    def _judge_budgets_locally(self) -> None:
        """The store did not answer: judge `reject` budgets locally until a ping says it is back."""
        self._budget_local = True
        if self._budget_probe is None or self._budget_probe.done():
            self._budget_probe = asyncio.get_running_loop().create_task(self._probe_store(), name="stats-budget-probe")

    async def _probe_store(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_s)
            try:
                ok = await asyncio.wait_for(self.store.ping(), self._timeout)
            except Exception:  # noqa: BLE001 - still unreachable
                ok = False
            if ok:
                self._budget_local = False
                if not self._unsettled:
                    self._set_health("budget", True, None)
                return

    def settle(self, pipeline: str, reservation: str, usd: float) -> None:
        """Release a hold and add the request's real cost to the pipeline's spend. Never waits:
        with a shared store the write runs in the background (and is retried if it fails)."""
        self.mirror.settle_now(pipeline, reservation, usd)
        if not self._shared:
            self._patch_spend(pipeline, self.mirror.spend_now([pipeline])[pipeline])
            return
        self._unsettled.append((self._settle_seq, pipeline, reservation, usd))
        self._settle_seq += 1
        if self._settle_task is None or self._settle_task.done():
            self._settle_task = asyncio.get_running_loop().create_task(self._retry_settlements())

    async def _retry_settlements(self) -> bool:
        """Send the queued settlements, oldest first; False (and they stay queued) if the store failed."""
        async with self._settle_lock:
            sent = False
            while self._unsettled:
                items = [self._unsettled[i] for i in range(min(len(self._unsettled), 256))]
                try:
                    totals = await asyncio.wait_for(
                        self.store.settle_many([(p, r, u) for _, p, r, u in items], once=(self._settle_writer, items[0][0])),
                        self._timeout,
                    )
                except Exception as exc:  # noqa: BLE001 - kept, sent again by the refresh loop
                    self._set_health("budget", False, exc)
                    return False
                for _ in items:
                    self._unsettled.popleft()
                for (_, pipeline, _, _), t in zip(items, totals, strict=False):
                    self._patch_spend(pipeline, t)
                sent = True
            if sent and not self._budget_local:
                self._set_health("budget", True, None)
            return True

    def _patch_spend(self, pipeline: str, totals: SpendTotals) -> None:
        # Fresher than the last refresh: the budget check and the dashboard see it at once.
        current = self.spend.get(pipeline)
        if current is None or totals.day >= current.day or totals.month >= current.month:
            spend = dict(self.spend)
            spend[pipeline] = totals
            self.spend = MappingProxyType(spend)

    def add_circuit_listener(self, listener: Callable[[str, str], None]) -> None:
        """`listener(deployment, state)` on every breaker transition this process sees: "open" (trip or
        re-open), "closed", or "half_open" (this process sent the probe). Called synchronously on the
        request path, so it must be cheap and must not raise."""
        self._circuit_listeners.append(listener)

    def add_refresh_listener(self, listener: Callable[[], Iterable[None]]) -> None:
        """`listener()` after each periodic refresh: work on the new `live`, in steps. The refresh
        loop runs the steps one loop iteration apart, so a request waits for one step at most."""
        self._refresh_listeners.append(listener)

    def _notify_circuit(self, deployment: str, state: str) -> None:
        for listener in self._circuit_listeners:
            try:
                listener(deployment, state)
            except Exception:  # noqa: BLE001 - a listener must never fail a request
                _log.exception("circuit listener failed")

    # -- background -------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is not None:
            return
        await self.refresh()
        self.recorder.start()
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="stats-refresh")

    async def stop(self) -> None:
        """Stop refreshing, flush queued outcomes and settlements, close the store."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        probe, self._budget_probe = self._budget_probe, None
        await cancel_and_wait(probe)
        if self._settle_task is not None and not self._settle_task.done():
            await asyncio.wait({self._settle_task}, timeout=self._timeout)
        await self._retry_settlements()
        await self.recorder.stop()
        with contextlib.suppress(Exception):
            await self.store.close()

    async def flush(self) -> bool:
        return await self.recorder.flush()

    async def _loop(self) -> None:
        while self._task is not None:
            await asyncio.sleep(self._refresh_s)
            await self.refresh()
            for listener in self._refresh_listeners:
                try:
                    for _ in listener():
                        await asyncio.sleep(0)
                except Exception:  # noqa: BLE001 - the next refresh must come whatever a listener does
                    _log.exception("refresh listener failed")

    async def refresh(self) -> bool:
        """Rebuild `live` and `spend` from the store; from the local mirror when it fails."""
        if self._unsettled:
            await self._retry_settlements()
        try:
            # One snapshot fetch per refresh with Redis, whatever the catalog's size (docs/scaling.md).
            stats, spend = await asyncio.wait_for(self.store.read_view(every_s=self._refresh_s), self._timeout)
        except Exception as exc:  # noqa: BLE001 - any store failure means degraded
            self._set_health("refresh", False, exc)
            if self._shared:
                self._judge_budgets_locally()
            self._publish_local()
            return False
        self._set_health("refresh", True, None)
        self._remote_spend = spend
        self._spend_base = self.mirror.spend_now()
        if self._shared:
            self._overlay(stats)
        self.live = MappingProxyType(stats)
        self.spend = MappingProxyType(spend)
        return True

    def _overlay(self, stats: dict[str, LiveStats]) -> None:
        # Local evidence not yet in the store: deployments only we have seen, and our own trips.
        for dep, local in self.mirror.snapshot().items():
            shared = stats.get(dep)
            if shared is None:
                stats[dep] = local
            elif local.circuit_state == "open" and not shared.circuit_open:
                stats[dep] = replace(shared, circuit_open=True, circuit_state="open")

    def _publish_local(self) -> None:
        self.live = MappingProxyType(self.mirror.snapshot())
        # Last known shared spend plus what this process spent since (others' spend is unknown).
        spend = dict(self._remote_spend)
        for p, now in self.mirror.spend_now().items():
            base = self._spend_base.get(p, SpendTotals())
            prev = spend.get(p, SpendTotals())
            spend[p] = SpendTotals(prev.day + max(now.day - base.day, 0.0), prev.month + max(now.month - base.month, 0.0))
        self.spend = MappingProxyType(spend)

    def _on_transition(self, deployment: str, step: str) -> None:
        if step == "release":
            self._on_release(deployment)
            return
        if step in ("trip", "reopen"):
            self._patch(deployment, circuit_open=True, circuit_state="open")
        else:
            # Shared too: this process's own success closed it; the store learns it with the flush.
            self._patch(deployment, circuit_open=False, circuit_state="closed")
        self._notify_circuit(deployment, "open" if step in ("trip", "reopen") else "closed")

    def _on_release(self, deployment: str) -> None:
        # The probe ended client-side: no state change to announce. In one process the store is the
        # mirror, so `live` (patched open when the probe went out) shows the free slot at once and
        # the next request probes; a shared store frees its slot with the flush, seen by a refresh.
        if not self._shared:
            state, is_open = self.mirror.circuit_now(deployment)
            self._patch(deployment, circuit_open=is_open, circuit_state=state)

    def _patch(self, deployment: str, **changes: object) -> None:
        live = dict(self.live)
        live[deployment] = replace(live.get(deployment, LiveStats()), **changes)  # type: ignore[arg-type]
        self.live = MappingProxyType(live)

    def _set_health(self, source: str, ok: bool, exc: BaseException | None) -> None:
        was = self.status
        if ok:
            self._unhealthy.discard(source)
        else:
            self._unhealthy.add(source)
        if was != self.status:
            if ok:
                _log.info("stats store reachable again; shared stats resumed")
            else:
                _log.warning("stats store unreachable, serving local stats (degraded): %r", exc)

    @property
    def dropped(self) -> int:
        """Outcomes lost because the queue overflowed while the store was down."""
        return self.recorder.dropped

    def tracked_spend(self, pipelines: Iterable[str]) -> dict[str, SpendTotals]:
        """`spend` for `pipelines`, zeros for pipelines with no spend yet."""
        return {p: self.spend.get(p, SpendTotals()) for p in pipelines}
