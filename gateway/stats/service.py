"""`StatsService`: the one object the gateway holds — recorder + local snapshot + store.

The request path reads `service.live` / `service.spend` (plain immutable mappings swapped
atomically by a background refresh, so reading never awaits) and calls `service.record()` once per
upstream attempt. Staleness: another replica's outcome shows up here within
flush_interval_s + refresh_s (+ two Redis round trips), 300 ms by default; this process's own
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
from gateway.stats.base import StatsConfig, StatsStore
from gateway.stats.events import Feedback, Outcome, SpendTotals
from gateway.stats.memory import MemoryStatsStore
from gateway.stats.recorder import StatsRecorder
from gateway.stats.redis_store import RedisStatsStore

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
        return cls(RedisStatsStore(url, key_prefix, cluster, config=config), **kwargs)  # type: ignore[arg-type]

    # -- request path (synchronous) ---------------------------------------------------------------

    @property
    def status(self) -> Literal["ok", "degraded"]:
        return "degraded" if self._unhealthy else "ok"

    def record(self, outcome: Outcome) -> None:
        """Once per upstream attempt. O(1), never awaits, never raises."""
        self.recorder.record(outcome)

    def feedback(self, deployment: str, domain: str | None, score: float) -> None:
        """A quality score in [0, 1]; queued like outcomes. Never raises."""
        self.recorder.feedback(Feedback(deployment, domain, score))

    async def admit(self, deployment: str) -> bool:
        """Whether to send a request to `deployment` now; awaits the store only when half-open."""
        s = self.live.get(deployment)
        if s is None or s.circuit_state == "closed":
            return True
        if s.circuit_open:
            return False
        try:
            ok = await asyncio.wait_for(self.store.try_acquire_probe(deployment), self._timeout)
        except Exception:  # noqa: BLE001 - the refresh loop notices and reports the outage
            ok = self.mirror.try_probe_now(deployment)
        if ok:
            # Our probe is out: the rest of this process need not ask the store until refresh.
            self._patch(deployment, circuit_open=True)
            self._notify_circuit(deployment, "half_open")
        return ok

    def add_circuit_listener(self, listener: Callable[[str, str], None]) -> None:
        """`listener(deployment, state)` on every breaker transition this process sees: "open" (trip or
        re-open), "closed", or "half_open" (this process sent the probe). Called synchronously on the
        request path, so it must be cheap and must not raise."""
        self._circuit_listeners.append(listener)

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
        """Stop refreshing, flush queued outcomes, close the store."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        await self.recorder.stop()
        with contextlib.suppress(Exception):
            await self.store.close()

    async def flush(self) -> bool:
        return await self.recorder.flush()

    async def _loop(self) -> None:
        while self._task is not None:
            await asyncio.sleep(self._refresh_s)
            await self.refresh()

    async def refresh(self) -> bool:
        """Rebuild `live` and `spend` from the store; from the local mirror when it fails."""
        try:
            stats = await asyncio.wait_for(self.store.read_stats(), self._timeout)
            spend = await asyncio.wait_for(self.store.get_spend(), self._timeout)
        except Exception as exc:  # noqa: BLE001 - any store failure means degraded
            self._set_health("refresh", False, exc)
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
        if step in ("trip", "reopen"):
            self._patch(deployment, circuit_open=True, circuit_state="open")
        elif not self._shared:
            self._patch(deployment, circuit_open=False, circuit_state="closed")
        self._notify_circuit(deployment, "open" if step in ("trip", "reopen") else "closed")

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
