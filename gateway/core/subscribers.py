"""Subscribers to `RequestFinished` that belong to the request core: live stats, the feedback
memory, and the ring of recent decisions the stats route and the dashboard show.

(Metrics, the request log and the dashboard's history subscribe through `Observer.on_finished`.)
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from gateway._frozen import builder
from gateway.core.events import RequestFinished
from gateway.stats import Outcome, StatsService

__all__ = ["RecentDecisions", "feedback_memory", "live_stats"]


#: Outcome(...) without a setattr call per field (gateway/_frozen.py): one per served request.
_new_outcome = builder(Outcome)


def live_stats(stats: StatsService) -> Callable[[RequestFinished], None]:
    """A served request becomes an `ok` outcome (failed attempts were reported as they failed)."""

    def on_finished(event: RequestFinished) -> None:
        if not event.ok or event.served is None or event.decision is None:
            return
        usage = event.usage or {}
        stats.record(_new_outcome(
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
    """The most recent decisions with their explanations, newest last (bounded).

    A request leaves only the facts an entry is made of; the entry's dict is built when the ring is
    read (the stats route, the dashboard, the fleet's push: about once a second, while requests
    finish hundreds of times a second), once, and then kept, so a read sees the same dict objects
    each time (the fleet finds what it sent by identity). The facts hold nothing an entry would
    not: the request's body never.
    """

    def __init__(self, maxlen: int = 100) -> None:
        self._entries: deque[dict | tuple] = deque(maxlen=maxlen)

    def __call__(self, event: RequestFinished) -> None:
        decision = event.decision
        if decision is None:
            return
        served = event.served
        self._entries.append((time.time(), event.request_id, event.endpoint, event.pipeline, decision,
                              served.name if served is not None else None, event.status, event.latency_ms,
                              event.cost_usd))

    def __iter__(self) -> Iterator[dict]:
        entries = self._entries
        for i, entry in enumerate(entries):
            if type(entry) is tuple:
                entries[i] = _entry(*entry)
        return iter(list(entries))

    def __len__(self) -> int:
        return len(self._entries)


def _entry(ts: float, request_id: str, endpoint: str, pipeline: str | None, decision: Any, served: str | None,
           status: int, latency_ms: float | None, cost_usd: float) -> dict:
    ranked = decision.ranking.ranked
    return {
        "ts": ts,
        "request_id": request_id,
        "endpoint": endpoint,
        "pipeline": pipeline,
        "strategy": decision.strategy,
        "winner": ranked[0].model.name if ranked else None,
        "score": round(ranked[0].total, 3) if ranked else None,
        "runner_up": ranked[1].model.name if len(ranked) > 1 else None,
        "served": served,
        "status": "ok" if 200 <= status < 300 else str(status),
        "latency_ms": None if latency_ms is None else round(latency_ms, 1),
        "cost_usd": cost_usd,
        "reasons": list(ranked[0].reasons) if ranked else [],
        "notes": list(decision.notes),
        # The Rejection tuple itself: its reasons are formatted only when the stats route reads them.
        "rejected": decision.ranking.rejected,
    }
