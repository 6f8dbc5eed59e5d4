"""Pipeline budgets: what to do when recorded spend nears or passes a policy's limits.

Spend comes from the stats snapshot (exact, atomic in Redis; see docs/stats.md), so the check adds
no round trip. From `soft_limit_ratio` of a limit the pipeline is served by the cost strategy; at
the limit, `on_exceed: reject` refuses with 429 until the period rolls over, `downgrade` keeps
serving by cost.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from gateway.errors import RateLimitError
from gateway.policy.models import BudgetSpec
from gateway.stats import SpendTotals

__all__ = ["BudgetVerdict", "check_budget"]


@dataclass(frozen=True, slots=True)
class BudgetVerdict:
    downgrade: bool = False
    note: str | None = None


_OK = BudgetVerdict()


def _seconds_to_rollover(period: str, now: dt.datetime) -> int:
    if period == "daily":
        nxt = (now + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    else:
        first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        nxt = (first + dt.timedelta(days=32)).replace(day=1)
    return max(1, int((nxt - now).total_seconds()))


def check_budget(pipeline: str, spec: BudgetSpec | None, spend: SpendTotals | None,
                 now: dt.datetime | None = None) -> BudgetVerdict:
    """Raise `RateLimitError` for a pipeline past a `reject` limit; otherwise say whether to downgrade."""
    if spec is None:
        return _OK
    spend = spend or SpendTotals()
    verdict = _OK
    for period, limit, spent in (("daily", spec.daily_usd, spend.day), ("monthly", spec.monthly_usd, spend.month)):
        if limit is None:
            continue
        if spent >= limit:
            if spec.on_exceed == "reject":
                now = now or dt.datetime.now(dt.timezone.utc)
                raise RateLimitError(
                    f"Pipeline '{pipeline}' has spent ${spent:.4f} of its {period} budget of ${limit:.2f}; "
                    f"requests are refused until the {period} budget resets.",
                    code="budget_exceeded",
                    headers={"Retry-After": str(_seconds_to_rollover(period, now))},
                )
            return BudgetVerdict(True, f"budget: {period} spend ${spent:.4f} is past ${limit:.2f}; downgraded to cost")
        if spent >= spec.soft_limit_ratio * limit and not verdict.downgrade:
            verdict = BudgetVerdict(
                True, f"budget: {period} spend ${spent:.4f} is over {spec.soft_limit_ratio:.0%} of ${limit:.2f}; "
                      "downgraded to cost"
            )
    return verdict
