"""`FleetHistory`: the dashboard's history and recent decisions across every worker and replica.

Each process keeps its own series buffer and ring of recent decisions (cheap, on the request
path). With a shared store, once every `every_s` a background task sends what changed (the series'
new amounts, the decisions made since the last send) in one store call; `read()` returns the
fleet's sums, rendered as the per-process JSON was, cached for `every_s` so that dashboards polling
many workers cost one read each per second. Staleness: about 2 x every_s.

A push that fails is sent again as it was, under the same number (`StatsStore.add_history` `once`),
before anything newer: a push whose reply was lost after the store applied it is not added twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterable
from typing import Any

import orjson

from gateway.aio import cancel_and_wait
from gateway.observability._series import SeriesBuffer, render

__all__ = ["FleetHistory", "format_decision"]

_log = logging.getLogger("gateway.observability")


def format_decision(entry: dict) -> dict:
    """A recent-decision entry as JSON: the ranking's rejections (kept unformatted on the request
    path) become model -> every reason it was ruled out."""
    rejected = entry.get("rejected") or ()
    if isinstance(rejected, dict):
        return entry
    return {**entry, "rejected": {r.model: list(r.reasons) for r in rejected}}


class FleetHistory:
    def __init__(
        self, store: Any, series: SeriesBuffer, recent: Iterable[dict], *, every_s: float = 1.0, keep: int = 100,
        timeout_s: float = 2.0,
    ) -> None:
        self._store = store
        self._series = series
        self._recent = recent
        self._every = every_s
        self._keep = keep
        self._timeout = timeout_s
        self._last_sent: dict | None = None  # the newest decision already sent (by identity)
        self._writer = "h" + uuid.uuid4().hex[:12]
        self._seq = 0
        # A push that failed (perhaps applied): (number, buckets, decisions), sent again first.
        self._unsent: tuple[int, dict, list[str]] | None = None
        self._cache: tuple[float, dict, list[dict]] | None = None
        self._task: asyncio.Task[None] | None = None
        self.healthy = True

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="fleet-history")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        try:
            await self.push()
        except Exception:  # noqa: BLE001 - shutting down: what is lost is one second of history
            pass

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._every)
            try:
                await self.push()
            except Exception as exc:  # noqa: BLE001 - the store is down; the dashboard shows this process
                if self.healthy:
                    _log.warning("shared dashboard history unavailable: %r", exc)
                self.healthy = False
            else:
                self.healthy = True

    def _new_decisions(self) -> list[dict]:
        entries = list(self._recent)
        last = self._last_sent
        start = 0
        for i in range(len(entries) - 1, -1, -1):
            if entries[i] is last:
                start = i + 1
                break
        fresh = entries[start:][-self._keep :]
        if fresh:
            self._last_sent = fresh[-1]
        return fresh

    async def push(self) -> None:
        """Send what changed since the last push (one store call; two after a failed push: the
        failed one again, as it was, then what changed since)."""
        for _ in range(2):
            if self._unsent is None:
                buckets = self._series.changes()
                decisions = [orjson.dumps(format_decision(d), default=str).decode() for d in self._new_decisions()]
                if not (buckets or decisions):
                    return
                self._seq += 1
                self._unsent = (self._seq, buckets, decisions)
                again = False
            else:
                again = True
            seq, buckets, decisions = self._unsent
            # On failure it stays in `_unsent`: sent again next time, under the same number, so
            # that amounts neither go missing nor count twice.
            await asyncio.wait_for(
                self._store.add_history(buckets, decisions, keep=self._keep, once=(self._writer, seq)), self._timeout,
            )
            self._unsent = None
            if not again:
                return

    async def read(self) -> tuple[dict, list[dict]]:
        """(series JSON, recent decisions oldest first) summed over every process."""
        now = time.time()
        cached = self._cache
        if cached is not None and now - cached[0] < self._every:
            return cached[1], cached[2]
        since = int(now - self._series.history_s) // self._series.bucket_s * self._series.bucket_s
        buckets, raw = await asyncio.wait_for(self._store.read_history(since, self._keep), self._timeout)
        decisions = sorted((orjson.loads(d) for d in raw), key=lambda d: d.get("ts") or 0.0)
        series = render(buckets, self._series.bucket_s, now)
        self._cache = (now, series, decisions)
        return series, decisions
