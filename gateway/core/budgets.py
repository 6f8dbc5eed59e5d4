"""Pipeline budgets: soft limits steer selection, `reject` limits hold under concurrency.

Two steps, both on every path (a pinned deployment as much as `auto`):

1. `check_budget`, in the decision, reads the spend snapshot (no round trip): from
   `soft_limit_ratio` of a limit the pipeline is served by the cost strategy; past a limit,
   `on_exceed: reject` refuses with 429 and `downgrade` keeps serving by cost.
2. `BudgetGate.reserve`, at admission, holds the request's worst-case cost against a `reject`
   budget atomically across replicas (a Lua script in Redis; one event-loop step in memory):
   spend + every amount held by requests in flight + this one must fit, or 429. The hold is
   settled to the real cost when the request ends (`settle`) and frees itself after a TTL if its
   replica dies. So concurrent requests cannot jointly overspend: the overshoot is bounded by what
   a request costs beyond its reservation, i.e. by the error of the input-token estimate (see
   docs/security.md#budgets).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from gateway.errors import RateLimitError
from gateway.policy.models import BudgetSpec
from gateway.stats import SpendTotals, StatsService

__all__ = ["BudgetGate", "BudgetVerdict", "Reservation", "check_budget", "format_usd", "holds", "worst_case_usd"]

#: The input-token estimate counts characters, not tokens; a reservation allows this much more.
INPUT_MARGIN = 1.25
_INPUT_SLACK = 16


@dataclass(frozen=True, slots=True)
class BudgetVerdict:
    downgrade: bool = False
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Reservation:
    pipeline: str
    id: str
    usd: float


_OK = BudgetVerdict()


def format_usd(usd: float) -> str:
    """Money as people read it, small budgets included ($0.0000001 is not "$0.00")."""
    if usd == 0:
        return "$0"
    if abs(usd) >= 1:
        return f"${usd:,.2f}"
    if abs(usd) >= 0.0001:
        return f"${usd:.4f}".rstrip("0").rstrip(".")
    # Two significant digits in plain decimals: $0.0000042, not $4.2e-06 (nor $0.0000).
    digits = min(1 - math.floor(math.log10(abs(usd))), 15)
    return f"${usd:.{digits}f}".rstrip("0").rstrip(".")


def _seconds_to_rollover(period: str, now: dt.datetime) -> int:
    if period == "daily":
        nxt = (now + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    else:
        first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        nxt = (first + dt.timedelta(days=32)).replace(day=1)
    return max(1, int((nxt - now).total_seconds()))


def _exceeded(pipeline: str, period: str, spent: float, limit: float, now: dt.datetime | None) -> RateLimitError:
    now = now or dt.datetime.now(dt.timezone.utc)
    return RateLimitError(
        f"Pipeline '{pipeline}' has spent {format_usd(spent)} of its {period} budget of {format_usd(limit)}; "
        f"requests are refused until the {period} budget resets.",
        code="budget_exceeded",
        headers={"Retry-After": str(_seconds_to_rollover(period, now))},
        retryable=False,
    )


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
                raise _exceeded(pipeline, period, spent, limit, now)
            return BudgetVerdict(
                True, f"budget: {period} spend {format_usd(spent)} is past {format_usd(limit)}; downgraded to cost"
            )
        if spent >= spec.soft_limit_ratio * limit and not verdict.downgrade:
            verdict = BudgetVerdict(
                True, f"budget: {period} spend {format_usd(spent)} is over {spec.soft_limit_ratio:.0%} of "
                      f"{format_usd(limit)}; downgraded to cost"
            )
    return verdict


def worst_case_usd(candidates: Any, input_tokens: int, max_output_tokens: int | None, n: int = 1) -> float:
    """The most this request can cost on any deployment it may be sent to.

    Output is the request's max_tokens, or each deployment's own output limit when it sets none:
    that is what the provider may bill. Input is the estimate with a margin for its error.
    """
    tokens_in = int(input_tokens * INPUT_MARGIN) + _INPUT_SLACK
    worst = 0.0
    for dep in candidates:
        info = dep.info
        out = max_output_tokens or info.max_output_tokens
        worst = max(worst, tokens_in * info.input_cost_per_token + n * out * info.output_cost_per_token)
    return worst


def holds(spec: BudgetSpec | None) -> bool:
    """Whether a request under `spec` needs a hold: a budget that refuses, with a limit."""
    return spec is not None and spec.on_exceed == "reject" and (spec.daily_usd is not None
                                                                 or spec.monthly_usd is not None)


class BudgetGate:
    """Reserves and settles spend for pipelines whose budget refuses (`on_exceed: reject`)."""

    def __init__(self, stats: StatsService, *, hold_ttl_s: float, max_attempts: int) -> None:
        self._stats = stats
        self._ttl = hold_ttl_s
        self._max_attempts = max_attempts  # the deployments a request may reach (fallbacks + 1)

    async def reserve(
        self, pipeline: str, spec: BudgetSpec | None, request_id: str, candidates: Any,
        input_tokens: int, max_output_tokens: int | None, n: int = 1,
    ) -> Reservation | None:
        """Hold the worst case for this request, or raise 429 `budget_exceeded`. None: no hold
        needed (no budget, or a budget that downgrades instead of refusing)."""
        if not holds(spec):
            return None
        usd = worst_case_usd(candidates[: self._max_attempts], input_tokens, max_output_tokens, n)
        verdict = await self._stats.reserve(
            pipeline, request_id, usd, daily_limit=spec.daily_usd, monthly_limit=spec.monthly_usd, ttl_s=self._ttl
        )
        if verdict.ok:
            return Reservation(pipeline, request_id, usd)
        raise _refusal(pipeline, spec, verdict.totals, verdict.reserved, usd, max_output_tokens)

    def settle(self, reservation: Reservation | None, usd: float) -> None:
        """Replace the hold with the real cost; never raises, never waits."""
        if reservation is not None:
            self._stats.settle(reservation.pipeline, reservation.id, usd)


def _refusal(pipeline: str, spec: BudgetSpec, totals: SpendTotals, held: float, usd: float,
             max_output_tokens: int | None) -> RateLimitError:
    for period, limit, spent in (("daily", spec.daily_usd, totals.day), ("monthly", spec.monthly_usd, totals.month)):
        if limit is None or spent + held + usd <= limit:
            continue
        if spent >= limit:
            return _exceeded(pipeline, period, spent, limit, None)
        hint = "" if max_output_tokens else " Setting max_tokens lowers the worst case."
        # Room is held by requests in flight, or this request's worst case is larger than what is
        # left: either may change soon, so the wait is short.
        return RateLimitError(
            f"Pipeline '{pipeline}' has spent {format_usd(spent)} of its {period} budget of {format_usd(limit)}, "
            f"{format_usd(held)} is held by requests in flight, and this request may cost up to "
            f"{format_usd(usd)}.{hint}",
            code="budget_exceeded", headers={"Retry-After": "2" if held > 0 else "60"},
        )
    return RateLimitError(f"Pipeline '{pipeline}' has no budget left.", code="budget_exceeded",
                          headers={"Retry-After": "2"})
