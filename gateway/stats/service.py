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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Literal

from gateway.aio import cancel_and_wait
from gateway.selection.types import LiveStats
from gateway.stats._holds import BudgetHolds
from gateway.stats._model import scoped_view
from gateway.stats.base import StatsConfig, StatsStore
from gateway.stats.events import Feedback, Outcome, RequestRecord, SpendTotals, Taken
from gateway.stats.memory import MemoryStatsStore
from gateway.stats.recorder import StatsRecorder

__all__ = ["StatsService"]

_log = logging.getLogger(__name__)
_EMPTY_LIVE: Mapping[str, LiveStats] = MappingProxyType({})
_EMPTY_SPEND: Mapping[str, SpendTotals] = MappingProxyType({})


class StatsService(BudgetHolds):
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
        self._init_holds()
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
