"""Scrape-time gauges: circuit states and budget use, read from the current stats snapshot.

Nothing is stored per request for these: the stats service already keeps an immutable snapshot
(`live`, `spend`) that the background refresh swaps, so a scrape reads it once and reports it.
With Redis behind the stats service every worker sees the same snapshot, so a scrape answered by
any worker reports the fleet's circuit states and spend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["LiveCollector", "LiveSources"]

_CIRCUIT_STATES = ("closed", "open", "half_open")


class LiveSources:
    """Callables returning the current snapshot; each reads a reference, never awaits."""

    def __init__(
        self,
        live: Callable[[], Mapping[str, Any]] = dict,
        spend: Callable[[], Mapping[str, Any]] = dict,
        policies: Callable[[], Any] | None = None,
    ) -> None:
        self.live = live
        self.spend = spend
        self.policies = policies


def _budgets(policy_set: Any) -> dict[str, Any]:
    """pipeline -> BudgetSpec | None for every loaded policy (hot reload may add or drop some)."""
    if policy_set is None:
        return {}
    out = {"default": getattr(policy_set.default, "budget", None)}
    for name in policy_set.names:
        policy = policy_set.get(name)
        out[name] = getattr(policy, "budget", None)
    return out


class LiveCollector(Collector):
    def __init__(self, deployments: tuple[str, ...], sources: LiveSources) -> None:
        self._deployments = deployments
        self._sources = sources

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield self._circuits()
        yield from self._budget_families()

    def describe(self) -> list:
        # An empty describe keeps registration from calling collect() before the app is wired.
        return []

    def _circuits(self) -> GaugeMetricFamily:
        fam = GaugeMetricFamily(
            "gateway_circuit_state", "Circuit breaker state per deployment (1 for the current state).",
            labels=["deployment", "state"],
        )
        live = self._sources.live()
        for name in self._deployments:
            s = live.get(name)
            current = getattr(s, "circuit_state", "closed") if s is not None else "closed"
            for state in _CIRCUIT_STATES:
                fam.add_metric([name, state], 1.0 if state == current else 0.0)
        return fam

    def _budget_families(self) -> Iterator[GaugeMetricFamily]:
        spent = GaugeMetricFamily(
            "gateway_budget_spend_usd", "Spend per pipeline in the current UTC period.",
            labels=["pipeline", "period"],
        )
        limit = GaugeMetricFamily(
            "gateway_budget_limit_usd", "Budget limit per pipeline and period (absent when unlimited).",
            labels=["pipeline", "period"],
        )
        used = GaugeMetricFamily(
            "gateway_budget_used_ratio", "Spend divided by the limit per pipeline and period.",
            labels=["pipeline", "period"],
        )
        spend = self._sources.spend()
        budgets = _budgets(self._sources.policies() if self._sources.policies else None)
        for pipeline in sorted(set(budgets) | set(spend)):
            if pipeline not in budgets:
                continue  # spend of a pipeline whose policy was removed: not a bounded label any more
            totals, spec = spend.get(pipeline), budgets[pipeline]
            for period, attr, cap in (("day", "day", "daily_usd"), ("month", "month", "monthly_usd")):
                value = float(getattr(totals, attr, 0.0) or 0.0)
                spent.add_metric([pipeline, period], value)
                cap_value = getattr(spec, cap, None) if spec is not None else None
                if cap_value:
                    limit.add_metric([pipeline, period], float(cap_value))
                    used.add_metric([pipeline, period], value / float(cap_value))
        yield spent
        yield limit
        yield used
