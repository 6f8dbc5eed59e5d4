"""Budget holds through the stats service: reserve before a call, settle after, against the shared
store when there is one, and locally while it does not answer.

A mixin of `StatsService` (gateway/stats/service.py), which provides `store`, `mirror`, `spend`,
`_shared`, `_timeout`, `_refresh_s` and `_set_health`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from gateway.stats.events import SpendTotals, SpendVerdict

__all__ = ["BudgetHolds"]


class BudgetHolds:
    store: Any
    mirror: Any
    spend: Any
    _shared: bool
    _timeout: float
    _refresh_s: float

    def _init_holds(self) -> None:
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
