"""Everything one app instance holds, built by `create_app` and reached via `app.state.gateway`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from gateway.catalog import Catalog, ResolvedDeployment
from gateway.decision import Decider, Decision
from gateway.errors import GatewayError
from gateway.selection.types import Ranking
from gateway.settings import Settings
from gateway.upstream.forwarder import Attempt, Forwarder

__all__ = ["GatewayState"]


@dataclass(slots=True)
class GatewayState:
    settings: Settings
    catalog: Catalog
    engine: Any
    decider: Decider
    forwarder: Forwarder
    map_exception_fn: Callable[..., GatewayError]
    decision_header: Callable[[Ranking], str]
    created: int = 0
    ready: bool = False
    background: list[Any] = field(default_factory=list)

    async def start(self) -> None:
        self.ready = True

    async def stop(self) -> None:
        self.ready = False

    async def stats_status(self) -> str:
        """ok | degraded (serving from local stats) | down."""
        return "ok"

    def map_exception(self, exc: BaseException, deployment: str) -> GatewayError:
        return self.map_exception_fn(exc, deployment, self.catalog.secrets())

    def record_success(
        self, decision: Decision, dep: ResolvedDeployment, latency_ms: float,
        ttft_ms: float | None, usage: dict | None, cost: float,
    ) -> None:
        """Hand a served request to the stats recorder (off the hot path)."""

    def record_attempt(self, attempt: Attempt) -> None:
        """Hand a failed attempt to the stats recorder."""
