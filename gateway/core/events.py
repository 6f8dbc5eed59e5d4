"""`RequestFinished`: the one event every request emits when it is over, whatever its endpoint.

Stats, metrics, the request log, the feedback memory and the dashboard's recent decisions all
subscribe to it (`RequestPipeline.subscribe`); none of them is called from a route. It is emitted
after the answer is out, so no subscriber delays a client.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.catalog import ResolvedDeployment
    from gateway.core.decision import Decision
    from gateway.upstream.forwarder import Attempt

__all__ = ["RequestFinished"]


@dataclass(frozen=True, slots=True)
class RequestFinished:
    request_id: str
    #: "chat.completions", "responses", "messages", "embeddings", ...
    endpoint: str
    #: The status the client got: an HTTP status, or 499 when the client hung up first.
    status: int
    #: The pipeline the request counted against: the resolved policy once decided, else the raw
    #: X-Pipeline-Id (None: none sent).
    pipeline: str | None
    #: The authenticated key's name (None: authentication is off).
    principal: str | None = None
    #: None when the request was refused before it was admitted (bad body, unknown model, limits).
    decision: Decision | None = None
    served: ResolvedDeployment | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    usage: Mapping[str, Any] | None = None
    cost_usd: float = 0.0
    attempts: tuple[Attempt, ...] = ()
    overhead_ms: float | None = None
    stream: bool = False
    request_body: Mapping[str, Any] | None = None
    response_body: Mapping[str, Any] | None = None
    #: The cost already reached the pipeline's spend through a budget reservation's settlement.
    spend_settled: bool = False

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300
