"""A pipeline's budget in Redis: its spend by UTC day and month, and its in-flight reservations.

A mixin of `RedisStatsStore` (gateway/stats/redis_store.py: the key layout, the script runner
`_run`, the index and the applied-once markers live there). Every key of one pipeline shares the
hash tag `{budget:PIPE}`, so one script sees the spend and the holds together, on a Cluster too.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from gateway.stats import _lua
from gateway.stats.budget import DAY_TTL_S, MONTH_TTL_S, periods
from gateway.stats.events import NANOS_PER_USD, SpendTotals, SpendVerdict, usd_to_nanos

__all__ = ["RedisSpend"]

ONCE_TTL_S = _lua.ONCE_TTL_S
_Op = tuple[Any, ...]


class RedisSpend:
    """Spend and reservations; the host class provides `prefix`, `_run`, `_index_ops`, `_reindex`,
    `_members` and `marker_key`."""

    prefix: str

    def budget_keys(self, pipeline: str, day: str, month: str) -> tuple[str, str]:
        base = f"{self.prefix}:{{budget:{pipeline}}}:"
        return base + "d:" + day, base + "m:" + month

    def reservation_keys(self, pipeline: str) -> tuple[str, str]:
        """(amounts hash, expiry zset) of a pipeline's in-flight budget reservations; same slot as
        its spend keys, so one script sees both."""
        base = f"{self.prefix}:{{budget:{pipeline}}}:"
        return base + "res", base + "resx"

    async def add_spend(self, pipeline: str, usd: float) -> SpendTotals:
        keys = self.budget_keys(pipeline, *periods())
        nanos = usd_to_nanos(usd)
        args = [nanos, DAY_TTL_S, MONTH_TTL_S, "", ONCE_TTL_S]
        ops: list[_Op] = [("script", "spend", (*keys, self.marker_key(keys[0], "-")), args)]
        ops += self._index_ops("pipes", [pipeline], MONTH_TTL_S)
        day, month = (await self._run(ops))[0]
        if nanos and int(month) == nanos:
            await self._reindex(pipes=[pipeline])
        return SpendTotals(int(day) / NANOS_PER_USD, int(month) / NANOS_PER_USD)

    async def reserve_spend(
        self, pipeline: str, reservation: str, usd: float, *, daily_limit: float | None,
        monthly_limit: float | None, ttl_s: float,
    ) -> SpendVerdict:
        now_ms = int(time.time() * 1000)
        keys = (*self.budget_keys(pipeline, *periods()), *self.reservation_keys(pipeline))
        limits = [-1 if x is None else usd_to_nanos(x) for x in (daily_limit, monthly_limit)]
        args = [now_ms, reservation, usd_to_nanos(usd), *limits, now_ms + int(ttl_s * 1000), MONTH_TTL_S]
        ok, day, month, held = (await self._run([("script", "reserve", keys, args)]))[0]
        totals = SpendTotals(int(day) / NANOS_PER_USD, int(month) / NANOS_PER_USD)
        return SpendVerdict(bool(ok), totals, int(held) / NANOS_PER_USD)

    async def settle_spend(self, pipeline: str, reservation: str, usd: float) -> SpendTotals:
        return (await self.settle_many([(pipeline, reservation, usd)]))[0]

    async def settle_many(
        self, settlements: Sequence[tuple[str, str, float]], *, once: tuple[str, int] | None = None,
    ) -> list[SpendTotals]:
        if not settlements:
            return []
        writer = once[0] if once is not None else "-"
        day, month = periods()
        ops: list[_Op] = []
        for i, (pipeline, reservation, usd) in enumerate(settlements):
            keys = (*self.budget_keys(pipeline, day, month), *self.reservation_keys(pipeline))
            seq = once[1] + i if once is not None else ""
            args = [reservation, usd_to_nanos(usd), DAY_TTL_S, MONTH_TTL_S, seq, ONCE_TTL_S]
            ops.append(("script", "settle", (*keys, self.marker_key(keys[0], writer)), args))
        ops += self._index_ops("pipes", {p for p, _, _ in settlements}, MONTH_TTL_S)
        res = await self._run(ops)
        out, fresh = [], set()
        for (pipeline, _, usd), (d, m) in zip(settlements, res, strict=False):
            nanos = usd_to_nanos(usd)
            if nanos and int(m) == nanos:
                fresh.add(pipeline)
            out.append(SpendTotals(int(d) / NANOS_PER_USD, int(m) / NANOS_PER_USD))
        await self._reindex(pipes=fresh)
        return out

    async def get_spend(self, pipelines: Iterable[str] | None = None) -> dict[str, SpendTotals]:
        if pipelines is None:
            pipelines = await self._members("pipes")
        names = sorted(set(pipelines))
        day, month = periods()
        ops: list[_Op] = []
        for p in names:
            dk, mk = self.budget_keys(p, day, month)
            ops += [("cmd", "GET", [dk]), ("cmd", "GET", [mk])]
        res = await self._run(ops) if ops else []
        return {
            p: SpendTotals(int(res[2 * i] or 0) / NANOS_PER_USD, int(res[2 * i + 1] or 0) / NANOS_PER_USD)
            for i, p in enumerate(names)
        }
