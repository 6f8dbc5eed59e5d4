"""Budget periods: spend is bucketed by UTC calendar day and month of the time it was incurred."""

from __future__ import annotations

import time
from datetime import datetime, timezone

__all__ = ["DAY_TTL_S", "MONTH_TTL_S", "PeriodCache", "periods"]

# A day key must outlive its day and a month key its month; both are refreshed on every write.
DAY_TTL_S = 2 * 86400
MONTH_TTL_S = 32 * 86400


def periods(ts: float | None = None) -> tuple[str, str]:
    """("YYYY-MM-DD", "YYYY-MM") in UTC for `ts` (default: now)."""
    d = datetime.fromtimestamp(time.time() if ts is None else ts, tz=timezone.utc)
    return d.strftime("%Y-%m-%d"), d.strftime("%Y-%m")


class PeriodCache:
    """`periods()` for the hot path: formatting a date costs microseconds, a range check does not."""

    __slots__ = ("_start", "_end", "_value")

    def __init__(self) -> None:
        self._start = self._end = 0.0
        self._value = ("", "")

    def __call__(self, ts: float) -> tuple[str, str]:
        if not self._start <= ts < self._end:
            self._value = periods(ts)
            d = datetime.fromtimestamp(ts, tz=timezone.utc)
            self._start = d.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
            self._end = self._start + 86400  # UTC has no DST; leap seconds are not in POSIX time
        return self._value
