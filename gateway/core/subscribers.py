"""Subscribers to `RequestFinished` that belong to the request core: live stats, the feedback
memory, and the ring of recent decisions the stats route and the dashboard show.

(Metrics, the request log and the dashboard's history subscribe through `Observer.on_finished`.)
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from gateway.core.events import RequestFinished
from gateway.stats import Outcome, StatsService

__all__ = ["RecentDecisions", "feedback_memory", "live_stats"]


def live_stats(stats: StatsService) -> Callable[[RequestFinished], None]:
    """A served request becomes an `ok` outcome (failed attempts were reported as they failed)."""

    def on_finished(event: RequestFinished) -> None:
        if not event.ok or event.served is None or event.decision is None:
            return
        usage = event.usage or {}
        stats.record(Outcome(
            deployment=event.served.name,
            pipeline=None if event.spend_settled else event.pipeline,
            status="ok", latency_ms=event.latency_ms or 0.0, ttft_ms=event.ttft_ms,
            output_tokens=int(usage.get("completion_tokens") or 0), cost_usd=event.cost_usd,
            domain=event.decision.ctx.domain,
        ))

    return on_finished


def feedback_memory(feedback: Any) -> Callable[[RequestFinished], None]:
    """Served requests are remembered so `POST /v1/feedback` can score them (and only their owner)."""

    def on_finished(event: RequestFinished) -> None:
        if event.ok and event.served is not None and event.decision is not None:
            decision = event.decision
            feedback.remember(event.request_id, event.served.name, decision.ctx.domain, decision.features,
                              pipeline=event.pipeline, principal=event.principal, cost_usd=event.cost_usd)

    return on_finished


class RecentDecisions:
    """The most recent decisions with their explanations, newest last (bounded)."""

    def __init__(self, maxlen: int = 100) -> None:
        self._entries: deque[dict] = deque(maxlen=maxlen)

    def __call__(self, event: RequestFinished) -> None:
        decision = event.decision
        if decision is None:
            return
        ranked = decision.ranking.ranked
        self._entries.append({
            "ts": time.time(),
            "request_id": event.request_id,
            "endpoint": event.endpoint,
            "pipeline": event.pipeline,
            "strategy": decision.strategy,
            "winner": ranked[0].model.name if ranked else None,
            "score": round(ranked[0].total, 3) if ranked else None,
            "runner_up": ranked[1].model.name if len(ranked) > 1 else None,
            "served": event.served.name if event.served is not None else None,
            "status": "ok" if event.ok else str(event.status),
            "latency_ms": None if event.latency_ms is None else round(event.latency_ms, 1),
            "cost_usd": event.cost_usd,
            "reasons": list(ranked[0].reasons) if ranked else [],
            "notes": list(decision.notes),
            # The Rejection tuple itself: its reasons are formatted only when the stats route reads them.
            "rejected": decision.ranking.rejected,
        })

    def __iter__(self) -> Iterator[dict]:
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)
