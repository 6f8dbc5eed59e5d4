"""Everything one app instance holds, built by `create_app` and reached via `app.state.gateway`."""

from __future__ import annotations

import asyncio
import gc
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from gateway.aio import cancel_and_wait
from gateway.catalog import Catalog, ResolvedDeployment
from gateway.core.decision import Decider, Decision
from gateway.errors import GatewayError
from gateway.policy import PolicyStore
from gateway.selection.types import Ranking
from gateway.settings import Settings
from gateway.stats import Outcome, StatsService
from gateway.upstream.forwarder import Attempt, Forwarder

__all__ = ["GatewayState"]


@dataclass(slots=True)
class GatewayState:
    settings: Settings
    catalog: Catalog
    engine: Any
    decider: Decider
    forwarder: Forwarder
    transports: dict[str, Any]
    stats: StatsService
    policies: PolicyStore
    map_exception_fn: Callable[..., GatewayError]
    decision_header: Callable[[Ranking], str]
    feedback: Any = None  # FeedbackProcessor: request id -> (deployment, domain) for POST /v1/feedback
    created: int = 0
    ready: bool = False
    #: The most recent decisions with their explanations, for /v1/gateway/stats and the dashboard.
    recent: deque = field(default_factory=lambda: deque(maxlen=100))
    #: gateway.observability.Observer: metrics, request log lines, dashboard history (None: off).
    observer: Any = None
    _tasks: list[asyncio.Task] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Breaker transitions reach the metrics as they happen (the state gauge is read at scrape).
        if self.observer is not None:
            self.stats.add_circuit_listener(self.observer.on_circuit)

    async def start(self) -> None:
        await self.stats.start()
        loop = asyncio.get_running_loop()
        if any(d.transport == "litellm" for d in self.catalog.deployments.values()):
            self._tasks.append(loop.create_task(self.transports["litellm"].warm(), name="litellm-import"))
        self._tasks.append(
            loop.create_task(self.policies.run_watcher(self.settings.policy_reload_s), name="policy-watcher")
        )
        # Everything built so far (modules, catalog, policies, prepared views) lives as long as the
        # process: move it out of the collector's reach, so a full collection under load walks only
        # what requests allocate (fewer multi-millisecond pauses at the tail).
        gc.collect()
        gc.freeze()
        self.ready = True

    async def stop(self) -> None:
        self.ready = False
        for task in self._tasks:
            await cancel_and_wait(task)
        self._tasks.clear()
        for transport in self.transports.values():
            await transport.close()
        await self.stats.stop()  # flushes queued outcomes: nothing recorded is lost on shutdown

    async def stats_status(self) -> str:
        """ok | degraded (serving from local stats while the shared store is unreachable)."""
        return self.stats.status

    def map_exception(self, exc: BaseException, deployment: str) -> GatewayError:
        return self.map_exception_fn(exc, deployment, self.catalog.secrets())

    def record_success(
        self, decision: Decision, dep: ResolvedDeployment, latency_ms: float,
        ttft_ms: float | None, usage: dict | None, cost: float, *,
        attempts: list[Attempt] | tuple = (), overhead_ms: float | None = None,
        body: dict | None = None, result: dict | None = None,
    ) -> None:
        """Hand a served request to the stats recorder (an O(1) append; flushed in the background)."""
        if self.feedback is not None:
            self.feedback.remember(decision.ctx.request_id, dep.name, decision.ctx.domain, decision.features)
        self._remember(decision, dep.name, "ok", latency_ms, cost)
        if self.observer is not None:
            self.observer.on_request(
                decision, served=dep.name, status=200, latency_ms=latency_ms, ttft_ms=ttft_ms, usage=usage,
                cost_usd=cost, attempts=attempts, overhead_ms=overhead_ms, stream=decision.ctx.stream,
                request_body=body, response_body=result,
            )
        self.stats.record(
            Outcome(
                deployment=dep.name, pipeline=decision.budget_key, status="ok", latency_ms=latency_ms,
                ttft_ms=ttft_ms, output_tokens=int((usage or {}).get("completion_tokens") or 0),
                cost_usd=cost, domain=decision.ctx.domain,
            )
        )

    def record_failure(
        self, decision: Decision, status: int, *, attempts: list[Attempt] | tuple = (),
        served: str | None = None, latency_ms: float | None = None, ttft_ms: float | None = None,
    ) -> None:
        self._remember(decision, served, str(status), latency_ms, 0.0)
        if self.observer is not None:
            self.observer.on_request(
                decision, served=served, status=status, latency_ms=latency_ms, ttft_ms=ttft_ms, usage=None,
                cost_usd=0.0, attempts=attempts, overhead_ms=None, stream=decision.ctx.stream,
            )

    def record_refusal(self, pipeline: str | None, status: int) -> None:
        """A request refused before a decision existed (bad body, unknown model/pipeline, budget)."""
        if self.observer is not None:
            self.observer.on_refused(pipeline, status)

    def _remember(self, decision: Decision, served: str | None, status: str, latency_ms: float | None,
                  cost: float) -> None:
        ranked = decision.ranking.ranked
        self.recent.append(
            {
                "ts": time.time(),
                "request_id": decision.ctx.request_id,
                "pipeline": decision.budget_key,
                "strategy": decision.strategy,
                "winner": ranked[0].model.name if ranked else None,
                "score": round(ranked[0].total, 3) if ranked else None,
                "runner_up": ranked[1].model.name if len(ranked) > 1 else None,
                "served": served,
                "status": status,
                "latency_ms": None if latency_ms is None else round(latency_ms, 1),
                "cost_usd": cost,
                "reasons": list(ranked[0].reasons) if ranked else [],
                "notes": list(decision.notes),
                # The Rejection tuple itself: its reasons are formatted only when the stats route reads them.
                "rejected": decision.ranking.rejected,
            }
        )

    def attempt_reporter(self, decision: Decision, sink: list[Attempt] | None = None) -> Callable[[Attempt], None]:
        """A callback for the forwarder: every failed attempt lands in stats too (and in `sink`)."""
        pipeline, domain = decision.budget_key, decision.ctx.domain

        def report(attempt: Attempt) -> None:
            if sink is not None:
                sink.append(attempt)
            self.stats.record(
                Outcome(
                    deployment=attempt.deployment, pipeline=pipeline, status=attempt.status,
                    latency_ms=attempt.latency_ms, ttft_ms=attempt.ttft_ms, domain=domain,
                )
            )

        return report
