"""Metric updates gathered in plain Python and written to prometheus_client in batches.

Every finished request bumps five to eight counters and histograms. prometheus_client takes a lock
per update and walks a histogram's bounds in Python; in multiprocess mode each update is a write
into a memory-mapped file. Here an update is an addition to a list kept per child (a histogram's
bucket found by `bisect`), and the sums go to prometheus_client once per `delay_s` and before
every scrape this process answers, so a scrape of this process is never behind it. In
multiprocess mode another worker's scrape sees this worker's updates up to `delay_s` later
(Prometheus scrapes every 15 s or more), and `flush` runs at shutdown so nothing counted is lost.

Writing a histogram's batch uses two attributes of prometheus_client's histogram child (`_sum`
and `_buckets`, what its own `observe` updates); `Tally` checks for them once per child and
falls back to `observe` per value without them (a test compares both ways' output).
"""

from __future__ import annotations

import asyncio
import logging
from bisect import bisect_left
from math import isnan
from typing import Any

__all__ = ["Tally", "add_observation"]

_log = logging.getLogger(__name__)


class Tally:
    """Pending counter increments and histogram observations, per prometheus_client child.

    Each child gets one pending cell for as long as the tally lives (children are as bounded as
    their labels): a counter's is `[amount]`, a histogram's `[upper bounds, sum, observations per
    bucket]` (`[None, values]` without batching). A caller that updates the same children over
    and over keeps their cells (`counter`, `histogram`) and adds to them in place, with
    `add_observation` for a histogram, then calls `touch`: no method call and no lookup per update.
    """

    __slots__ = ("_counters", "_delay", "_hists", "_scheduled")

    def __init__(self, delay_s: float = 1.0) -> None:
        self._delay = delay_s
        self._counters: dict[Any, list[float]] = {}
        self._hists: dict[Any, list] = {}
        self._scheduled = False

    def counter(self, child: Any) -> list[float]:
        """`child`'s cell: add to its element 0, then `touch()`."""
        cell = self._counters.get(child)
        if cell is None:
            cell = self._counters[child] = [0.0]
        return cell

    def histogram(self, child: Any) -> list:
        """`child`'s cell: `add_observation(cell, value)`, then `touch()`."""
        cell = self._hists.get(child)
        if cell is None:
            cell = self._hists[child] = _new_pending(child)
        return cell

    def touch(self) -> None:
        """After adding to cells: the next flush is scheduled (off the loop: written now)."""
        if not self._scheduled:
            self._schedule()

    def inc(self, child: Any, amount: float) -> None:
        self.counter(child)[0] += amount
        if not self._scheduled:
            self._schedule()

    def observe(self, child: Any, value: float) -> None:
        add_observation(self.histogram(child), value)
        if not self._scheduled:
            self._schedule()

    def flush(self) -> None:
        """Write every pending update to prometheus_client now."""
        self._scheduled = False
        # Runs on the event loop, the only thread that adds to the cells (the metrics route
        # flushes there before rendering in the thread pool), so no update lands between a read
        # and its reset.
        for child, cell in self._counters.items():
            amount = cell[0]
            if amount:
                cell[0] = 0.0
                try:
                    child.inc(amount)
                except Exception:  # noqa: BLE001 - one bad update must not lose the others
                    _log.exception("metric update failed")
        for child, pending in self._hists.items():
            try:
                if pending[0] is None:
                    values, pending[1] = pending[1], []
                    for value in values:
                        child.observe(value)
                    continue
                counts = pending[2]
                if not any(counts) and not pending[1]:
                    continue  # nothing observed since the last flush (a NaN alone counts in no bucket)
                fresh = [0] * len(counts)
                total, pending[1], pending[2] = pending[1], 0.0, fresh
                child._sum.inc(total)
                for bucket, n in zip(child._buckets, counts, strict=True):
                    if n:
                        bucket.inc(n)
            except Exception:  # noqa: BLE001
                _log.exception("metric update failed")

    def _schedule(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # off the event loop (a thread, a test): write through
            self.flush()
            return
        self._scheduled = True
        loop.call_later(self._delay, self.flush)


def add_observation(pending: list, value: float) -> None:
    """One observation into a histogram's cell (`Tally.histogram`)."""
    bounds = pending[0]
    if bounds is None:
        pending[1].append(value)
        return
    # prometheus_client counts a value in the first bucket whose bound is >= it (none: NaN).
    if not isnan(value):
        pending[2][bisect_left(bounds, value)] += 1
    pending[1] += value


def _new_pending(child: Any) -> list:
    bounds = getattr(child, "_upper_bounds", None)
    buckets = getattr(child, "_buckets", None)
    if bounds is None or buckets is None or getattr(child, "_sum", None) is None or len(bounds) != len(buckets):
        return [None, []]
    return [list(bounds), 0.0, [0] * len(bounds)]
