"""Metric updates gathered in plain Python and written to prometheus_client in batches.

Every finished request bumps five to eight counters and histograms. prometheus_client takes a lock
per update and walks a histogram's bounds in Python; in multiprocess mode each update is a write
into a memory-mapped file. Here an update is a dict addition (a histogram's bucket found by
`bisect`), and the sums go to prometheus_client once per `delay_s` and before every scrape this
process answers, so a scrape of this process is never behind it. In multiprocess mode another
worker's scrape sees this worker's updates up to `delay_s` later (Prometheus scrapes every 15 s
or more), and `flush` runs at shutdown so nothing counted is lost.

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

__all__ = ["Tally"]

_log = logging.getLogger(__name__)


class Tally:
    """Pending counter increments and histogram observations, per prometheus_client child."""

    __slots__ = ("_counts", "_delay", "_hists", "_scheduled")

    def __init__(self, delay_s: float = 1.0) -> None:
        self._delay = delay_s
        self._counts: dict[Any, float] = {}
        # child -> [upper bounds, sum, observations per bucket] or [None, values] without batching
        self._hists: dict[Any, list] = {}
        self._scheduled = False

    def inc(self, child: Any, amount: float) -> None:
        counts = self._counts
        counts[child] = counts.get(child, 0.0) + amount
        if not self._scheduled:
            self._schedule()

    def observe(self, child: Any, value: float) -> None:
        pending = self._hists.get(child)
        if pending is None:
            pending = self._hists[child] = _new_pending(child)
        bounds = pending[0]
        if bounds is None:
            pending[1].append(value)
        else:
            # prometheus_client counts a value in the first bucket whose bound is >= it (none: NaN).
            if not isnan(value):
                pending[2][bisect_left(bounds, value)] += 1
            pending[1] += value
        if not self._scheduled:
            self._schedule()

    def flush(self) -> None:
        """Write every pending update to prometheus_client now."""
        self._scheduled = False
        counts, self._counts = self._counts, {}
        hists, self._hists = self._hists, {}
        for child, amount in counts.items():
            try:
                child.inc(amount)
            except Exception:  # noqa: BLE001 - one bad update must not lose the others
                _log.exception("metric update failed")
        for child, pending in hists.items():
            try:
                if pending[0] is None:
                    for value in pending[1]:
                        child.observe(value)
                    continue
                child._sum.inc(pending[1])
                for bucket, n in zip(child._buckets, pending[2], strict=True):
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


def _new_pending(child: Any) -> list:
    bounds = getattr(child, "_upper_bounds", None)
    buckets = getattr(child, "_buckets", None)
    if bounds is None or buckets is None or getattr(child, "_sum", None) is None or len(bounds) != len(buckets):
        return [None, []]
    return [list(bounds), 0.0, [0] * len(bounds)]
