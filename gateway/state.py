"""`GatewayState`: what one app instance holds, built by `create_app`, reached via `app.state.gateway`.

A small typed container: the request path lives in `RequestPipeline`; the routes that only read
(models, stats, health, dashboard) read from here.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.aio import cancel_and_wait
from gateway.catalog import Catalog
from gateway.core.decision import Decider
from gateway.core.pipeline import RequestPipeline
from gateway.core.subscribers import RecentDecisions
from gateway.learning import FeedbackProcessor
from gateway.observability import Observer
from gateway.policy import PolicyStore
from gateway.settings import Settings
from gateway.stats import StatsService

__all__ = ["GatewayState"]


@dataclass(slots=True)
class GatewayState:
    settings: Settings
    catalog: Catalog
    policies: PolicyStore
    stats: StatsService
    pipeline: RequestPipeline
    feedback: FeedbackProcessor
    recent: RecentDecisions
    transports: Mapping[str, Any]
    observer: Observer | None = None
    created: int = 0
    router: Any = None  # gateway.learning.router_source.RouterSource: the trained router model, if any
    fleet: Any = None  # gateway.observability.fleet.FleetHistory: with Redis, every process's history
    ready: bool = False
    _tasks: list[asyncio.Task] = field(default_factory=list)

    @property
    def decider(self) -> Decider:
        return self.pipeline.decider

    async def start(self) -> None:
        await self.stats.start()
        for part in (self.router, self.fleet):  # a restart resumes the fleet's learning before it is ready
            if part is not None:
                await part.start()
        loop = asyncio.get_running_loop()
        # litellm, in a thread, for its translation (an import on the loop would stall every request).
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
        if self.settings.gc_gen0_threshold:
            _, gen1, gen2 = gc.get_threshold()
            gc.set_threshold(self.settings.gc_gen0_threshold, gen1, gen2)
        self.ready = True

    async def stop(self) -> None:
        self.ready = False
        for task in self._tasks:
            await cancel_and_wait(task)
        self._tasks.clear()
        for transport in self.transports.values():
            await transport.close()
        for part in (self.fleet, self.router):  # their last sends go out before the store closes
            if part is not None:
                await part.stop()
        await self.stats.stop()  # flushes queued outcomes: nothing recorded is lost on shutdown
        if self.observer is not None:
            self.observer.flush()  # batched metric updates (multiprocess files outlive the worker)
